#!/usr/bin/env bash
# owt <-> PyTorch interop: trains a tiny model covering every layer type with owt, converts the
# checkpoint to torch (tools/torch_interop.py), checks torch's eval equals `owt eval` (loss to
# 1e-4 relative, top-1 and top-5 equal), converts back and checks owt reads identical weights,
# then checks two owt SGD steps against torch.optim.SGD (every backward, decay, momentum).
# Usage: torch_interop_test.sh OWT_BINARY SOURCE_DIR
set -euo pipefail

owt=${1:?usage: torch_interop_test.sh OWT_BINARY SOURCE_DIR}
src=${2:?usage: torch_interop_test.sh OWT_BINARY SOURCE_DIR}
owt=$(realpath "$owt") src=$(realpath "$src")
[[ -x $owt ]] || { echo "FAIL: no owt binary at $owt" >&2; exit 1; }
source "$src/tests/interop/torch_env.sh"
step() { echo "== $*"; }

step "tiny IDX data set (4 classes, 24x24; 480 train, 203 test: the last eval batch is partial)"
"$py" - <<'PY'
import gzip, struct, torch
g = torch.Generator().manual_seed(7)
protos = torch.rand(4, 24, 24, generator=g)
def write(prefix, n, compress):
    labels = torch.randint(0, 4, (n,), generator=g)
    imgs = (0.45 * protos[labels] + 0.55 * torch.rand(n, 24, 24, generator=g)) * 255
    op = (lambda p: gzip.open(p + ".gz", "wb")) if compress else (lambda p: open(p, "wb"))
    with op(f"data/{prefix}-images-idx3-ubyte") as f:
        f.write(struct.pack(">IIII", 0x803, n, 24, 24) + imgs.to(torch.uint8).numpy().tobytes())
    with op(f"data/{prefix}-labels-idx1-ubyte") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.to(torch.uint8).numpy().tobytes())
import os; os.makedirs("data")
write("train", 480, True)
write("t10k", 203, False)
PY

cat > model.yaml <<YAML
# Every layer type owt has: conv (square; rectangular, strided), lrn (alpha/size, clipped
# window), maxpool (overlapping, padded, on negative inputs), relu, avgpool (padded:
# count_include_pad), dropout, linear (flattening its input), flatten, the loss.
name: interop
input: [1, 24, 24]
classes: 4
seed: 3
data: {format: idx, path: $tmp/data, mean: [0.45], std: [0.2]}
layers:
  - {name: conv1, type: conv, filters: 8, size: 5, stride: 2, pad: 2}
  - {name: norm1, type: lrn, size: 5, alpha: 0.5, beta: 0.75, k: 1.5}
  - {name: pool1, type: maxpool, size: 3, stride: 2, pad: 1}
  - {name: relu1, type: relu}
  - {name: conv2, type: conv, filters: 12, size_h: 3, size_w: 2, stride: 1, pad: 1}
  - {name: relu2, type: relu}
  - {name: pool2, type: avgpool, size: 3, stride: 2, pad: 1}
  - {name: drop1, type: dropout, rate: 0.2}
  - {name: fc1, type: linear, outputs: 32}
  - {name: relu3, type: relu}
  - {name: flat, type: flatten}
  - {name: drop2, type: dropout, rate: 0.5}
  - {name: fc2, type: linear, outputs: 4}
  - {name: loss, type: softmax_cross_entropy}
solver: {type: sgd, lr: 0.05, momentum: 0.9, weight_decay: 5.0e-4, batch: 32, epochs: 4}
YAML

step "owt train (60 steps)"
"$owt" train model.yaml --max-steps 60 --threads 2 --out run --no-progress > train.log 2>&1 \
  || { cat train.log; fail "owt train"; }
ckpt=run/checkpoints/last.safetensors
[[ -f $ckpt ]] || fail "no $ckpt"

step "owt eval / torch eval of the same weights"
"$owt" eval model.yaml --checkpoint "$ckpt" --json --threads 2 > owt_eval.json
"$py" "$tool" to-torch model.yaml "$ckpt" weights.pt
"$py" "$tool" eval model.yaml weights.pt --json > torch_eval.json
cat owt_eval.json torch_eval.json

step "from-torch, owt eval of the converted file, tensor bytes"
"$py" "$tool" from-torch model.yaml weights.pt back.safetensors
"$owt" eval model.yaml --checkpoint back.safetensors --json --threads 2 > back_eval.json
cat back_eval.json

"$py" - "$src/tools" "$ckpt" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import torch_interop as ti
o, t, b = (json.load(open(f)) for f in ("owt_eval.json", "torch_eval.json", "back_eval.json"))
ok = True
def check(cond, what):
    global ok
    print(("ok   " if cond else "FAIL ") + what)
    ok &= bool(cond)
rel = abs(o["loss"] - t["loss"]) / max(abs(o["loss"]), 1e-12)
check(o["examples"] == t["examples"] == 203, f"examples owt {o['examples']} torch {t['examples']}")
check(rel <= 1e-4, f"loss owt {o['loss']:.6f} torch {t['loss']:.6f} (relative difference {rel:.2e})")
n = o["examples"]  # owt prints fractions to 6 decimals: compare counts of correct examples
for k in ("top1", "top5"):
    check(round(o[k] * n) == round(t[k] * n), f"{k} owt {round(o[k] * n)}/{n} torch {round(t[k] * n)}/{n}")
