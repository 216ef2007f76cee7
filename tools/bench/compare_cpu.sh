#!/usr/bin/env bash
# Side-by-side CPU training throughput, owt against PyTorch at the same thread count: fmnist at
# batch 128 and AlexNet-OWT (224x224) at batch 32, synthetic data, forward + backward + SGD
# momentum. Runs interleave (owt, torch, owt, torch, ...); the best of each is reported.
#
#   tools/bench/compare_cpu.sh [--threads T] [--rounds R] [--owt PATH] [--quick] [--bf16]
#                              [--case "MODEL BATCH ITERS WARMUP" ...]
#
# --case (repeatable) replaces the two default cases, e.g. the ResNets:
#   --case "models/resnet_fmnist.yaml 128 10 2" --case "models/resnet18.yaml 16 3 1"
#
# --owt defaults to $OWT_BIN, else build/owt. PyTorch is Debian's (/usr/bin/python3) with
# torch.set_num_threads(T), OMP_WAIT_POLICY=passive and MALLOC_MMAP_THRESHOLD_=1073741824, its
# model built by tools/torch_interop.py from the same model file; the better of NCHW and
# channels_last is reported. owt runs as it is and with the same two variables; the better is
# reported (under CPU contention libgomp's default spin-waiting costs it 2-3x). PyTorch's fp32
# linear layers and torch.mm run on Debian's OpenBLAS 0.3.21, which falls back to its slowest
# kernels (Prescott, SSE3) on CPUs it does not know (e.g. Sapphire/Emerald Rapids): each torch
# fp32 run and the sgemm ceiling are also timed with OPENBLAS_CORETYPE set from the CPU flags
# (SkylakeX with avx512f, else Haswell with avx2) and the better is reported.
#
# Printed: the ceilings, the load average, then one table of fp32 rows. The ceilings: sgemm is
# float32 torch.mm 2048x2048 at T threads (OpenBLAS, the better of as installed and with
# OPENBLAS_CORETYPE; owt's own sgemm is oneDNN's); where /proc/cpuinfo has avx512_bf16, also
# the bf16 gemm ceiling, bfloat16 torch.mm 2048x2048 at T threads (oneDNN), bfloat16 output.
# Each is the best of one measurement before the runs and one after.
#
# --bf16 (needs avx512_bf16, else exit 2) also times mixed precision: `owt bench --precision
# bf16` against torch with its forward and loss under torch.autocast("cpu", bfloat16), backward
# and SGD outside, fp32 master weights (torch_train_bench.py --bf16), interleaved with the fp32
# runs the same way. A second table "bf16 (...)" follows, same columns, its last one the owt
# GFLOP/s as a share of the bf16 gemm ceiling instead of sgemm.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
threads=2 rounds=2 quick=0 bf16=0 owt=${OWT_BIN:-$root/build/owt} custom=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --owt) owt=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --bf16) bf16=1; shift ;;
    --case) custom+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "compare_cpu: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
has_bf16=0
grep -qw avx512_bf16 /proc/cpuinfo && has_bf16=1
if [[ $bf16 == 1 && $has_bf16 == 0 ]]; then
  echo "compare_cpu: error: --bf16 needs a CPU with AVX512_BF16 (this one lacks it)" >&2; exit 2
fi
py=/usr/bin/python3
[[ -x $owt ]] || { echo "compare_cpu: error: no owt binary at $owt (build it, or pass --owt PATH)" >&2; exit 1; }
"$py" -c 'import torch, yaml' 2>/dev/null \
  || { echo "compare_cpu: error: $py lacks torch or yaml (tools/install_deps.sh)" >&2; exit 1; }

torch_env=(env OMP_WAIT_POLICY=passive MALLOC_MMAP_THRESHOLD_=1073741824)
tb=("${torch_env[@]}" "$py" "$root/tools/bench/torch_train_bench.py")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir "$out/bf16"  # the --bf16 rows, apart so that no case name can collide with them

