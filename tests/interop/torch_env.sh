# Sourced by the interop tests after they set $src (the source tree): Debian's python3 with
# torch and yaml in $py (exit 77, skipped, without them), tools/torch_interop.py in $tool, a
# fresh temporary directory as the working directory (removed on exit), and fail().
py=/usr/bin/python3  # Debian's python3-torch and python3-yaml live here, not in pyenv
tool="$src/tools/torch_interop.py"
if ! "$py" -c 'import torch, yaml' 2>/dev/null; then
  echo "SKIP: $py lacks torch or yaml (tools/install_deps.sh installs python3-torch python3-yaml)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
