#!/usr/bin/python3
# PyTorch agreement of a small residual network with batchnorm (an `inputs:` graph: identity and
# projection shortcuts, `add`, BatchNorm2d and BatchNorm1d, global_avgpool, dotted names): owt
# trains it for 3 full-batch steps from weights and running statistics made in PyTorch, and every
# parameter, momentum buffer, running_mean, running_var and num_batches_tracked equals PyTorch's
# float64 training (torch_interop.sgd_optimizer) within 1e-5; then owt eval's logits (running
# statistics) equal PyTorch's within 1e-4. `--variant nesterov` adds solver.nesterov and the
# loss's label_smoothing. Usage: batchnorm_agreement_test.py OWT_BINARY SOURCE_DIR [--variant V]
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_support as sup  # noqa: E402

sup.require("torch", "yaml", "numpy")
import numpy as np  # noqa: E402
import torch  # noqa: E402

STEPS = 3
TRAIN, TEST = 256, 64  # the batch is the whole training set: the shuffled order cannot matter
MODEL = """
name: bn_agreement
input: [1, 16, 16]
classes: 4
seed: 3
data: {{format: idx, path: {data}, mean: [0.45], std: [0.2]}}
layers:
  - {{name: conv1, type: conv, filters: 8, size: 3, pad: 1, bias: false}}
  - {{name: bn1, type: batchnorm, wd_mult: 0}}
  - {{name: relu1, type: relu}}
  - {{name: block1.conv1, type: conv, filters: 8, size: 3, pad: 1, bias: false}}
  - {{name: block1.bn1, type: batchnorm}}
  - {{name: block1.relu1, type: relu}}
  - {{name: block1.conv2, type: conv, filters: 8, size: 3, pad: 1, bias: false}}
  - {{name: block1.bn2, type: batchnorm, eps: 1.0e-3, momentum: 0.25}}
  - {{name: block1.add, type: add, inputs: [block1.bn2, relu1]}}
  - {{name: block1.relu2, type: relu}}
  - {{name: block2.conv1, type: conv, filters: 12, size: 3, stride: 2, pad: 1, bias: false}}
  - {{name: block2.bn1, type: batchnorm}}
  - {{name: block2.relu1, type: relu}}
  - {{name: block2.conv2, type: conv, filters: 12, size: 3, pad: 1, bias: false}}
  - {{name: block2.bn2, type: batchnorm}}
  - {{name: block2.down.0, type: conv, filters: 12, size: 1, stride: 2, bias: false, inputs: [block1.relu2]}}
  - {{name: block2.down.1, type: batchnorm}}
  - {{name: block2.add, type: add, inputs: [block2.bn2, block2.down.1]}}
  - {{name: block2.relu2, type: relu}}
  - {{name: pool, type: global_avgpool}}
  - {{name: bnf, type: batchnorm}}
  - {{name: fc, type: linear, outputs: 4}}
  - {{name: loss, type: softmax_cross_entropy{loss_extra}}}
solver: {{type: sgd, lr: 0.02, momentum: 0.9, weight_decay: 5.0e-4, batch: {train}, epochs: {steps}{extra}}}
"""
# variant: (solver keys, loss keys)
VARIANTS = {"base": ("", ""), "nesterov": (", nesterov: true", ", label_smoothing: 0.1")}


def make_data(run):
    """4 classes of 16x16 prototypes plus noise, as IDX files in data/."""
    g = torch.Generator().manual_seed(7)
    protos = torch.rand(4, 16, 16, generator=g)
    for prefix, n in (("train", TRAIN), ("t10k", TEST)):
        labels = torch.randint(0, 4, (n,), generator=g)
        images = (0.5 * protos[labels] + 0.5 * torch.rand(n, 16, 16, generator=g)) * 255
        sup.write_idx("data", prefix, images.to(torch.uint8), labels)


def initial_weights(ti, model_path):
    """Seeded torch init with non-trivial batchnorm state (affine, running stats, counter)."""
    torch.manual_seed(11)
    m = ti.build_model(model_path)
    for module in m.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            c = module.num_features
            module.weight.data = torch.rand(c) + 0.5
            module.bias.data = 0.2 * torch.randn(c)
            module.running_mean = 0.3 * torch.randn(c)
            module.running_var = torch.rand(c) * 1.5 + 0.5
            module.num_batches_tracked = torch.tensor(5, dtype=torch.int64)
    torch.save(m.state_dict(), "init.pt")


