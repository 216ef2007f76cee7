#!/usr/bin/env bash
# tools/gpu_check.sh: the one GPU check of owt (docs/ARCHITECTURE.md, "The GPU path"). On a
# Hopper machine it runs the `gpu` tests (owt_gpu_tests, OWT_REQUIRE_GPU=1: no device is a
# failure, never a skip), compute-sanitizer memcheck over the exact-op tests, then AlexNet-OWT
# (models/alexnet_owt.yaml, 224x224, batch 128, 30 timed steps) with `owt bench` and
# torchvision's AlexNet with PyTorch in tf32 and bf16, and prints images/s, the ratio, peak GPU
# memory and whether PyTorch's loss is finite and falls (owt's is a gpu test: GpuAlexNet).
# Last, for the step-time model (docs/REPRODUCE.md): AlexNet-OWT's per-layer GPU times
# (`owt bench --profile --json`) and `owt plan` predictions for K = 2, 4, 8 GPUs from them over
# an ASSUMED link (OWT_CHECK_LINK_GBS, default 450 GB/s per direction: NVLink 4's 900 GB/s
# bidirectional; overlap 1 as NCCL runs on its own stream). One GPU cannot time collectives,
# so there is no measured comm file: a multi-GPU machine gives one with
# `mpirun -np K owt bench --comm --json --device cuda`.
#
# The GPU machine has CUDA 13, cuDNN, NCCL and PyTorch but no -dev packages (yaml-cpp, CLI11,
# oneDNN, OpenBLAS, GTest) and no network: owt cannot be built there. It is built HERE and
# carried as one file:
#
#   here:    tools/gpu_check.sh --bundle
#            builds build-bundle/ (CUDA and MPI on, so the NCCL communicator is in; OpenCV and
#            -march=native off) and packs bin/owt, bin/owt_gpu_tests, bin/libowt_cuda.so (the
#            CUDA backend and NCCL communicator, which owt loads at run time) and every shared
#            library they need that the GPU machine lacks (not glibc, libstdc++, the CUDA driver,
#            runtime, cuBLAS, cuDNN or NCCL: those are the machine's) into
#
#                build-bundle/owt-gpu-bundle.tar.gz        (gzip: no xz needed; < 56 MiB)
#
#   device:  tools/gpu_check.sh            with that file carried (device tool:
#            run(command="tools/gpu_check.sh", carry=["build-bundle/owt-gpu-bundle.tar.gz"],
#            timeout_s=600)). It stops within seconds if the bundle is missing.
#
# Phases and their budgets (seconds; each killed at its budget, the whole at most 540 s):
#   setup 20 | gpu-tests 150 | memcheck 125 | owt-tf32 50 | torch-tf32 50 | owt-bf16 50 |
#   torch-bf16 50 | step-model 30 | summary 10: 535 s.
# Every log and summary.json / summary.txt are written as the phases end, under $OUT when set
# (the device tool brings $OUT back even after a timeout), else build-bundle/gpu-check-logs/:
#   setup.log gpu_tests.log gpu_tests.xml memcheck.log bench.log step_model.log summary.json
#   summary.txt step_model/{gpu_profile_alexnet_owt.json, gpu_plan_alexnet_owt_k{2,4,8}.json}
# The summary table is printed last.
#
# OWT_GPU_CHECK_DRY=1 runs everything but the GPU: the bundle check and unpacking, the library
# check, owt --help and the test list from the bundle; each GPU phase prints its budget, its
# command and its log instead of running, and the summary is written.
#
# Environment: OWT_GPU_BUNDLE (bundle path), OWT_CHECK_ITERS (30), OWT_CHECK_BATCH (128),
# OWT_CHECK_LINK_GBS (450), OWT_GPU_CHECK_DRY, OUT, JOBS (build parallelism for --bundle, 2).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUNDLE_TAR=${OWT_GPU_BUNDLE:-$ROOT/build-bundle/owt-gpu-bundle.tar.gz}
ITERS=${OWT_CHECK_ITERS:-30}
BATCH=${OWT_CHECK_BATCH:-128}
LINK_GBS=${OWT_CHECK_LINK_GBS:-450}
DRY=${OWT_GPU_CHECK_DRY:-0}
[[ $DRY == 0 ]] && DRY=
MODEL=$ROOT/models/alexnet_owt.yaml
LIMIT=540            # the whole run, worst case
BUNDLE_MAX_MIB=56    # the device tool carries 64 MiB in all, the working tree included

