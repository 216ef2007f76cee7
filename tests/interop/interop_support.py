# Shared by the Python interop tests (label interop): skip (exit 77) without Debian's torch and
# yaml, a temporary working directory, running owt and the tool, IDX data sets, ok/FAIL lines.
import atexit
import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile

SKIP = 77


def require(*modules):
    """Imports `modules` or exits 77 (ctest: skipped) naming the Debian package to install."""
    for name in modules:
        try:
            __import__(name)
        except ImportError:
            print(f"SKIP: {sys.executable} lacks {name} (tools/install_deps.sh installs python3-{name})")
            sys.exit(SKIP)


class Run:
    """Paths (owt binary, source tree, tools/torch_interop.py) and a fresh working directory
    that is removed on exit; `ok` turns False at the first failed check."""

    def __init__(self, owt, src):
        self.owt, self.src = os.path.realpath(owt), os.path.realpath(src)
        if not os.access(self.owt, os.X_OK):
            fail(f"no owt binary at {self.owt}")
        self.tool = os.path.join(self.src, "tools", "torch_interop.py")
        sys.path.insert(0, os.path.join(self.src, "tools"))
        self.dir = tempfile.mkdtemp(prefix="owt_interop_")
        os.chdir(self.dir)
        atexit.register(self.close)
        self.ok = True

    def close(self):
        os.chdir("/")
        shutil.rmtree(self.dir, ignore_errors=True)

    def owt_cmd(self, *args, timeout=300):
        """Runs owt; its output is printed and the test fails when it exits non-zero."""
        return self._run([self.owt, *args], timeout)

    def tool_cmd(self, *args, timeout=300):
        return self._run([sys.executable, self.tool, *args], timeout)

    def _run(self, argv, timeout):
        print("$ " + " ".join(os.path.relpath(a, self.dir) if a.startswith(self.dir) else a for a in argv),
              flush=True)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            fail(f"{os.path.basename(argv[1] if argv[0] == sys.executable else argv[0])} exited {r.returncode}")
        return r.stdout

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        self.ok &= bool(cond)

    def finish(self):
        print("PASS" if self.ok else "FAIL")
        sys.exit(0 if self.ok else 1)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def write_idx(data_dir, prefix, images, labels):
    """uint8 images (N, H, W) and labels (N) as MNIST-style IDX files (gzip)."""
    os.makedirs(data_dir, exist_ok=True)
    n, h, w = images.shape
    with gzip.open(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, h, w) + images.numpy().tobytes())
    with gzip.open(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.to(dtype=images.dtype).numpy().tobytes())


def write_ppm(path, rgb):
    """uint8 (3, H, W) as a binary PPM (P6), which owt's folder format decodes (OpenCV)."""
    c, h, w = rgb.shape
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(f"P6\n{w} {h}\n255\n".encode() + rgb.permute(1, 2, 0).contiguous().numpy().tobytes())


def max_abs(a, b):
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
