#!/usr/bin/env bash
# Fuzzes owt's parsers: builds the libFuzzer targets of tests/fuzz (model_yaml, idx, cifar,
# safetensors, packed_index, image_decode) with clang under AddressSanitizer + UBSan in
# build-fuzz/ (FUZZ_BUILD_DIR overrides; cmake -DOWT_FUZZ=ON, only the parser sources), then
# runs each target for SECONDS (default 20) from its seed corpus tests/fuzz/corpus/<target>/.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]
#
# The corpus each run grows is kept in build-fuzz/corpus/<target>/, so later runs go deeper.
# Any crash, uncaught exception, sanitizer report, leak, out-of-memory (over 2 GiB) or slow
# input (over 25 s) fails the run: the input is copied to tests/fuzz/regressions/<target>/,
# where every normal build's ctest (owt_fuzz_replay_<target>) replays it once fixed; commit it.
# Prints per target: seconds, inputs executed, coverage, corpus size. Installs clang (Debian's
# clang, libclang-rt-dev for libFuzzer and the sanitizer runtimes, libomp-dev) when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${1:-20}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "usage: tools/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2; }
shift $(( $# > 0 ? 1 : 0 ))
all_targets=(model_yaml idx cifar safetensors packed_index image_decode)
targets=("${all_targets[@]}")
if [[ $# -gt 0 ]]; then targets=("$@"); fi

start=$SECONDS
bash "$root/tools/install_deps.sh"
need=()
for p in clang libclang-rt-dev libomp-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [[ ${#need[@]} -gt 0 ]]; then
  echo "tools/fuzz.sh: installing ${need[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [[ ! -f $build/CMakeCache.txt ]]; then
  echo "tools/fuzz.sh: configuring the fuzz build in $build" >&2
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DOWT_FUZZ=ON -DOWT_BUILD_TESTS=OFF \
    -DOWT_WITH_CUDA=OFF -DOWT_WITH_MPI=OFF -DOWT_NATIVE=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
fi
noise='^\[ *[0-9]+%\] |^\[[0-9]+/[0-9]+\] |^-- |^Re-run cmake |^(Scanning|Consolidate compiler generated) dependencies'
cmake --build "$build" -j"${OWT_BUILD_JOBS:-2}" --target owt_fuzz -- --no-print-directory 2>&1 |
  sed -u -E "\#$noise#d" >&2
built=$SECONDS

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
failed=()
printf '%-14s %8s %12s %8s %8s  %s\n' target seconds inputs cov corpus result
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/owt_fuzz_$t
  [[ -x $bin ]] || { echo "tools/fuzz.sh: no fuzz target $t (known: ${all_targets[*]})" >&2; exit 2; }
  seeds=$root/tests/fuzz/corpus/$t
  work=$build/corpus/$t
  art=$build/artifacts/$t
  log=$build/logs/$t.log
  mkdir -p "$work" "$art" "$(dirname "$log")"
  rm -f "$art"/*
  t0=$SECONDS
  status=0
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$art/" "$work" "$seeds" > "$log" 2>&1 || status=$?
  inputs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  result=ok
  # A slow-unit-* file is an input that took over 10 s once, which on a busy machine is the
  # scheduler, not owt (a hang is a timeout-* file and a non-zero exit): noted, not failed.
  slow=("$art"/slow-unit-*)
  [[ -e ${slow[0]} ]] && result="ok (${#slow[@]} slow input(s) in $art)" && rm -f "${slow[@]}"
  found=("$art"/*)
  if [[ $status -ne 0 || -e ${found[0]} ]]; then
    result="FAILED (exit $status): see $log"
    mkdir -p "$root/tests/fuzz/regressions/$t"
    for f in "${found[@]}"; do
      [[ -e $f ]] && cp "$f" "$root/tests/fuzz/regressions/$t/" && result+="; kept tests/fuzz/regressions/$t/$(basename "$f")"
    done
    failed+=("$t")
    grep -E 'ERROR: |SUMMARY: |runtime error|==[0-9]+==' "$log" | head -20 >&2 || true
  fi
  printf '%-14s %8d %12s %8s %8d  %s\n' "$t" $((SECONDS - t0)) "${inputs:-?}" "${cov:-?}" \
    "$(find "$work" -type f | wc -l)" "$result"
done
echo "tools/fuzz.sh: build $((built - start)) s, fuzzing $((SECONDS - built)) s," \
     "${#targets[@]} targets x $seconds s: $([[ ${#failed[@]} -eq 0 ]] && echo clean || echo "FAILED: ${failed[*]}")" >&2
[[ ${#failed[@]} -eq 0 ]]