say() { printf 'gpu_check: %s\n' "$*"; }
die() { printf 'gpu_check: error: %s\n' "$*" >&2; exit 1; }

# ---- --bundle: build here and pack ------------------------------------------------------------
make_bundle() {
  set -e
  local build=$ROOT/build-bundle stage=$ROOT/build-bundle/owt-gpu-bundle
  command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]] ||
    die "--bundle needs nvcc (the CUDA toolkit)"
  mkdir -p "$build"
  say "configuring $build (CUDA and MPI on; OpenCV and -march=native off)"
  cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release -DOWT_WITH_CUDA=ON \
    -DOWT_WITH_MPI=ON -DOWT_WITH_OPENCV=OFF -DOWT_NATIVE=OFF >"$build.configure.log" 2>&1 ||
    { tail -20 "$build.configure.log"; die "cmake configure failed (log: $build.configure.log)"; }
  say "building owt, owt_cuda and owt_gpu_tests (-j${JOBS:-2})"
  cmake --build "$build" -j"${JOBS:-2}" --target owt owt_cuda owt_gpu_tests >"$build.build.log" 2>&1 ||
    { tail -30 "$build.build.log"; die "build failed (log: $build.build.log)"; }
  rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib"
  cp "$build/owt" "$build/libowt_cuda.so" "$build/tests/owt_gpu_tests" "$stage/bin/"
  # Every shared library the three need, except those of the GPU machine: glibc's, the C++
  # runtime (the machine's is newer, and PyTorch's cuDNN may need it), the CUDA driver, runtime,
  # cuBLAS, cuDNN and NCCL (the machine's CUDA 13; libnccl alone is 200 MiB).
  local lib name
  for lib in $(ldd "$stage/bin/owt" "$stage/bin/owt_gpu_tests" "$stage/bin/libowt_cuda.so" |
               awk '/=> \//{print $3}' | sort -u); do
    name=$(basename "$lib")
    case "$name" in
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libresolv.so*) ;;
      libstdc++.so*|libgcc_s.so*) ;;
      libcuda.so*|libnvidia*|libcudart*|libcublas*|libcudnn*|libnccl*) ;;
      *) cp -L "$lib" "$stage/lib/$name" ;;
    esac
  done
  (cd "$ROOT" && git rev-parse HEAD 2>/dev/null || echo unknown) >"$stage/COMMIT"
  if [[ -n $(cd "$ROOT" && git status --porcelain 2>/dev/null | head -1) ]]; then
    echo "(with uncommitted changes)" >>"$stage/COMMIT"
  fi
  (cd "$stage" && find bin lib -type f -printf '%s\t%p\n' | sort -k2) >"$stage/MANIFEST"
  tar -C "$build" -czf "$BUNDLE_TAR.tmp" owt-gpu-bundle && mv "$BUNDLE_TAR.tmp" "$BUNDLE_TAR"
  local bytes; bytes=$(stat -c %s "$BUNDLE_TAR")
  ((bytes < BUNDLE_MAX_MIB * 1024 * 1024)) ||
    die "bundle is $((bytes >> 20)) MiB, over the ${BUNDLE_MAX_MIB} MiB the device tool can carry"
  say "bundle: ${BUNDLE_TAR#"$ROOT"/} ($((bytes >> 20)) MiB, $(wc -l <"$stage/MANIFEST") files:" \
      "$(ls "$stage/bin" | tr '\n' ' ')+ $(ls "$stage/lib" | wc -l) libraries)"
  say "on the GPU machine: tools/gpu_check.sh, carrying ${BUNDLE_TAR#"$ROOT"/}"
}

# ---- on the GPU machine -----------------------------------------------------------------------
LOGS=${OUT:-$ROOT/build-bundle/gpu-check-logs}
STARTED=$SECONDS
WORK=""
PHASES=""   # name budget status rc seconds log, one per line (summary input)
BENCH=""    # precision owt_img_s torch_img_s owt_peak owt_smi torch_peak torch_smi torch_first torch_final torch_loss_ok
OVERALL=0

# Budgets; their sum plus the summary's stays within LIMIT (checked at start).
declare -A BUDGET=([setup]=20 [gpu-tests]=150 [memcheck]=125 [owt-tf32]=50 [torch-tf32]=50
                   [owt-bf16]=50 [torch-bf16]=50 [step-model]=30 [summary]=10)
