# ONNX export of the torch module that tools/torch_interop.py builds from an owt model file
# (`torch_interop.py to-onnx MODEL.yaml CKPT OUT.onnx`), for serving with ONNX Runtime.
"""ONNX export of an owt network (the OwtNet of tools/torch_interop.py).

The graph takes `input`, float32 (batch, C, H, W) normalised exactly as owt's evaluation
transform does ((pixels / 255 - mean) / std, centre crop), and returns `logits`, float32
(batch, classes); the batch dimension is dynamic. Graph model files (`inputs:`, `add`,
`batchnorm`, `global_avgpool`) export as they run: batchnorm in eval mode, with its running
statistics (folded into the preceding convolution by constant folding). With the `onnx` package present (the
project's .venv has it) the file also carries metadata_props -- owt.model_name, owt.classes,
owt.class_names (JSON), owt.input (JSON [C, H, W]), owt.mean, owt.std (JSON) -- and is checked
with onnx.checker.
"""
import json
import os

import torch

MIN_OPSET = 13


class ExportError(Exception):
    """The network could not be written as ONNX: one line saying which step failed and why."""


def export_onnx(model, out_path, opset=MIN_OPSET, class_names=None):
    """Writes `model` (an OwtNet, weights loaded) to `out_path` as ONNX; returns out_path.

    The file is written to a temporary name and renamed, so `out_path` is never half-written.
    Raises ExportError when torch cannot trace or export the network, or the onnx checker
    refuses the result."""
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset}: owt exports with opset {MIN_OPSET} or newer")
    model = model.eval()
    example = torch.zeros((2,) + tuple(model.input_shape), dtype=torch.float32)
    tmp = f"{out_path}.tmp.{os.getpid()}"
    try:
        try:
            with torch.no_grad():
                torch.onnx.export(model, example, tmp, opset_version=opset, input_names=["input"],
                                  output_names=["logits"], do_constant_folding=True,
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        except Exception as e:  # torch.onnx raises many kinds (unsupported op, tracing failure)
            raise ExportError(f"torch.onnx.export failed at opset {opset}: {_one_line(e)}") from e
        try:
            _annotate(tmp, model, class_names)
        except Exception as e:  # onnx.checker.ValidationError and friends
            raise ExportError(f"the exported graph fails onnx.checker: {_one_line(e)}") from e
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out_path


def _one_line(e):
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:500]}"


def _annotate(path, model, class_names):
    """Adds what a server needs to feed and read the graph, when the onnx package is present."""
    try:
        import onnx
    except ImportError:
        return
    graph = onnx.load(path)
    names = list(class_names) if class_names else [str(i) for i in range(model.classes)]
    props = {
        "owt.model_name": str(model.config.get("name", "")),
        "owt.classes": str(model.classes),
        "owt.class_names": json.dumps(names),
        "owt.input": json.dumps(list(model.input_shape)),
        "owt.mean": json.dumps(model.mean),
        "owt.std": json.dumps(model.std),
    }
    for key, value in props.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph)
    onnx.save(graph, path)
