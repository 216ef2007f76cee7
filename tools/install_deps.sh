#!/usr/bin/env bash
# Installs every Debian package that owt's build, tests and default run need, then the
# project's Python venv (tools/venv.sh: tensorboard, onnx, onnxruntime from PyPI).
# Idempotent and non-interactive; prints nothing when everything is already present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libyaml-cpp-dev libcli11-dev zlib1g-dev nlohmann-json3-dev
  libgtest-dev googletest
  libopenmpi-dev openmpi-bin
  libdnnl-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev  # optional: image folders
  dataset-fashion-mnist
  # Interop test and side-by-side benchmarks (tools/torch_interop.py, tools/bench) under
  # Debian's /usr/bin/python3; torchvision for the resnet18 conversion test; the OpenMP
  # OpenBLAS under PyTorch's linear layers (owt's own gemms are oneDNN's).
  python3-torch python3-yaml python3-numpy python3-torchvision libopenblas0-openmp
  # tools/plot.py; the project's venv (tools/venv.sh: tensorboard, onnx, onnxruntime from PyPI).
  python3-matplotlib python3-venv
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install_deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Python packages Debian lacks, in the project's .venv (quiet when it is up to date).
bash "$(dirname "$0")/venv.sh"