ORDER=(setup gpu-tests memcheck owt-tf32 torch-tf32 owt-bf16 torch-bf16 step-model summary)

# Directories holding cuBLAS / cuDNN / NCCL / cudart on this machine, ':'-joined.
cuda_lib_dirs() {
  local d dirs=()
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
           /usr/lib/x86_64-linux-gnu; do
    [[ -d $d ]] && dirs+=("$d")
  done
  # PyTorch's wheels ship them as nvidia-* packages (nvidia/cu13/lib, nvidia/cudnn/lib, ...).
  if command -v python3 >/dev/null; then
    while IFS= read -r d; do [[ -n $d ]] && dirs+=("$d"); done < <(timeout 10 python3 - <<'PY' 2>/dev/null || true
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

record_phase() {  # record_phase NAME STATUS RC SECONDS LOG
  PHASES+="$1 ${BUDGET[$1]} $2 $3 $4 $5"$'\n'
  write_summary
}

# timed NAME LOG CMD...: runs CMD killed at NAME's budget (less what the run has left), output
# appended to LOG; returns the command's status (124/137: killed). In a dry run, says instead.
timed() {
  local name=$1 log=$2; shift 2
  local budget=${BUDGET[$name]} left=$((LIMIT - BUDGET[summary] - (SECONDS - STARTED)))
  ((budget > left)) && budget=$left
  if [[ -n $DRY ]]; then
    printf '  dry run: %s: budget %ss, log %s\n    %s\n' "$name" "$budget" "$log" "$*"
    return 0
  fi
  if ((budget < 10)); then
    echo "gpu_check: $name: no time left (${budget}s)" >>"$log"
    return 125
  fi
  printf '\n==== %s (budget %ss): %s\n' "$name" "$budget" "$*" >>"$log"
  timeout -k 5 $((budget - 5)) "$@" >>"$log" 2>&1
}

status_of() {  # status_of RC -> passed | failed | timeout | no-time | dry-run
  if [[ -n $DRY ]]; then echo dry-run
  elif (($1 == 0)); then echo passed
  elif (($1 == 124 || $1 == 137)); then echo timeout
  elif (($1 == 125)); then echo no-time
  else echo failed; fi
}

write_summary() {
  [[ -n $WORK ]] || return 0
  printf '%s' "$PHASES" >"$WORK/phases.txt"
  printf '%s' "$BENCH" >"$WORK/bench.txt"
  python3 - "$WORK" "$LOGS" "$LIMIT" "${GPU_NAME:-none}" "$BATCH" "$ITERS" "${COMMIT:-unknown}" \
            "${DRY:+dry-run}" "$LINK_GBS" <<'PY' || echo "gpu_check: could not write the summary" >&2
import glob, json, os, sys, time
work, logs, limit, gpu, batch, iters, commit, dry, link_gbs = sys.argv[1:10]
phases = []
for line in open(os.path.join(work, "phases.txt")):
    f = line.split()
    if len(f) == 6:
        phases.append(dict(name=f[0], budget_s=int(f[1]), status=f[2], rc=int(f[3]),
                           seconds=int(f[4]), log=f[5]))
def num(v):
    try: return float(v)
    except ValueError: return None
bench = {}
for line in open(os.path.join(work, "bench.txt")):
    f = line.split()
    if len(f) == 10:
        keys = ["owt_images_per_s", "torch_images_per_s", "owt_peak_mib", "owt_smi_mib",
                "torch_peak_mib", "torch_smi_mib", "torch_first_loss", "torch_final_loss"]
        row = {k: num(v) for k, v in zip(keys, f[1:9])}
        row["torch_loss_ok"] = f[9] == "yes" if f[9] in ("yes", "no") else None
        o, t = row["owt_images_per_s"], row["torch_images_per_s"]
        row["owt_over_torch"] = round(o / t, 3) if o and t else None
        bench[f[0]] = row
tests = {}
try:
    for line in open(os.path.join(logs, "gpu_tests.log")):
        for key, tag in (("passed", "[  PASSED  ]"), ("failed", "[  FAILED  ]"), ("skipped", "[  SKIPPED ]")):
            if line.startswith(tag) and "test" in line:
                try: tests[key] = int(line[len(tag):].split()[0])
                except ValueError: pass
except OSError:
    pass
plans = {}  # K -> the step model's prediction from the GPU profile over the assumed link
for path in sorted(glob.glob(os.path.join(logs, "step_model", "gpu_plan_alexnet_owt_k*.json"))):
    try:
        p = json.load(open(path))
        plans[str(p["workers"])] = dict(step_seconds=p["step_seconds"], speedup=p["speedup"],
                                        step_seconds_dp=p["step_seconds_dp"], speedup_dp=p["speedup_dp"],
                                        file=os.path.relpath(path, logs))
    except (OSError, ValueError, KeyError):
        pass
summary = dict(date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), dry_run=bool(dry), gpu=gpu,
               commit=commit, batch=int(batch), iters=int(iters), limit_s=int(limit),
               worst_case_s=sum(p["budget_s"] for p in phases), phases=phases, gpu_tests=tests,
               bench=bench, step_model=dict(assumed_link_gbs=float(link_gbs), plans=plans))
tmp = os.path.join(logs, "summary.json.tmp")
with open(tmp, "w") as f: json.dump(summary, f, indent=1)
os.replace(tmp, os.path.join(logs, "summary.json"))
out = [f"owt GPU check, {summary['date']}{' (dry run: nothing ran on a GPU)' if dry else ''}",
       f"GPU: {gpu}; bundle commit {commit}", "",
       f"{'phase':<11} {'budget':>6} {'took':>5}  status    log"]
for p in phases:
    out.append(f"{p['name']:<11} {p['budget_s']:>5}s {p['seconds']:>4}s  {p['status']:<9} {p['log']}")
out.append(f"{'(sum)':<11} {sum(p['budget_s'] for p in phases):>5}s        of at most {limit} s")
if tests:
    out.append(f"gpu tests: {tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, {tests.get('skipped', 0)} skipped")
if bench:
    out += ["", f"AlexNet-OWT (owt) vs torchvision alexnet, 224x224, batch {batch}, {iters} timed steps",
            f"{'precision':<10} {'owt img/s':>10} {'torch img/s':>12} {'owt/torch':>9}  {'owt peak':>8} {'owt smi':>8}  {'torch peak':>10} {'torch smi':>9}  torch loss",
            f"{'':<10} {'':>10} {'':>12} {'':>9}  {'MiB':>8} {'MiB':>8}  {'MiB':>10} {'MiB':>9}"]
    fmt = lambda v, d=1: "n/a" if v is None else f"{v:.{d}f}"
    for prec, r in bench.items():
        loss = "n/a" if r["torch_first_loss"] is None else f"{r['torch_first_loss']:.3f} -> {r['torch_final_loss']:.3f} ({'ok' if r['torch_loss_ok'] else 'NOT falling/finite'})"
        out.append(f"{prec:<10} {fmt(r['owt_images_per_s']):>10} {fmt(r['torch_images_per_s']):>12} "
                   f"{fmt(r['owt_over_torch'], 2):>9}  {fmt(r['owt_peak_mib'], 0):>8} {fmt(r['owt_smi_mib'], 0):>8}  "
                   f"{fmt(r['torch_peak_mib'], 0):>10} {fmt(r['torch_smi_mib'], 0):>9}  {loss}")
    out += ["peak: allocator peak in use (owt: cuda_memory_stats; torch: max_memory_allocated);",
            "smi: max nvidia-smi memory.used minus idle (context, handles and cached blocks too)."]
if plans:
    out += ["", f"step model from this GPU's AlexNet-OWT layer times, batch {batch} per GPU, over an ASSUMED "
            f"{float(link_gbs):g} GB/s link (overlap 1); predicted, not measured:",
            f"{'K':>3} {'owt step ms':>12} {'speedup':>8} {'dp step ms':>11} {'speedup':>8}"]
    for k, p in sorted(plans.items(), key=lambda kv: int(kv[0])):
        out.append(f"{k:>3} {1e3 * p['step_seconds']:>12.2f} {p['speedup']:>8.2f} "
                   f"{1e3 * p['step_seconds_dp']:>11.2f} {p['speedup_dp']:>8.2f}")
with open(os.path.join(logs, "summary.txt"), "w") as f: f.write("\n".join(out) + "\n")
PY
}

json_get() {  # json_get FILE KEY: KEY of the last line's JSON object, or n/a
  python3 -c 'import json,sys
try:
    d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
    v = d.get(sys.argv[2])
    print("n/a" if v is None else ("yes" if v is True else "no" if v is False else v))
except Exception:
    print("n/a")' "$1" "$2"
}

# Samples nvidia-smi's memory.used (MiB) of GPU 0 every 100 ms into $1 until stopped.
start_sampler() {
  SAMPLER=""
  [[ -z $DRY ]] || return 0
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 >"$1" 2>/dev/null &
  SAMPLER=$!
}
stop_sampler() {
  [[ -n $SAMPLER ]] || return 0
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=""
}
max_of() { local m; m=$(grep -hE '^[0-9]+$' "$1" 2>/dev/null | sort -n | tail -1); echo "${m:-0}"; }

setup_steps() {
  echo "gpu_check setup, $(date)"
  WORK=$(mktemp -d /tmp/owt-gpu-check.XXXXXX)
  echo "unpacking $BUNDLE_TAR into $WORK"
  timeout 15 tar -C "$WORK" -xzf "$BUNDLE_TAR" || { echo "cannot unpack the bundle"; return 1; }
  B=$WORK/owt-gpu-bundle
  OWT=$B/bin/owt
  TESTS=$B/bin/owt_gpu_tests
  COMMIT=$(head -1 "$B/COMMIT" 2>/dev/null || echo unknown)
  echo "bundle commit: $(cat "$B/COMMIT" 2>/dev/null)"
  # Only owt's own processes get these: PyTorch keeps its own libraries.
  OWT_LD="$B/lib:$B/bin:$(cuda_lib_dirs)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "LD_LIBRARY_PATH for owt: $OWT_LD"
  local missing
  missing=$(env LD_LIBRARY_PATH="$OWT_LD" ldd "$OWT" "$TESTS" "$B/bin/libowt_cuda.so" |
            awk '/not found/{print $1}' | sort -u | tr '\n' ' ')
  [[ -z $missing ]] || { echo "shared libraries not found: $missing"; return 1; }
  echo "all shared libraries found"
  env LD_LIBRARY_PATH="$OWT_LD" "$OWT" --help >/dev/null || { echo "owt --help failed"; return 1; }
  env LD_LIBRARY_PATH="$OWT_LD" "$TESTS" --gtest_list_tests >"$WORK/tests.list" ||
    { echo "owt_gpu_tests --gtest_list_tests failed"; return 1; }
  echo "owt --help runs; owt_gpu_tests lists $(grep -c '^  ' "$WORK/tests.list") tests"
  if command -v nvidia-smi >/dev/null; then
    GPU_NAME=$(timeout 10 nvidia-smi --query-gpu=name,memory.total,driver_version \
               --format=csv,noheader -i 0 | tr ',' ';')
    echo "GPU 0: $GPU_NAME"
  elif [[ -z $DRY ]]; then
    echo "nvidia-smi not found: is this a GPU machine?"; return 1
  else
    GPU_NAME="none (dry run)"
    echo "nvidia-smi absent (dry run)"
  fi
}

phase_setup() {
  local t0=$SECONDS log=$LOGS/setup.log rc=0
  setup_steps >"$log" 2>&1 || rc=$?
  [[ -n $WORK ]] || WORK=$(mktemp -d /tmp/owt-gpu-check.XXXXXX)  # for the summary
  record_phase setup "$( ((rc == 0)) && echo passed || echo failed)" "$rc" $((SECONDS - t0)) "$log"
  return $rc
}

phase_gpu_tests() {
  local t0=$SECONDS log=$LOGS/gpu_tests.log rc=0
  : >"$log"
  say "gpu tests (owt_gpu_tests, OWT_REQUIRE_GPU=1): budget ${BUDGET[gpu-tests]}s, log $log"
  timed gpu-tests "$log" env LD_LIBRARY_PATH="$OWT_LD" OWT_REQUIRE_GPU=1 OWT_SOURCE_DIR="$ROOT" \
    NCCL_DEBUG=WARN "$TESTS" --gtest_color=no --gtest_output="xml:$LOGS/gpu_tests.xml" || rc=$?
  grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$log" | head -40
  record_phase gpu-tests "$(status_of $rc)" "$rc" $((SECONDS - t0)) "$log"
  [[ -n $DRY ]] || ((rc == 0)) || OVERALL=1
}

phase_memcheck() {
  local t0=$SECONDS log=$LOGS/memcheck.log rc=0 cs
  : >"$log"
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  if [[ -z $cs ]]; then
    echo "compute-sanitizer not found: memcheck skipped" | tee -a "$log"
    record_phase memcheck skipped 0 $((SECONDS - t0)) "$log"
    return
  fi
  say "compute-sanitizer memcheck over GpuExact.* and GpuBatchNorm.WorkerWithNoRows*: budget ${BUDGET[memcheck]}s, log $log"
  timed memcheck "$log" env LD_LIBRARY_PATH="$OWT_LD" OWT_REQUIRE_GPU=1 "$cs" --tool memcheck \
    --error-exitcode 99 "$TESTS" --gtest_color=no --gtest_filter='GpuExact.*:GpuBatchNorm.WorkerWithNoRows*' || rc=$?
  grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' "$log" | head -10
  record_phase memcheck "$(status_of $rc)" "$rc" $((SECONDS - t0)) "$log"
  [[ -n $DRY ]] || ((rc == 0)) || OVERALL=1
}

# bash -c "$TO_FILE" _ FILE CMD...: CMD's stdout into FILE (the JSON), then into the log too.
TO_FILE='out=$1; shift; "$@" >"$out"; rc=$?; cat "$out"; exit $rc'

# model_in PRECISION: AlexNet-OWT's model file with that precision, written under $WORK once;
# prints its path.
model_in() {
  local model=$WORK/alexnet_owt_$1.yaml
  if [[ ! -f $model ]]; then
    grep -v '^precision:' "$MODEL" >"$model"
    printf '\nprecision: %s\n' "$1" >>"$model"
  fi
  echo "$model"
}

phase_bench() {  # phase_bench PRECISION
  local prec=$1 log=$LOGS/bench.log t0 rc
  local model; model=$(model_in "$prec")
  local idle=0
  [[ -n $DRY ]] || idle=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)

  t0=$SECONDS rc=0
  say "owt bench AlexNet-OWT $prec: budget ${BUDGET[owt-$prec]}s, log $log"
  start_sampler "$WORK/owt_$prec.mem"
  timed "owt-$prec" "$log" bash -c "$TO_FILE" _ "$WORK/owt_$prec.json" env LD_LIBRARY_PATH="$OWT_LD" \
    "$OWT" bench "$model" --device cuda --batch "$BATCH" --iters "$ITERS" --json || rc=$?
  stop_sampler
  record_phase "owt-$prec" "$(status_of $rc)" "$rc" $((SECONDS - t0)) "$log"
  local o=n/a o_peak=n/a o_smi=n/a
  if [[ -z $DRY ]]; then
    if ((rc == 0)); then
      o=$(json_get "$WORK/owt_$prec.json" images_per_s)
      o_peak=$(json_get "$WORK/owt_$prec.json" peak_gpu_bytes)
      [[ $o_peak =~ ^[0-9]+$ ]] && o_peak=$((o_peak >> 20))
      o_smi=$(($(max_of "$WORK/owt_$prec.mem") - idle))
    else
      OVERALL=1
    fi
  fi

  t0=$SECONDS rc=0
  say "PyTorch torchvision alexnet $prec: budget ${BUDGET[torch-$prec]}s, log $log"
  start_sampler "$WORK/torch_$prec.mem"
  timed "torch-$prec" "$log" bash -c "$TO_FILE" _ "$WORK/torch_$prec.json" env PYTHONUNBUFFERED=1 \
    python3 "$ROOT/tools/bench/torch_alexnet_gpu.py" --precision "$prec" --batch "$BATCH" \
    --iters "$ITERS" || rc=$?
  stop_sampler
  record_phase "torch-$prec" "$(status_of $rc)" "$rc" $((SECONDS - t0)) "$log"
  local t=n/a t_peak=n/a t_smi=n/a first=n/a final=n/a ok=n/a
  if [[ -z $DRY && -s $WORK/torch_$prec.json ]]; then
    t=$(json_get "$WORK/torch_$prec.json" images_per_s)
    t_peak=$(json_get "$WORK/torch_$prec.json" peak_allocated_bytes)
    [[ $t_peak =~ ^[0-9]+$ ]] && t_peak=$((t_peak >> 20))
    t_smi=$(($(max_of "$WORK/torch_$prec.mem") - idle))
    first=$(json_get "$WORK/torch_$prec.json" first_loss)
    final=$(json_get "$WORK/torch_$prec.json" final_loss)
    ok=$(json_get "$WORK/torch_$prec.json" loss_ok)
  fi
  [[ -n $DRY ]] || ((rc == 0)) || OVERALL=1   # rc 3: the loss did not fall or is not finite
  BENCH+="$prec $o $t $o_peak $o_smi $t_peak $t_smi $first $final $ok"$'\n'
  write_summary
}

