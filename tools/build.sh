#!/usr/bin/env bash
# Installs the dependencies (tools/install_deps.sh), configures and builds owt in build/.
# Idempotent: a second run only rebuilds what changed. Arguments are CMake targets to build
# (default: all). BUILD_DIR overrides the directory, OWT_BUILD_JOBS the parallelism (2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/tools/install_deps.sh"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  echo "tools/build.sh: configuring and building owt in $build (the first build takes minutes)" >&2
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build" -j"${OWT_BUILD_JOBS:-2}" "${targets[@]}" -- --no-print-directory >/dev/null
