#!/usr/bin/env bash
# tools/gpu_check.sh: the one GPU check of owt (DESIGN §6). On a Hopper machine it runs the
# `gpu` tests (owt_gpu_tests), then trains AlexNet-OWT (models/alexnet_owt.yaml, 224x224,
# batch 128, 30 timed steps) with `owt bench` and torchvision's AlexNet with PyTorch in the same
# precision (tf32, bf16), and prints images/s, the ratio and peak GPU memory. Under 8 minutes.
#
# The GPU machine has CUDA, cuDNN, NCCL, CMake and PyTorch but no -dev packages (yaml-cpp,
# CLI11, oneDNN, OpenBLAS, ...) and no network, so owt is normally built HERE and carried:
#
#   here:     tools/gpu_check.sh --bundle
#             builds build-bundle/ (CUDA on; MPI, OpenCV and -march=native off), packs owt,
#             owt_gpu_tests and their non-CUDA shared libraries into
#             build-bundle/owt-gpu-bundle.tar.xz (checked < 60 MiB)
#   device:   tools/gpu_check.sh            (device tool: carry build-bundle/owt-gpu-bundle.tar.xz)
#             unpacks the bundle if present (else uses build-cuda/ or tries a build there),
#             finds cuBLAS/cuDNN on the machine (CUDA dirs, pip nvidia-* wheels) and runs.
#
# Environment: OWT_GPU_BUNDLE (bundle path), OWT_CHECK_ITERS (30), OWT_CHECK_BATCH (128),
# JOBS (build parallelism for --bundle, default 2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUNDLE_TAR=${OWT_GPU_BUNDLE:-$ROOT/build-bundle/owt-gpu-bundle.tar.xz}
ITERS=${OWT_CHECK_ITERS:-30}
BATCH=${OWT_CHECK_BATCH:-128}
MODEL=$ROOT/models/alexnet_owt.yaml

say() { printf 'gpu_check: %s\n' "$*"; }
die() { printf 'gpu_check: error: %s\n' "$*" >&2; exit 1; }

# ---- --bundle: build here and pack ------------------------------------------------------------
make_bundle() {
  local build=$ROOT/build-bundle stage=$ROOT/build-bundle/owt-gpu-bundle
  command -v nvcc >/dev/null || die "--bundle needs nvcc (the CUDA toolkit) on PATH"
  say "configuring $build (CUDA on; MPI, OpenCV, -march=native off)"
  cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release -DOWT_WITH_CUDA=ON \
    -DOWT_WITH_MPI=OFF -DOWT_WITH_OPENCV=OFF -DOWT_NATIVE=OFF >"$build.configure.log" 2>&1 ||
    { tail -20 "$build.configure.log"; die "cmake configure failed (log: $build.configure.log)"; }
  say "building owt and owt_gpu_tests (-j${JOBS:-2})"
  cmake --build "$build" -j"${JOBS:-2}" --target owt owt_gpu_tests >"$build.build.log" 2>&1 ||
    { tail -30 "$build.build.log"; die "build failed (log: $build.build.log)"; }
  rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib"
  cp "$build/owt" "$build/tests/owt_gpu_tests" "$stage/bin/"
  # Every shared library the two need, except glibc's own and the big CUDA libraries, which the
  # GPU machine has (libcudart is small and pinned to our toolkit's major version: packed).
  local lib name
  for lib in $(ldd "$stage/bin/owt" "$stage/bin/owt_gpu_tests" | awk '/=> \//{print $3}' | sort -u); do
    name=$(basename "$lib")
    case "$name" in
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libresolv.so*) ;;
      libcuda.so*|libnvidia*|libcublas*|libcudnn*|libnccl*) ;;
      *) cp -L "$lib" "$stage/lib/$name" ;;
    esac
  done
  (cd "$ROOT" && git rev-parse HEAD 2>/dev/null || echo unknown) >"$stage/COMMIT"
  tar -C "$build" -cJf "$BUNDLE_TAR.tmp" owt-gpu-bundle && mv "$BUNDLE_TAR.tmp" "$BUNDLE_TAR"
  local bytes; bytes=$(stat -c %s "$BUNDLE_TAR")
  (( bytes < 60 * 1024 * 1024 )) || die "bundle is $((bytes >> 20)) MiB, over the 60 MiB limit"
  say "bundle: ${BUNDLE_TAR#$ROOT/} ($((bytes >> 20)) MiB; libs: $(ls "$stage/lib" | wc -l))"
  say "on the GPU machine: tools/gpu_check.sh, carrying build-bundle/owt-gpu-bundle.tar.xz"
}