# The step-time model's inputs from this GPU: AlexNet-OWT's layer times (tf32, one GPU), and
# `owt plan` predictions for K = 2, 4, 8 over the assumed link, all under $LOGS/step_model/.
phase_step_model() {
  local t0=$SECONDS log=$LOGS/step_model.log rc=0 dir=$LOGS/step_model
  local model profile=$dir/gpu_profile_alexnet_owt.json
  model=$(model_in tf32)
  mkdir -p "$dir" && : >"$log"
  say "step model: owt bench --profile, then owt plan K=2,4,8 over an assumed ${LINK_GBS} GB/s link: budget ${BUDGET[step-model]}s, log $log"
  timed step-model "$log" bash -c '
    set -e
    owt=$1 ld=$2 model=$3 batch=$4 profile=$5 dir=$6 gbs=$7
    env LD_LIBRARY_PATH="$ld" "$owt" bench "$model" --device cuda --batch "$batch" --iters 10 \
      --profile --json >"$profile.out"
    cat "$profile.out"
    tail -n 1 "$profile.out" >"$profile"  # the JSON line alone, whatever else was printed
    rm -f "$profile.out"
    for k in 2 4 8; do
      env LD_LIBRARY_PATH="$ld" "$owt" plan "$model" --workers "$k" --batch "$batch" --profile "$profile" \
        --bandwidth "$gbs" --overlap 1 --json >"$dir/gpu_plan_alexnet_owt_k$k.json"
    done
    echo "plans: $dir/gpu_plan_alexnet_owt_k{2,4,8}.json"' \
    _ "$OWT" "$OWT_LD" "$model" "$BATCH" "$profile" "$dir" "$LINK_GBS" || rc=$?
  record_phase step-model "$(status_of $rc)" "$rc" $((SECONDS - t0)) "$log"
  [[ -n $DRY ]] || ((rc == 0)) || OVERALL=1
}