def torch_training(ti, model_path):
    """(losses, state_dict, momentum buffers by name, eval logits) of PyTorch in float64."""
    m = ti.load_owt_checkpoint(ti.build_model(model_path), "init.safetensors").double().train()
    opt = ti.sgd_optimizer(m)
    pixels, labels = ti.read_idx("data", "train")
    x = ti.normalise(m, pixels).double()
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = m.loss(m(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    names = {id(p): n for n, p in m.named_parameters()}
    momentum = {names[id(p)]: s["momentum_buffer"] for p, s in opt.state.items()}
    with torch.no_grad():
        logits = m.eval()(ti.normalise(m, ti.read_idx("data", "test")[0]).double())
    return losses, m.state_dict(), momentum, logits


def main():
    p = argparse.ArgumentParser()
    p.add_argument("owt"), p.add_argument("src")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="base")
    a = p.parse_args()
    run = sup.Run(a.owt, a.src)
    import torch_interop as ti

    make_data(run)
    with open("model.yaml", "w") as f:
        f.write(MODEL.format(data=os.path.join(run.dir, "data"), train=TRAIN, steps=STEPS,
                             extra=VARIANTS[a.variant][0], loss_extra=VARIANTS[a.variant][1]))
    initial_weights(ti, "model.yaml")
    run.tool_cmd("from-torch", "model.yaml", "init.pt", "init.safetensors")
    run.owt_cmd("train", "model.yaml", "--init-from", "init.safetensors", "--max-steps", str(STEPS),
                "--threads", "2", "--out", "run", "--no-progress")
    ckpt = "run/checkpoints/last.safetensors"
    run.owt_cmd("eval", "model.yaml", "--checkpoint", ckpt, "--logits", "owt_logits.npy", "--threads", "2",
                "--no-progress")

    losses, want, momentum, logits = torch_training(ti, "model.yaml")
    init, _ = ti.read_safetensors("init.safetensors")
    got, _ = ti.read_safetensors(ckpt)
    owt_losses = [json.loads(line)["loss"] for line in open("run/metrics.jsonl") if '"train"' in line]
    run.check(len(owt_losses) == STEPS and all(abs(o - t) <= 1e-5 * abs(t) for o, t in zip(owt_losses, losses)),
              f"training losses owt {owt_losses} torch {[round(v, 6) for v in losses]} (1e-5 relative)")
    for name, t in want.items():
        o = got.get(name)
        if o is None:
            run.check(False, f"{name}: missing from owt's checkpoint")
            continue
        if not t.is_floating_point():  # num_batches_tracked
            run.check(o.dtype == torch.int64 and o.shape == t.shape and int(o) == int(t) == 5 + STEPS,
                      f"{name}: owt {o.dtype} {o.tolist()} torch {int(t)} (5 + {STEPS} steps)")
            continue
        moved = sup.max_abs(t, init[name])
        diff = sup.max_abs(o, t)
        rel = ((o.double() - t).norm() / (t - init[name].double()).norm()).item()
        run.check(diff <= 1e-5 and rel <= 1e-4 and moved > 1e-4,
                  f"{name}: max |owt - torch| {diff:.1e}, update differs by {rel:.1e} (relative), moved {moved:.1e}")
    for name, buf in momentum.items():
        o = got.get(f"optim.{name}.momentum_buffer")
        diff = sup.max_abs(o, buf) if o is not None else float("inf")
        run.check(diff <= 1e-5 * max(1.0, buf.abs().max().item()), f"optim.{name}.momentum_buffer: max |owt - torch| {diff:.1e}")
    extra = sorted(k for k in got if k not in want and not k.startswith("optim."))
    run.check(not extra, f"no tensors beyond torch's state_dict in owt's checkpoint {extra if extra else ''}")
    owt_logits = torch.from_numpy(np.load("owt_logits.npy"))
    diff = sup.max_abs(owt_logits, logits) if owt_logits.shape == logits.shape else float("inf")
    run.check(diff <= 1e-4, f"eval logits (running statistics) {tuple(owt_logits.shape)}: max |owt - torch| {diff:.1e}")
    run.finish()


if __name__ == "__main__":
    main()
