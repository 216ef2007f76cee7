#!/usr/bin/env bash
# Installs the dependencies (tools/install_deps.sh), configures and builds owt in build/.
# Idempotent: a second run only rebuilds what changed. Arguments are CMake targets to build
# (default: all). BUILD_DIR overrides the directory, OWT_BUILD_JOBS the parallelism (2).
# The build's progress lines are left out; compiler warnings and errors are shown.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/tools/install_deps.sh"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  echo "tools/build.sh: configuring and building owt in $build (the first build takes minutes)" >&2
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null  # warnings go to stderr
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
# Drop the progress lines of make and ninja ("[ 42%] Building CXX object ...", "[3/80] ..."),
# of CMake re-running itself ("-- Configuring done", "Re-run cmake ...") and keep the rest
# (compiler and linker warnings and errors, make's error lines), all on stderr: stdout stays
# free for the caller (tools/owt). pipefail keeps the build's exit status.
noise='^\[ *[0-9]+%\] |^\[[0-9]+/[0-9]+\] |^-- |^Re-run cmake |^(Scanning|Consolidate compiler generated) dependencies'
cmake --build "$build" -j"${OWT_BUILD_JOBS:-2}" "${targets[@]}" -- --no-print-directory 2>&1 |
  sed -u -E "\#$noise#d" >&2
