#!/usr/bin/env bash
# Makes the project's Python virtual environment, .venv at the repository root: Debian's
# /usr/bin/python3 with Debian's packages visible (--system-site-packages: python3-torch,
# python3-numpy, python3-yaml, python3-matplotlib) plus tools/python-requirements.txt from PyPI
# (tensorboard, onnx, onnxruntime). Run by tools/install_deps.sh; idempotent, and prints
# nothing when .venv already holds exactly those requirements.
#   .venv/bin/tensorboard --logdir runs        watch runs
#   .venv/bin/python tools/torch_interop.py to-onnx ...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv
req=$root/tools/python-requirements.txt
stamp=$venv/.owt-requirements  # the hash of the requirements it was made with
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -x $venv/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
  exit 0
fi
echo "tools/venv.sh: making $venv (tensorboard, onnx, onnxruntime from PyPI)" >&2
rm -f "$stamp"
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
echo "$want" >"$stamp"
