#!/usr/bin/env bash
# Builds owt, its tests and benchmarks under AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer (cmake -DOWT_SANITIZE=ON: CPU only) in build-asan/
# (SANITIZE_BUILD_DIR overrides it), then runs the ctest labels unit, e2e and mpi under them.
# Fails when a test fails or any sanitizer reported, and prints the reports.
# Not run: label gpu (no CUDA in this build) and label interop (PyTorch, not owt's code).
# tests/sanitizers/lsan.supp suppresses Open MPI's own leaks. Extra arguments go to ctest
# (e.g. -R GradientCheck). Third-party libraries (OpenBLAS, oneDNN, ...) are not instrumented.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD_DIR:-$root/build-asan}
logs=$build/sanitizer-logs

bash "$root/tools/install_deps.sh"

# Exported, so the options reach every sanitized process: the test programs (and the runs
# gtest_discover_tests makes of them during the build), the owt binary the e2e tests start,
# and mpirun's ranks (Open MPI hands its environment to local ranks).
# ASan and LSan write their reports to $logs/asan.<pid>, so that a child whose failure a test
# expects (a bad input, an aborted rank) cannot hide one.
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:check_initialization_order=1:strict_init_order=1"
export LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0"
# UBSan's reports go to stderr: g++'s libubsan ignores log_path next to libasan. Any report
# ends the process (-fno-sanitize-recover) with exit code 86, which no test expects, and
# run_ctest collects the reports that reached ctest's log.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$logs"
mkdir -p "$logs"

start=$SECONDS
cmake -S "$root" -B "$build" -DOWT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BUILD_DIR=$build bash "$root/tools/build.sh"
built=$SECONDS

status=0
cd "$build"
# run_ctest NAME ARGS...: ctest ARGS; then copies the UBSan reports among what the tests
# printed (ctest's log keeps every test's output) to $logs/ubsan.NAME.
run_ctest() {
  local name=$1
  shift
  ctest --output-on-failure -j2 --timeout 900 "$@" || status=$?
  if grep -q "runtime error: " Testing/Temporary/LastTest.log 2>/dev/null; then
    grep -B2 -A16 "runtime error: " Testing/Temporary/LastTest.log >"$logs/ubsan.$name"
  fi
}
run_ctest unit-e2e -L '^(unit|e2e)$' "$@"
# The mpi label with full allocation stacks (fast_unwind_on_malloc=0), which the suppressions
# of Open MPI's leaks need (see lsan.supp); it makes every malloc slower, hence not for all.
ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" run_ctest mpi -L '^mpi$' "$@"

reports=("$logs"/*)
if [[ -e ${reports[0]} ]]; then
  for r in "${reports[@]}"; do
    echo "==== ${r#"$build"/}" >&2
    cat "$r" >&2
  done
  echo "tools/sanitize.sh: ${#reports[@]} sanitizer report file(s) in $logs" >&2
  status=1
fi
echo "tools/sanitize.sh: build $((built - start)) s, tests $((SECONDS - built)) s," \
     "$([[ $status -eq 0 ]] && echo clean || echo FAILED)" >&2
exit $status
