#!/usr/bin/python3
# PyTorch side of tools/bench/compare_cpu.sh: times training steps (forward, backward, SGD with
# momentum) of the torch model that tools/torch_interop.py builds from an owt model file, on a
# fixed synthetic batch, and prints what `owt bench --json` prints. --bf16 runs the forward and
# the loss under torch.autocast("cpu", dtype=torch.bfloat16) (backward and the SGD step outside
# it, fp32 master weights), the counterpart of `owt bench --precision bf16`. Also the ceilings:
# `--sgemm N` (float32 torch.mm) and `--bf16-gemm N` (bfloat16 torch.mm, bfloat16 output).
"""Usage:
  torch_train_bench.py MODEL.yaml [--batch B] [--iters N] [--warmup W] [--threads T]
                                  [--channels-last] [--bf16] [--json]
  torch_train_bench.py --sgemm 2048 [--threads T] [--json]
  torch_train_bench.py --bf16-gemm 2048 [--threads T] [--json]
Run with /usr/bin/python3; set OMP_WAIT_POLICY=passive MALLOC_MMAP_THRESHOLD_=1073741824.
A training run's JSON has "precision": "fp32" or "bf16"; a gemm's has "dtype": "float32" or
"bfloat16"."""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch_interop  # noqa: E402


def gemm_ceiling(n, dtype=torch.float32, reps=10):
    """Best GFLOP/s of an n x n x n matmul in dtype (inputs and output; bfloat16 goes to oneDNN)."""
    a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
    c = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=c)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best * 1e-9


def train_bench(model_path, batch, iters, warmup, channels_last, bf16=False):
    model = torch_interop.build_model(model_path).train()
    solver = model.config["solver"]
    opt = torch.optim.SGD(model.parameters(), lr=float(solver["lr"]),
                          momentum=float(solver.get("momentum", 0.9)),
                          weight_decay=float(solver.get("weight_decay", 0.0)))
    b = batch or int(solver["batch"])
    g = torch.Generator().manual_seed(1)
    x = torch.rand((b,) + model.input_shape, generator=g) * 2 - 1  # as owt bench: uniform [-1, 1)
    y = torch.randint(0, model.classes, (b,), generator=g)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        opt.zero_grad(set_to_none=True)
        # bf16: forward and loss under autocast (weights stay fp32, cast per op), backward outside
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    seconds = (time.perf_counter() - t0) / iters
    flops = model.forward_flops() * b
    return {"model": model.config.get("name", ""), "batch": b, "iters": iters,
            "threads": torch.get_num_threads(), "images_per_s": b / seconds,
            "ms_per_step": 1e3 * seconds, "gflops": 3 * flops * 1e-9 / seconds,
            "channels_last": channels_last, "precision": "bf16" if bf16 else "fp32"}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?")
    p.add_argument("--batch", type=int, default=0)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true",
                   help="forward and loss under torch.autocast('cpu', dtype=torch.bfloat16)")
    p.add_argument("--sgemm", type=int, default=0, help="measure an N x N sgemm instead")
    p.add_argument("--bf16-gemm", type=int, default=0, metavar="N",
                   help="measure an N x N bfloat16 torch.mm instead")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    try:
        if a.sgemm:
            r = {"sgemm_n": a.sgemm, "threads": a.threads, "gflops": gemm_ceiling(a.sgemm),
                 "dtype": "float32"}
        elif a.bf16_gemm:
            r = {"bf16_gemm_n": a.bf16_gemm, "threads": a.threads,
                 "gflops": gemm_ceiling(a.bf16_gemm, torch.bfloat16), "dtype": "bfloat16"}
        elif a.model:
            r = train_bench(a.model, a.batch, a.iters, a.warmup, a.channels_last, a.bf16)
        else:
            p.error("give MODEL.yaml, --sgemm N or --bf16-gemm N")
    except torch_interop.InteropError as e:
        print(f"torch_train_bench: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(r) if a.json else " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                                 for k, v in r.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
