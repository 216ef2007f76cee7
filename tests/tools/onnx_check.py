# ONNX Runtime runs an exported owt network (tools/torch_interop.py to-onnx) on a test set and
# its logits are compared with `owt eval --logits` of the same checkpoint: within 1e-4. Also: the
# opset is >= 13, the batch dimension is dynamic (batches of other sizes give the same rows),
# and the metadata names the classes.
# Usage: .venv/bin/python onnx_check.py MODEL.yaml OUT.onnx OWT_LOGITS.npy DATA_DIR idx|cifar10
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import torch_interop  # noqa: E402


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def read_cifar10_test(data_dir):
    """uint8 (N, 3, 32, 32) pixels of test_batch.bin: records of a label byte and R, G, B planes."""
    raw = np.fromfile(os.path.join(data_dir, "test_batch.bin"), dtype=np.uint8).reshape(-1, 1 + 3072)
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy())


def main():
    yaml_path, onnx_path, logits_path, data_dir, fmt = sys.argv[1:6]
    model = torch_interop.build_model(yaml_path)
    pixels = torch_interop.read_idx(data_dir, "test")[0] if fmt == "idx" else read_cifar10_test(data_dir)
    x = torch_interop.normalise(model, pixels).numpy()
    want = np.load(logits_path)
    if want.shape != (len(x), model.classes):
        fail(f"owt's logits are {want.shape}, expected {(len(x), model.classes)}")

    graph = onnx.load(onnx_path)
    opset = max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        fail(f"opset {opset} < 13")
    batch_dim = graph.graph.input[0].type.tensor_type.shape.dim[0]
    if not batch_dim.dim_param:
        fail(f"the batch dimension is fixed ({batch_dim.dim_value}), expected dynamic")
    meta = {p.key: p.value for p in graph.metadata_props}
    if len(json.loads(meta.get("owt.class_names", "[]"))) != model.classes:
        fail(f"metadata owt.class_names: {meta.get('owt.class_names')}")

    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x})
    diff = float(np.max(np.abs(got - want)))
    if diff > 1e-4:
        fail(f"ONNX Runtime and owt eval logits differ by {diff} (max over {got.size} values)")
    # Other batch sizes: the same rows.
    for lo, hi in ((0, 1), (1, 8), (8, len(x))):
        (part,) = session.run(["logits"], {"input": x[lo:hi]})
        if float(np.max(np.abs(part - got[lo:hi]))) > 1e-5:
            fail(f"batch of rows [{lo}, {hi}) differs from the full batch")
    print(f"ok: {len(x)} images, opset {opset}, max |ONNX Runtime - owt| = {diff:.2e}")


if __name__ == "__main__":
    main()
