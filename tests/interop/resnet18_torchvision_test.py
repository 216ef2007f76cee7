#!/usr/bin/python3
# torchvision's resnet18 in owt: models/resnet18.yaml builds torchvision's state_dict keys and
# shapes; a seeded random resnet18 with non-trivial batchnorm state, converted by `from-torch
# models/resnet18.yaml`, gives owt eval logits equal to PyTorch's within 1e-4 on 224x224 images;
# to-torch gives the state_dict back (num_batches_tracked I64), a state_dict without
# num_batches_tracked (torchvision's pretrained files) converts, and with the project's .venv the
# ONNX export agrees too. Usage: resnet18_torchvision_test.py OWT_BINARY SOURCE_DIR
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_support as sup  # noqa: E402

sup.require("torch", "yaml", "numpy", "torchvision")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
import yaml  # noqa: E402

IMAGES = 6


def resnet18_with_batchnorm_state():
    """Seeded random resnet18 whose batchnorm layers hold realistic, non-trivial state: random
    affine params, running statistics of random images, then perturbed; num_batches_tracked 7."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.weight.data = torch.rand(bn.num_features) * 0.6 + 0.7
        bn.bias.data = 0.1 * torch.randn(bn.num_features)
        bn.momentum = None  # cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(4, 3, 224, 224))
    for bn in bns:
        bn.running_mean += 0.05 * torch.randn(bn.num_features)
        bn.running_var *= torch.rand(bn.num_features) * 0.4 + 0.8
        bn.num_batches_tracked.fill_(7)
        bn.momentum = 0.1
    return net.eval()


def images():
    """uint8 (IMAGES, 3, 224, 224): smooth random colour fields plus noise."""
    g = torch.Generator().manual_seed(5)
    coarse = torch.rand(IMAGES, 3, 8, 8, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(224, 224), mode="bilinear", align_corners=False)
    return ((0.7 * smooth + 0.3 * torch.rand(IMAGES, 3, 224, 224, generator=g)) * 255).to(torch.uint8)


def main():
    run = sup.Run(*sys.argv[1:3])
    import torch_interop as ti
    model_file = os.path.join(run.src, "models", "resnet18.yaml")
    run.owt_cmd("plan", model_file, "--workers", "1", "--batch", "32")

    net = resnet18_with_batchnorm_state()
    sd = net.state_dict()
    torch.save(sd, "resnet18.pt")
    ours = ti.build_model(model_file).state_dict()
    run.check([(k, tuple(v.shape), v.dtype) for k, v in ours.items()] == [(k, tuple(v.shape), v.dtype) for k, v in sd.items()],
              f"models/resnet18.yaml has torchvision's {len(sd)} state_dict keys, shapes and dtypes, in order")
    print(run.tool_cmd("from-torch", model_file, "resnet18.pt", "resnet18.safetensors"), end="")

    # The test set: IMAGES 224x224 images in two class folders (0-2, 3-5), in data set order.
    pixels = images()
    for i in range(IMAGES):
        sup.write_ppm(f"data/val/c{i // 3}/{i}.ppm", pixels[i])
    with open(model_file) as f:
        cfg = yaml.safe_load(f)
    cfg["data"] = {"format": "folder", "path": os.path.join(run.dir, "data"), "mean": cfg["data"]["mean"],
                   "std": cfg["data"]["std"], "augment": {"crop": 224}}
    with open("test.yaml", "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    run.owt_cmd("eval", "test.yaml", "--checkpoint", "resnet18.safetensors", "--logits", "owt_logits.npy",
                "--batch", str(IMAGES), "--threads", "2", "--no-progress")

    x = ti.normalise(ti.build_model("test.yaml"), pixels)
    with torch.no_grad():
        want = net(x)
        tool = ti.load_owt_checkpoint(ti.build_model(model_file), "resnet18.safetensors")(x)
    got = torch.from_numpy(np.load("owt_logits.npy"))
    scale = want.abs().max().item()
    run.check(0.1 < scale < 100, f"torchvision's logits are of a sane size (max |logit| {scale:.2f})")
    diff = sup.max_abs(got, want) if got.shape == want.shape else float("inf")
    run.check(diff <= 1e-4, f"owt eval logits {tuple(got.shape)}: max |owt - torchvision| {diff:.1e}")
    diff = sup.max_abs(tool, want)
    run.check(diff <= 1e-5, f"torch_interop's resnet18 from the owt checkpoint: max |tool - torchvision| {diff:.1e}")

    run.tool_cmd("to-torch", model_file, "resnet18.safetensors", "back.pt")
    back = torch.load("back.pt", weights_only=True)
    same = list(back) == list(sd) and all(back[k].dtype == sd[k].dtype and torch.equal(back[k], sd[k]) for k in sd)
    run.check(same, "to-torch gives torchvision's state_dict back exactly (num_batches_tracked int64 7)")
    net2 = torchvision.models.resnet18()
    net2.load_state_dict(back, strict=True)

    torch.save({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, "old.pt")
    out = run.tool_cmd("from-torch", model_file, "old.pt", "old.safetensors")
    old, _ = ti.read_safetensors("old.safetensors")
    counters = [k for k in old if k.endswith("num_batches_tracked")]
    run.check(len(counters) == 20 and all(old[k].dtype == torch.int64 and int(old[k]) == 0 for k in counters)
              and "set to 0" in out, "a state_dict without num_batches_tracked converts (20 counters set to 0)")

    venv = os.path.join(run.src, ".venv", "bin", "python")
    if os.access(venv, os.X_OK) and subprocess.run([venv, "-c", "import onnx, onnxruntime"]).returncode == 0:
        subprocess.run([venv, run.tool, "to-onnx", model_file, "resnet18.safetensors", "r18.onnx"], check=True)
        check = ("import numpy as np, onnxruntime; s = onnxruntime.InferenceSession('r18.onnx', "
                 "providers=['CPUExecutionProvider']); x = np.load('x.npy'); "
                 "print(float(np.abs(s.run(['logits'], {'input': x})[0] - np.load('owt_logits.npy')).max()))")
        np.save("x.npy", x.numpy())
        diff = float(subprocess.run([venv, "-c", check], capture_output=True, text=True, check=True).stdout)
        run.check(diff <= 1e-4, f"ONNX Runtime's logits of the exported resnet18: max |onnx - owt| {diff:.1e}")
    else:
        print(f"skip ONNX: {venv} with onnx and onnxruntime is missing (tools/venv.sh)")
    run.finish()


if __name__ == "__main__":
    main()