run_check() {
  local total=0 p
  for p in "${ORDER[@]}"; do total=$((total + BUDGET[$p])); done
  ((total <= LIMIT)) || die "the phase budgets add up to ${total}s, over the ${LIMIT}s limit"
  # First, and fast: without the bundle nothing can run (no build on the GPU machine).
  [[ -f $BUNDLE_TAR ]] || die "no bundle at $BUNDLE_TAR. Build it on a development machine with \
'tools/gpu_check.sh --bundle' and carry build-bundle/owt-gpu-bundle.tar.gz with the run (it \
cannot be built here: no yaml-cpp, oneDNN, OpenBLAS or GTest)"
  command -v python3 >/dev/null || die "python3 not found"
  mkdir -p "$LOGS" || die "cannot create $LOGS"
  rm -f "$LOGS"/{setup.log,gpu_tests.log,gpu_tests.xml,memcheck.log,bench.log,step_model.log,summary.json,summary.txt}
  rm -rf "$LOGS/step_model"
  say "worst case ${total}s of at most ${LIMIT}s; logs and summary in $LOGS${DRY:+ (dry run)}"
  for p in "${ORDER[@]}"; do printf '  %-11s %4ss\n' "$p" "${BUDGET[$p]}"; done

  say "setup: unpack and check the bundle (budget ${BUDGET[setup]}s, log $LOGS/setup.log)"
  if ! phase_setup; then
    tail -5 "$LOGS/setup.log"
    [[ -f $LOGS/summary.txt ]] && cat "$LOGS/summary.txt"
    die "setup failed (log $LOGS/setup.log)"
  fi
  phase_gpu_tests
  phase_memcheck
  phase_bench tf32
  phase_bench bf16
  phase_step_model
  record_phase summary "$( [[ -n $DRY ]] && echo dry-run || { ((OVERALL == 0)) && echo passed || echo failed; })" \
    "$OVERALL" 0 "$LOGS/summary.txt"
  say "done in $((SECONDS - STARTED))s; logs in $LOGS"
  echo
  cat "$LOGS/summary.txt"
  [[ -n $WORK && -z ${OWT_GPU_CHECK_KEEP:-} ]] && rm -rf "$WORK"
  return "$OVERALL"
}

case "${1:-}" in
  --bundle) make_bundle ;;
  ""|--run) run_check ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" ;;
  *) die "unknown argument '$1' (use --bundle, --run or --help)" ;;
esac
