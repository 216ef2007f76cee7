#!/usr/bin/env bash
# Runs owt's whole test suite: installs deps, builds, then ctest (unit, e2e, parallel under
# mpirun, and gpu tests, which skip without a GPU). Extra arguments go to ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/tools/build.sh"
cd "${BUILD_DIR:-$root/build}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --output-on-failure -j2 --timeout 600 "$@"