check(o["top1"] > 0.4, f"the trained model is better than chance (top-1 {o['top1']:.3f})")
for k in ("loss", "top1", "top5", "examples"):
    check(b[k] == o[k], f"converted-back checkpoint: owt eval {k} {b[k]} == {o[k]}")
orig, meta0 = ti.read_safetensors(sys.argv[2])
back, meta = ti.read_safetensors("back.safetensors")
params = [k for k in orig if not k.startswith("optim.")]
check(sorted(orig) == sorted(back), f"same tensor names ({len(orig)})")
same = all(orig[k].dtype == back[k].dtype and orig[k].numpy().tobytes() == back[k].numpy().tobytes()
           for k in params)
check(same, f"{len(params)} parameter tensors byte-identical after owt -> torch -> owt")
check(all(not back[k].any() for k in back if k.startswith("optim.")), "momentum buffers are zero")
check(meta["format"] == "owt-checkpoint-1" and meta["step"] == "0" and meta["epoch"] == "0"
      and meta["model"] == open("model.yaml").read(), "metadata: format, step 0, epoch 0, model text")
sys.exit(0 if ok else 1)
PY

step "the converted file starts training (--init-from) and resumes (--resume)"
"$owt" train model.yaml --init-from back.safetensors --max-steps 2 --threads 2 --out run_init \
  --no-progress > init.log 2>&1 || { cat init.log; fail "owt train --init-from"; }
"$owt" train model.yaml --resume back.safetensors --max-steps 2 --threads 2 --out run_resume \
  --no-progress > resume.log 2>&1 || { cat resume.log; fail "owt train --resume"; }

step "two SGD steps on the whole training set, dropout 0: owt's updates equal torch's"
# One batch of all 480 examples, so the shuffled order cannot matter; this checks every
# layer's backward, weight decay and momentum against torch.optim.SGD.
sed -e 's/rate: [0-9.]*}/rate: 0.0}/' -e 's/batch: 32,/batch: 480,/' model.yaml > full_batch.yaml
"$owt" train full_batch.yaml --init-from back.safetensors --max-steps 2 --threads 2 --out run_full \
  --no-progress > full.log 2>&1 || { cat full.log; fail "owt train full_batch.yaml"; }
"$py" - "$src/tools" <<'PY'
import json, sys, torch
sys.path.insert(0, sys.argv[1])
import torch_interop as ti
m = ti.load_owt_checkpoint(ti.build_model("full_batch.yaml"), "back.safetensors").train()
w0 = {k: v.clone() for k, v in m.state_dict().items()}
pixels, labels = ti.read_idx("data", "train")
x = ti.normalise(m, pixels)
s = m.config["solver"]
opt = torch.optim.SGD(m.parameters(), lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])
losses = []
for _ in range(2):
    opt.zero_grad()
    loss = m.loss(m(x), labels)
    loss.backward()
    opt.step()
    losses.append(loss.item())
owt_losses = [json.loads(l)["loss"] for l in open("run_full/metrics.jsonl") if '"train"' in l]
ok = len(owt_losses) == 2 and all(abs(a - b) <= 1e-4 * abs(b) for a, b in zip(owt_losses, losses))
print(("ok   " if ok else "FAIL ") + f"training losses owt {owt_losses} torch {[round(v, 6) for v in losses]}")
o, _ = ti.read_safetensors("run_full/checkpoints/last.safetensors")
params = dict(m.named_parameters())
for k, v in m.state_dict().items():
    dt, do = v - w0[k], o[k] - w0[k]
    rel = ((do - dt).norm() / dt.norm()).item()
    buf = opt.state[params[k]]["momentum_buffer"]
    rel_m = ((o[f"optim.{k}.momentum_buffer"] - buf).norm() / buf.norm()).item()
    good = rel <= 1e-4 and rel_m <= 1e-4
    print(("ok   " if good else "FAIL ") + f"{k}: update differs by {rel:.1e}, momentum by {rel_m:.1e} (relative)")
    ok &= good
sys.exit(0 if ok else 1)
PY

step "bad input: one clear message naming the tensor, non-zero exit"
"$py" - <<'PY'
import torch
sd = torch.load("weights.pt", weights_only=True)
sd["fc1.weight"] = sd["fc1.weight"][:, :-1].clone()
torch.save(sd, "bad_shape.pt")
del sd["fc1.weight"]
torch.save(sd, "missing.pt")
PY
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1; shift
  if "$py" "$tool" "$@" > err.out 2> err.log; then fail "$* succeeded"; fi
  [[ $(wc -l < err.log) -eq 1 ]] || { cat err.log; fail "$*: expected one line on stderr"; }
  grep -q -- "$pattern" err.log || { cat err.log; fail "$*: expected '$pattern'"; }
  echo "ok   rejected: $(cat err.log)"
}
expect_error "tensor 'fc1.weight' has shape \[32, 143\]" from-torch model.yaml bad_shape.pt bad.safetensors
expect_error "tensor 'fc1.weight' is missing" from-torch model.yaml missing.pt bad.safetensors
expect_error "not a safetensors file" to-torch model.yaml model.yaml out.pt
[[ ! -e bad.safetensors ]] || fail "a failed conversion left bad.safetensors"
echo "PASS"
