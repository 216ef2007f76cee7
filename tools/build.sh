#!/usr/bin/env bash
# Installs the dependencies (tools/install_deps.sh), configures and builds owt in build/.
# Idempotent: a second run only rebuilds what changed. BUILD_DIR overrides the directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/tools/install_deps.sh"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j"${OWT_BUILD_JOBS:-2}" -- --no-print-directory >/dev/null