# model  batch  iters  warmup
cases=("$root/models/fmnist.yaml 128 20 3" "$root/models/alexnet_owt.yaml 32 4 1")
[[ $quick == 1 ]] && cases=("$root/models/fmnist.yaml 128 5 1" "$root/models/alexnet_owt.yaml 32 1 1")
[[ ${#custom[@]} -gt 0 ]] && cases=("${custom[@]}")

coretype=()  # OpenBLAS's kernels for this CPU's ISA, when it does not recognise the model
grep -qw avx2 /proc/cpuinfo && coretype=(OPENBLAS_CORETYPE=Haswell)
grep -qw avx512f /proc/cpuinfo && coretype=(OPENBLAS_CORETYPE=SkylakeX)
blas_envs=("")
[[ ${#coretype[@]} -gt 0 ]] && blas_envs+=("${coretype[0]}")

ceilings() {
  for blas in "${blas_envs[@]}"; do
    env $blas "${tb[@]}" --sgemm 2048 --threads "$threads" --json >> "$out/sgemm.json"
  done
  if [[ $has_bf16 == 1 ]]; then
    "${tb[@]}" --bf16-gemm 2048 --threads "$threads" --json >> "$out/bf16gemm.json"
  fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
ceilings
for ((r = 1; r <= rounds; ++r)); do
  for c in "${cases[@]}"; do
    read -r model batch iters warmup <<< "$c"
    name=$(basename "$model" .yaml)
    echo "round $r/$rounds: $name batch $batch ($iters steps each)" >&2
    precisions=(fp32); [[ $bf16 == 1 ]] && precisions+=(bf16)
    for precision in "${precisions[@]}"; do
      dir=$out owt_prec=() torch_prec=()
      [[ $precision == bf16 ]] && dir=$out/bf16 owt_prec=(--precision bf16) torch_prec=(--bf16)
      for policy in default passive; do  # libgomp's spin-waiting costs 2-3x on a loaded machine
        wait_env=(); [[ $policy == passive ]] && wait_env=("${torch_env[@]}")
        "${wait_env[@]}" "$owt" bench "$model" --batch "$batch" --iters "$iters" --warmup "$warmup" \
          --threads "$threads" --device cpu "${owt_prec[@]}" --json \
          | sed "s/}\$/, \"env\": \"$policy\"}/" >> "$dir/owt-$name.jsonl"
      done
      blas_variants=("${blas_envs[@]}"); [[ $precision == bf16 ]] && blas_variants=("")  # oneDNN only
      for blas in "${blas_variants[@]}"; do
        for layout in "" --channels-last; do
          env $blas "${tb[@]}" "$model" --batch "$batch" --iters "$iters" --warmup "$warmup" \
            --threads "$threads" $layout "${torch_prec[@]}" --json \
            | sed "s/}\$/, \"blas_env\": \"$blas\"}/" >> "$dir/torch-$name.jsonl"
        done
      done
    done
  done
done
ceilings
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$py" - "$out" "$threads" "$load_before" "$load_after" "$bf16" "${cases[@]}" <<'PY'
import json, os, sys
out, threads, before, after, bf16, cases = (sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4],
                                            sys.argv[5] == "1", sys.argv[6:])
def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
def table(dir, ceiling, ceiling_name, precision):
    lines = [f"| model | batch | owt images/s | PyTorch images/s | owt / PyTorch | owt GFLOP/s | PyTorch GFLOP/s | owt / {ceiling_name} |",
             f"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in cases:
        model, batch = c.split()[:2]
        name = os.path.basename(model)[:-5]
        owt_rows = rows(f"{dir}/owt-{name}.jsonl")
        if precision != "fp32" and any(r.get("precision") != precision for r in owt_rows):
            sys.exit(f"compare_cpu: error: owt bench --precision {precision} printed a row without "
                     f'"precision": "{precision}" for {name}')
        o = max(owt_rows, key=lambda r: r["images_per_s"])
        t = max(rows(f"{dir}/torch-{name}.jsonl"), key=lambda r: r["images_per_s"])
        layout = "channels_last" if t["channels_last"] else "NCHW"
        if t.get("blas_env"):
            layout += ", " + t["blas_env"]
        wait = "passive" if o["env"] == "passive" else "default env"
        lines.append(f"| {name} | {batch} | {o['images_per_s']:.0f} ({wait}) | {t['images_per_s']:.0f} ({layout}) | "
                     f"{o['images_per_s'] / t['images_per_s']:.2f} | {o['gflops_per_worker']:.0f} | "
                     f"{t['gflops']:.0f} | {100 * o['gflops_per_worker'] / ceiling:.0f}% |")
    return lines
sgemm = max(r["gflops"] for r in rows(f"{out}/sgemm.json"))
bf16gemm = max(r["gflops"] for r in rows(f"{out}/bf16gemm.json")) if os.path.exists(f"{out}/bf16gemm.json") else None
fp32_lines = table(out, sgemm, "sgemm", "fp32")  # both before printing: an error leaves no half table
bf16_lines = table(f"{out}/bf16", bf16gemm, "bf16 gemm", "bf16") if bf16 else []
print(f"sgemm 2048x2048 at {threads} threads (torch.mm -> OpenBLAS, with and without OPENBLAS_CORETYPE): {sgemm:.0f} GFLOP/s (best)")
if bf16gemm is not None:
    print(f"bf16 gemm 2048x2048 at {threads} threads (torch.mm bfloat16 -> oneDNN): {bf16gemm:.0f} GFLOP/s (best)")
print(f"load average (1, 5, 15 min): {before} before, {after} after; {os.cpu_count()} CPUs")
print()
print("\n".join(fp32_lines))
if bf16:
    print()
    print("bf16 (owt precision: bf16 against torch.autocast bfloat16)")
    print()
    print("\n".join(bf16_lines))
PY
