#!/usr/bin/env bash
# Untrusted weight files run no code (issue 16, item 1): a .pt file whose unpickling would
# create a file is refused by `torch_interop.py from-torch` (and `eval`) with one clear error,
# the file never appears and nothing is written; a pickled nn.Module is refused the same way;
# a .safetensors state_dict (and an owt checkpoint) is accepted as input instead.
# Usage: untrusted_files_test.sh SOURCE_DIR
set -euo pipefail

src=${1:?usage: untrusted_files_test.sh SOURCE_DIR}
src=$(realpath "$src")
source "$src/tests/interop/torch_env.sh"

cat > model.yaml <<'YAML'
name: tiny
input: [1, 4, 4]
classes: 3
data: {format: idx, path: none}
layers:
  - {name: fc1, type: linear, outputs: 3}
  - {name: loss, type: softmax_cross_entropy}
solver: {lr: 0.1, batch: 4, epochs: 1}
YAML

"$py" - "$tmp" <<'PY'
import collections, os, sys, torch
tmp = sys.argv[1]

class CreatesAFile:
    """Unpickling this calls open(<marker>, "w"): the file appears if the loader runs code."""
    def __init__(self, marker):
        self.marker = marker
    def __reduce__(self):
        return (open, (self.marker, "w"))

sd = collections.OrderedDict([("fc1.weight", torch.randn(3, 16)), ("fc1.bias", torch.randn(3))])
evil = dict(sd)
evil["fc1.bias"] = CreatesAFile(os.path.join(tmp, "PWNED"))
torch.save(evil, "evil.pt")
control = dict(sd)
control["fc1.bias"] = CreatesAFile(os.path.join(tmp, "CONTROL"))
torch.save(control, "control.pt")
torch.save(torch.nn.Linear(16, 3), "module.pt")  # a whole pickled nn.Module
torch.save(sd, "good.pt")
PY

# The payload is live: a plain torch.load runs it.
"$py" -c 'import torch; torch.load("control.pt")' >/dev/null 2>&1 || true
[[ -e CONTROL ]] || fail "the control payload did not run: the test file is not malicious"
echo "ok   a plain torch.load of the crafted file runs its code (the payload is live)"

expect_refused() {  # expect_refused PATTERN ARGS...
  local pattern=$1; shift
  if "$py" "$tool" "$@" > out.log 2> err.log; then fail "$* succeeded"; fi
  [[ $(wc -l < err.log) -eq 1 ]] || { cat err.log; fail "$*: expected one line on stderr"; }
  grep -q "^torch_interop: error: " err.log || { cat err.log; fail "$*: not a torch_interop error line"; }
  grep -q -- "$pattern" err.log || { cat err.log; fail "$*: expected '$pattern'"; }
  echo "ok   refused: $(cat err.log)"
}
expect_refused "evil.pt: refused" from-torch model.yaml evil.pt out.safetensors
[[ ! -e PWNED ]] || fail "from-torch ran the code in evil.pt"
[[ ! -e out.safetensors ]] || fail "a refused conversion wrote out.safetensors"
expect_refused "evil.pt: refused" eval model.yaml evil.pt --data "$tmp"
[[ ! -e PWNED ]] || fail "eval ran the code in evil.pt"
expect_refused "module.pt: refused.*state_dict" from-torch model.yaml module.pt out.safetensors
[[ ! -e out.safetensors ]] || fail "a refused conversion wrote out.safetensors"
echo "ok   no file created, nothing written"

# Safe inputs: a state_dict .pt, and .safetensors files (plain and owt checkpoints).
"$py" "$tool" from-torch model.yaml good.pt a.safetensors > /dev/null
"$py" - "$src/tools" <<'PY'
import sys, torch
sys.path.insert(0, sys.argv[1])
import torch_interop as ti
sd = torch.load("good.pt", weights_only=True)
ti.write_safetensors("plain.safetensors", {k: v.half() for k, v in sd.items()}, {})
PY
"$py" "$tool" from-torch model.yaml plain.safetensors b.safetensors > /dev/null
"$py" "$tool" from-torch model.yaml a.safetensors c.safetensors > /dev/null  # an owt checkpoint
"$py" - "$src/tools" <<'PY'
import sys, torch
sys.path.insert(0, sys.argv[1])
import torch_interop as ti
sd = torch.load("good.pt", weights_only=True)
a, _ = ti.read_safetensors("a.safetensors")
b, _ = ti.read_safetensors("b.safetensors")
c, _ = ti.read_safetensors("c.safetensors")
ok = all(torch.equal(a[k], sd[k]) and torch.equal(c[k], sd[k]) for k in sd)
ok &= all(torch.equal(b[k], sd[k].half().float()) for k in sd)
ok &= sorted(a) == sorted(c) and "optim.fc1.weight.momentum_buffer" in c
print(("ok   " if ok else "FAIL ") + "safetensors inputs convert (F16 state_dict, owt checkpoint)")
sys.exit(0 if ok else 1)
PY
echo "PASS"
