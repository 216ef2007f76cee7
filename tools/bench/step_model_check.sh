#!/usr/bin/env bash
# Validates `owt plan`'s step-time model at K = 2 workers on this machine: measures one worker's
# layer times (owt bench --profile, 1 thread), the collectives over shared memory and over TCP
# alone (mpirun -np 2 owt bench --comm), predicts the two-worker step (owt plan --profile
# --comm) and measures it (mpirun -np 2 owt bench, 1 thread per rank, median step, the better of
# two runs), hybrid and data-parallel.
#
#   tools/bench/step_model_check.sh [--owt PATH] [--out DIR] [--case "MODEL BATCH ITERS" ...]
#
# Default cases: fmnist at 64 rows per worker, AlexNet-OWT at 16. Prints one table: measured
# and predicted median ms per step and the error; the JSON files stay in --out (default a
# temporary directory, printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
owt=${OWT_BIN:-$root/build/owt}
out=""
cases=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --owt) owt=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --case) cases+=("$2"); shift 2 ;;
    *) echo "step_model_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ ${#cases[@]} -gt 0 ]] || cases=("models/fmnist.yaml 64 20" "models/alexnet_owt.yaml 16 6")
[[ -x $owt ]] || { echo "step_model_check.sh: no owt binary at $owt (tools/build.sh, or --owt PATH)" >&2; exit 2; }
out=${out:-$(mktemp -d)}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
declare -A links=([shm]="" [tcp]="--mca btl tcp,self")
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

for link in shm tcp; do
  # shellcheck disable=SC2086  # the MCA flags are words
  mpirun -np 2 ${links[$link]} "$owt" bench --comm --json --threads 1 --max-mib 64 > "$out/comm_$link.json"
  echo "collectives over $link: overlap $(field "$out/comm_$link.json" 'd["overlap"]')" >&2
done

rows=()
for c in "${cases[@]}"; do
  read -r model batch iters <<< "$c"
  name=$(basename "$model" .yaml)
  "$owt" bench "$root/$model" --batch "$batch" --iters "$iters" --threads 1 --profile --json \
    > "$out/profile_$name.json"
  for link in shm tcp; do
    "$owt" plan "$root/$model" --workers 2 --batch "$batch" --profile "$out/profile_$name.json" \
      --comm "$out/comm_$link.json" --json > "$out/plan_${name}_$link.json"
    for parallel in owt dp; do
      measured=""
      for try in 1 2; do  # the better of two runs: a neighbour's burst slows one, not both
        # shellcheck disable=SC2086
        mpirun -np 2 ${links[$link]} "$owt" bench "$root/$model" --batch "$batch" --iters "$iters" \
          --threads 1 --parallel "$parallel" --json > "$out/measured_${name}_${link}_${parallel}_$try.json"
        ms=$(field "$out/measured_${name}_${link}_${parallel}_$try.json" 'd["median_ms_per_step"]')
        measured=$(python3 -c "print(min(float(x) for x in '$measured $ms'.split()))")
      done
      key=$([[ $parallel == owt ]] && echo hybrid || echo data_parallel)
      predicted=$(field "$out/plan_${name}_$link.json" "1e3 * d['prediction']['$key']['step_seconds']")
      exposed=$(field "$out/plan_${name}_$link.json" "1e3 * d['prediction']['$key']['exposed_comm_seconds']")
      rows+=("$(printf '| %s | %s | %s | %s | %.1f | %.1f | %.1f | %+.1f%% |' "$name" "$batch" "$link" \
        "$parallel" "$measured" "$predicted" "$exposed" \
        "$(python3 -c "print(100 * ($predicted - $measured) / $measured)")")")
      echo "${rows[-1]}" >&2
    done
  done
done
echo "files in $out"
echo "| model | batch per worker | link | parallel | measured ms/step | predicted ms/step | of which exposed comm | error |"
echo "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