# ---- on the GPU machine -----------------------------------------------------------------------
# Directories holding cuBLAS / cuDNN / NCCL / cudart on this machine.
cuda_lib_dirs() {
  local d dirs=()
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
           /usr/lib/x86_64-linux-gnu; do
    [[ -d $d ]] && dirs+=("$d")
  done
  # PyTorch wheels ship them as nvidia-* packages.
  if command -v python3 >/dev/null; then
    while IFS= read -r d; do [[ -n $d ]] && dirs+=("$d"); done < <(python3 - <<'PY' 2>/dev/null || true
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib"))):
        print(d)
PY
)
  fi
  local IFS=:
  echo "${dirs[*]}"
}

find_binaries() {
  OWT_LD=${LD_LIBRARY_PATH:-}
  if [[ -f $BUNDLE_TAR ]]; then
    WORK=$(mktemp -d /tmp/owt-gpu-check.XXXXXX)
    tar -C "$WORK" -xJf "$BUNDLE_TAR"
    OWT=$WORK/owt-gpu-bundle/bin/owt
    TESTS=$WORK/owt-gpu-bundle/bin/owt_gpu_tests
    local dirs; dirs=$(cuda_lib_dirs)
    # Only for owt's own processes: PyTorch keeps its libraries.
    OWT_LD="$WORK/owt-gpu-bundle/lib:$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "using the bundle ${BUNDLE_TAR#$ROOT/} (commit $(cat "$WORK/owt-gpu-bundle/COMMIT"))"
  elif [[ -x $ROOT/build-cuda/owt && -x $ROOT/build-cuda/tests/owt_gpu_tests ]]; then
    OWT=$ROOT/build-cuda/owt
    TESTS=$ROOT/build-cuda/tests/owt_gpu_tests
    say "using build-cuda/"
  else
    say "no bundle at ${BUNDLE_TAR#$ROOT/}: building here (needs yaml-cpp, oneDNN, OpenBLAS, GTest)"
    cmake -S "$ROOT" -B "$ROOT/build-gpu" -DCMAKE_BUILD_TYPE=Release -DOWT_WITH_CUDA=ON \
      -DOWT_WITH_MPI=OFF -DOWT_WITH_OPENCV=OFF >/tmp/owt-gpu-configure.log 2>&1 ||
      { tail -15 /tmp/owt-gpu-configure.log
        die "cannot build owt on this machine; run 'tools/gpu_check.sh --bundle' on a development machine and carry build-bundle/owt-gpu-bundle.tar.xz"; }
    cmake --build "$ROOT/build-gpu" -j"$(nproc)" --target owt owt_gpu_tests >/tmp/owt-gpu-build.log 2>&1 ||
      { tail -30 /tmp/owt-gpu-build.log; die "build failed (log /tmp/owt-gpu-build.log)"; }
    OWT=$ROOT/build-gpu/owt
    TESTS=$ROOT/build-gpu/tests/owt_gpu_tests
  fi
  local missing
  missing=$(env LD_LIBRARY_PATH="$OWT_LD" ldd "$OWT" "$TESTS" | awk '/not found/{print $1}' | sort -u | tr '\n' ' ')
  [[ -z $missing ]] || die "shared libraries not found on this machine: $missing(LD_LIBRARY_PATH=$OWT_LD)"
}

# Samples nvidia-smi's memory.used (MiB) of GPU 0 every 100 ms into $1 until killed.
start_sampler() {
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 >"$1" 2>/dev/null &
  SAMPLER=$!
}
stop_sampler() {
  kill "$SAMPLER" 2>/dev/null || true
  wait "$SAMPLER" 2>/dev/null || true
}
max_of() { local m; m=$(grep -E '^[0-9]+$' "$1" | sort -n | tail -1); echo "${m:-0}"; }
fmt1() { if [[ $1 == n/a ]]; then echo n/a; else printf '%.1f' "$1"; fi; }

json_get() {  # json_get FILE KEY [DEFAULT]
  python3 -c 'import json,sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(d.get(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "n/a"))' "$@"
}

run_check() {
  command -v nvidia-smi >/dev/null || die "nvidia-smi not found: is this a GPU machine?"
  command -v python3 >/dev/null || die "python3 not found"
  local gpu; gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader -i 0)
  say "GPU 0: $gpu"
  find_binaries
  local tmp; tmp=$(mktemp -d /tmp/owt-gpu-run.XXXXXX)
  local started=$SECONDS

  say "1/3 gpu tests (owt_gpu_tests)"
  local tests_rc=0
  timeout 240 env LD_LIBRARY_PATH="$OWT_LD" "$TESTS" --gtest_color=no >"$tmp/tests.log" 2>&1 || tests_rc=$?
  grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$tmp/tests.log" || true
  grep -E '^\[  FAILED  \]|Failure|error' "$tmp/tests.log" | head -40 || true
  if (( tests_rc != 0 )); then say "gpu tests FAILED (rc $tests_rc; log $tmp/tests.log)"; else say "gpu tests passed"; fi

  local idle; idle=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)
  local prec rows=()
  for prec in tf32 bf16; do
    local model=$tmp/alexnet_owt_$prec.yaml
    grep -v '^precision:' "$MODEL" >"$model"
    printf '\nprecision: %s\n' "$prec" >>"$model"

    say "2/3 owt bench AlexNet-OWT, $prec, batch $BATCH, $ITERS steps"
    start_sampler "$tmp/owt_$prec.mem"
    local owt_rc=0
    timeout 200 env LD_LIBRARY_PATH="$OWT_LD" "$OWT" bench "$model" --device cuda --batch "$BATCH" --iters "$ITERS" --json \
      >"$tmp/owt_$prec.json" 2>"$tmp/owt_$prec.err" || owt_rc=$?
    stop_sampler
    (( owt_rc == 0 )) || { cat "$tmp/owt_$prec.err" >&2; say "owt bench failed ($prec, rc $owt_rc)"; }

    say "3/3 PyTorch torchvision alexnet, $prec"
    start_sampler "$tmp/torch_$prec.mem"
    local torch_rc=0
    timeout 200 python3 "$ROOT/tools/bench/torch_alexnet_gpu.py" --precision "$prec" \
      --batch "$BATCH" --iters "$ITERS" >"$tmp/torch_$prec.json" 2>"$tmp/torch_$prec.err" || torch_rc=$?
    stop_sampler
    (( torch_rc == 0 )) || { tail -5 "$tmp/torch_$prec.err" >&2; say "torch failed ($prec, rc $torch_rc)"; }

    local o="n/a" t="n/a" ratio="n/a" o_peak="n/a" o_smi="n/a" t_peak="n/a" t_smi="n/a"
    if (( owt_rc == 0 )); then
      o=$(json_get "$tmp/owt_$prec.json" images_per_s)
      o_peak=$(json_get "$tmp/owt_$prec.json" peak_gpu_bytes n/a)
      [[ $o_peak != n/a ]] && o_peak=$(( o_peak >> 20 ))
      o_smi=$(( $(max_of "$tmp/owt_$prec.mem") - idle ))
    fi
    if (( torch_rc == 0 )); then
      t=$(json_get "$tmp/torch_$prec.json" images_per_s)
      t_peak=$(( $(json_get "$tmp/torch_$prec.json" peak_allocated_bytes) >> 20 ))
      t_smi=$(( $(max_of "$tmp/torch_$prec.mem") - idle ))
    fi
    [[ $o != n/a && $t != n/a ]] && ratio=$(python3 -c "print(f'{$o / $t:.2f}x')")
    rows+=("$(printf '%-9s %12s %12s %9s   %10s %10s   %10s %10s' "$prec" \
      "$(fmt1 "$o")" "$(fmt1 "$t")" \
      "$ratio" "$o_peak" "$o_smi" "$t_peak" "$t_smi")")
  done

  echo
  echo "AlexNet-OWT vs torchvision alexnet, 224x224, batch $BATCH, $ITERS timed steps, 1 GPU ($gpu)"
  printf '%-9s %12s %12s %9s   %10s %10s   %10s %10s\n' precision "owt img/s" "torch img/s" \
    "owt/torch" "owt peak" "owt smi" "torch peak" "torch smi"
  printf '%-9s %12s %12s %9s   %10s %10s   %10s %10s\n' "" "" "" "" "MiB" "MiB" "MiB" "MiB"
  printf '%s\n' "${rows[@]}"
  echo "peak: allocator peak in use (owt: cuda_memory_stats, when owt bench reports it;"
  echo "torch: max_memory_allocated); smi: max nvidia-smi memory.used minus idle (includes the"
  echo "CUDA context, cuDNN/cuBLAS handles and cached blocks)."
  echo "gpu tests: $( ((tests_rc == 0)) && echo passed || echo "FAILED (rc $tests_rc, $tmp/tests.log)")"
  say "done in $((SECONDS - started)) s; logs in $tmp"
  (( tests_rc == 0 ))
}

case "${1:-}" in
  --bundle) make_bundle ;;
  ""|--run) run_check ;;
  -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown argument '$1' (use --bundle, --run or --help)" ;;
esac
