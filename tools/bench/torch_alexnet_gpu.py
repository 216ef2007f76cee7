#!/usr/bin/env python3
"""PyTorch's side of tools/gpu_check.sh: torchvision AlexNet (the architecture of
models/alexnet_owt.yaml) trained with SGD on synthetic 224x224 data, timed like `owt bench`.

Prints one JSON object: images_per_s, ms_per_step, peak_allocated_bytes (torch.cuda.
max_memory_allocated), peak_reserved_bytes, and the loss of the first (warm-up) step and of
the last timed step on the fixed batch, with loss_ok: both finite and the last below the first
(read outside the timed loop, so the timing is not synchronised per step).

  python3 tools/bench/torch_alexnet_gpu.py --precision tf32 --batch 128 --iters 30
"""
import argparse
import json
import math
import sys
import time


def alexnet():
    """torchvision.models.alexnet(num_classes=1000), or the same layers when the machine has
    PyTorch without torchvision (the GPU machine's Python is not ours to install into)."""
    try:
        import torchvision
        return torchvision.models.alexnet(num_classes=1000)
    except ImportError:
        print("torch_alexnet_gpu.py: no torchvision; the same AlexNet built here", file=sys.stderr)
    from torch import nn
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
        nn.Linear(4096, 1000))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", choices=["tf32", "fp32-strict", "bf16"], default="tf32")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)  # at least 1
    args = ap.parse_args()
    args.warmup = max(1, args.warmup)

    import torch

    if not torch.cuda.is_available():
        print("torch_alexnet_gpu.py: torch sees no CUDA device", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    tf32 = args.precision != "fp32-strict"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True  # as owt: the fastest algorithm per shape, found once

    model = alexnet().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(args.batch, 3, 224, 224, device=dev)
    y = torch.randint(0, 1000, (args.batch,), device=dev)
    use_bf16 = args.precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    first_loss = float(step())  # synchronises once, before the timed loop
    for _ in range(args.warmup - 1):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.iters):
        loss = step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    final_loss = float(loss)
    loss_ok = math.isfinite(first_loss) and math.isfinite(final_loss) and final_loss < first_loss
    print(json.dumps({
        "precision": args.precision,
        "batch": args.batch,
        "iters": args.iters,
        "images_per_s": args.batch * args.iters / dt,
        "ms_per_step": 1e3 * dt / args.iters,
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(),
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(),
        "first_loss": first_loss,
        "final_loss": final_loss,
        "loss_ok": loss_ok,
        "torch": torch.__version__,
    }))
    return 0 if loss_ok else 3


if __name__ == "__main__":
    sys.exit(main())
