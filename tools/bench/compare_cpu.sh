#!/usr/bin/env bash
# Side-by-side CPU training throughput, owt against PyTorch at the same thread count: fmnist at
# batch 128 and AlexNet-OWT (224x224) at batch 32, synthetic data, forward + backward + SGD
# momentum. Runs interleave (owt, torch, owt, torch, ...); the best of each is reported.
#
#   tools/bench/compare_cpu.sh [--threads T] [--rounds R] [--owt PATH] [--quick]
#                              [--case "MODEL BATCH ITERS WARMUP" ...]
#
# --case (repeatable) replaces the two default cases, e.g. the ResNets:
#   --case "models/resnet_fmnist.yaml 128 10 2" --case "models/resnet18.yaml 16 3 1"
#
# --owt defaults to $OWT_BIN, else build/owt. PyTorch is Debian's (/usr/bin/python3) with
# torch.set_num_threads(T), OMP_WAIT_POLICY=passive and MALLOC_MMAP_THRESHOLD_=1073741824, its
# model built by tools/torch_interop.py from the same model file; the better of NCHW and
# channels_last is reported. owt runs as it is and with the same two variables; the better is
# reported (under CPU contention libgomp's default spin-waiting costs it 2-3x). The sgemm
# ceiling is torch.mm 2048x2048 at T threads: OpenBLAS, the library behind owt's own gemm.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
threads=2 rounds=2 quick=0 owt=${OWT_BIN:-$root/build/owt} custom=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --owt) owt=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --case) custom+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "compare_cpu: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
[[ -x $owt ]] || { echo "compare_cpu: error: no owt binary at $owt (build it, or pass --owt PATH)" >&2; exit 1; }
"$py" -c 'import torch, yaml' 2>/dev/null \
  || { echo "compare_cpu: error: $py lacks torch or yaml (tools/install_deps.sh)" >&2; exit 1; }

torch_env=(env OMP_WAIT_POLICY=passive MALLOC_MMAP_THRESHOLD_=1073741824)
tb=("${torch_env[@]}" "$py" "$root/tools/bench/torch_train_bench.py")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# model  batch  iters  warmup
cases=("$root/models/fmnist.yaml 128 20 3" "$root/models/alexnet_owt.yaml 32 4 1")
[[ $quick == 1 ]] && cases=("$root/models/fmnist.yaml 128 5 1" "$root/models/alexnet_owt.yaml 32 1 1")
[[ ${#custom[@]} -gt 0 ]] && cases=("${custom[@]}")

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"${tb[@]}" --sgemm 2048 --threads "$threads" --json > "$out/sgemm.json"
for ((r = 1; r <= rounds; ++r)); do
  for c in "${cases[@]}"; do
    read -r model batch iters warmup <<< "$c"
    name=$(basename "$model" .yaml)
    echo "round $r/$rounds: $name batch $batch ($iters steps each)" >&2
    for policy in default passive; do  # libgomp's spin-waiting costs 2-3x on a loaded machine
      wait_env=(); [[ $policy == passive ]] && wait_env=("${torch_env[@]}")
      "${wait_env[@]}" "$owt" bench "$model" --batch "$batch" --iters "$iters" --warmup "$warmup" \
        --threads "$threads" --device cpu --json | sed "s/}\$/, \"env\": \"$policy\"}/" >> "$out/owt-$name.jsonl"
    done
    for layout in "" --channels-last; do
      "${tb[@]}" "$model" --batch "$batch" --iters "$iters" --warmup "$warmup" --threads "$threads" \
        $layout --json >> "$out/torch-$name.jsonl"
    done
  done
done
"${tb[@]}" --sgemm 2048 --threads "$threads" --json >> "$out/sgemm.json"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$py" - "$out" "$threads" "$load_before" "$load_after" "${cases[@]}" <<'PY'
import json, os, sys
out, threads, before, after, cases = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
sgemm = max(r["gflops"] for r in rows(f"{out}/sgemm.json"))
print(f"sgemm 2048x2048 at {threads} threads (torch.mm -> OpenBLAS): {sgemm:.0f} GFLOP/s (best)")
print(f"load average (1, 5, 15 min): {before} before, {after} after; {os.cpu_count()} CPUs")
print()
print(f"| model | batch | owt images/s | PyTorch images/s | owt / PyTorch | owt GFLOP/s | PyTorch GFLOP/s | owt / sgemm |")
print(f"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for c in cases:
    model, batch = c.split()[:2]
    name = os.path.basename(model)[:-5]
    o = max(rows(f"{out}/owt-{name}.jsonl"), key=lambda r: r["images_per_s"])
    t = max(rows(f"{out}/torch-{name}.jsonl"), key=lambda r: r["images_per_s"])
    layout = "channels_last" if t["channels_last"] else "NCHW"
    wait = "passive" if o["env"] == "passive" else "default env"
    print(f"| {name} | {batch} | {o['images_per_s']:.0f} ({wait}) | {t['images_per_s']:.0f} ({layout}) | "
          f"{o['images_per_s'] / t['images_per_s']:.2f} | {o['gflops_per_worker']:.0f} | "
          f"{t['gflops']:.0f} | {100 * o['gflops_per_worker'] / sgemm:.0f}% |")
PY
