#!/usr/bin/python3
# owt <-> PyTorch: builds the torch.nn.Module equivalent of an owt model file (a chain or an
# `inputs:` graph; same layer names, so state_dict keys are owt's `<layer>.weight`,
# `<bn>.running_mean`, ...), and converts weights and buffers both ways through a minimal
# safetensors reader/writer (json + struct + torch only; Debian has no python3-safetensors).
"""owt <-> PyTorch weight interchange.

  torch_interop.py to-torch   MODEL.yaml CKPT.safetensors OUT.pt [--module]
  torch_interop.py from-torch MODEL.yaml WEIGHTS(.pt|.safetensors) OUT.safetensors
  torch_interop.py eval       MODEL.yaml WEIGHTS(.safetensors|.pt) [--data DIR] [--split test] [--json]
  torch_interop.py to-onnx    MODEL.yaml CKPT.safetensors OUT.onnx [--opset 13]   (tools/onnx_export.py)

Untrusted files run no code: .pt files are read with torch.load(weights_only=True), which
accepts only tensors and plain containers (a state_dict) and refuses anything that would import
or call code when unpickled; .safetensors files are plain JSON and bytes. A whole pickled
nn.Module (to-torch --module) therefore cannot be read back: save model.state_dict().

Checkpoints hold every tensor of the torch state_dict under the same name: parameters (F32),
batchnorm's running_mean and running_var (F32) and num_batches_tracked (a 0-dim I64), plus
`optim.<param>.momentum_buffer` for parameters only. Dotted layer names (torchvision's
`layer1.0.conv1`) are modules nested in plain containers, so the keys match torchvision's.

Run with Debian's /usr/bin/python3 (python3-torch, python3-yaml). Reusable functions:
build_model(yaml_path), read_safetensors(path), write_safetensors(path, tensors, metadata),
load_owt_checkpoint(model, path), normalise(model, pixels), evaluate(model, data_dir, split),
sgd_optimizer(model) (owt's solver as torch.optim.SGD: per-layer lr_mult/wd_mult/freeze,
nesterov), model.loss(logits, labels) (with the loss layer's label_smoothing).
"""
import argparse
import collections
import gzip
import json
import os
import pickle
import re
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml


class InteropError(Exception):
    """Bad user input: the CLI prints `torch_interop: error: <message>` and exits 1."""


# ---------------------------------------------------------------------------------------------
# safetensors

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_CODES = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100_000_000  # bytes of JSON header, as the safetensors library and owt allow


def read_safetensors(path):
    """Returns (tensors: OrderedDict name -> torch.Tensor, metadata: dict str -> str).

    Validates the header against the file as strictly as the Python library: every tensor
    inside the data section, sizes matching shapes, tensors covering the data exactly."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InteropError(f"{path}: cannot read ({e.strerror})")
    if len(raw) < 8:
        raise InteropError(f"{path}: not a safetensors file ({len(raw)} bytes, too short for the header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER:
        raise InteropError(f"{path}: not a safetensors file (header length {n} is more than {_MAX_HEADER})")
    if n > len(raw) - 8:
        raise InteropError(f"{path}: not a safetensors file (header length {n} exceeds the file size {len(raw)})")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise InteropError(f"{path}: safetensors header is not valid JSON ({e})")
    if not isinstance(header, dict):
        raise InteropError(f"{path}: safetensors header is not a JSON object")
    data = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict):
        raise InteropError(f"{path}: __metadata__ must be an object of strings")
    spans = []
    tensors = collections.OrderedDict()
    for name in sorted(header):
        info = header[name]
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise InteropError(f"{path}: tensor '{name}': header entry needs dtype, shape and data_offsets")
        def count(v):
            return isinstance(v, int) and not isinstance(v, bool) and v >= 0
        if not (isinstance(shape, list) and all(count(d) for d in shape) and count(begin) and count(end)):
            raise InteropError(f"{path}: tensor '{name}': shape and data_offsets must be non-negative integers")
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise InteropError(f"{path}: tensor '{name}': unsupported dtype '{dtype}'")
        numel = 1
        for d in shape:
            numel *= d
        size = numel * torch.empty((), dtype=_DTYPES[dtype]).element_size()
        if not 0 <= begin <= end <= len(data) or end - begin != size:
            raise InteropError(f"{path}: tensor '{name}': data_offsets [{begin}, {end}) do not hold "
                               f"{size} bytes of {dtype} {shape} within the {len(data)}-byte data section")
        spans.append((begin, end, name))
        buf = bytearray(data[begin:end])
        t = torch.frombuffer(buf, dtype=_DTYPES[dtype]) if size else torch.empty(0, dtype=_DTYPES[dtype])
        tensors[name] = t.reshape(shape).clone()
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise InteropError(f"{path}: tensor '{name}' starts at byte {begin}, expected {pos} "
                               "(gap or overlap in the data section)")
        pos = end
    if pos != len(data):
        raise InteropError(f"{path}: {len(data) - pos} trailing bytes after the last tensor")
    return tensors, {str(k): str(v) for k, v in metadata.items()}


def write_safetensors(path, tensors, metadata):
    """Writes {name: tensor} with string metadata, atomically (temp file, fsync, rename).

    Laid out as owt does: largest element size first, then by name; header padded with
    spaces to a multiple of 8."""
    items = []
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in _CODES:
            raise InteropError(f"tensor '{name}': dtype {t.dtype} cannot be stored in safetensors")
        items.append((name, t))
    items.sort(key=lambda it: (-it[1].element_size(), it[0]))
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in items:
        blob = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _CODES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise InteropError(f"{path}: cannot write ({e.strerror})")


# ---------------------------------------------------------------------------------------------
# Model files -> torch modules

_COMMON_KEYS = {"name", "type", "inputs", "parallel", "split", "lr_mult", "wd_mult", "freeze"}
_TYPE_KEYS = {
    "conv": {"filters", "size", "size_h", "size_w", "stride", "pad", "bias", "init"},
    "maxpool": {"size", "stride", "pad"},
    "avgpool": {"size", "stride", "pad"},
    "lrn": {"size", "alpha", "beta", "k"},
    "relu": set(),
    "dropout": {"rate"},
    "flatten": set(),
    "linear": {"outputs", "bias", "init"},
    "batchnorm": {"eps", "momentum", "sync"},
    "add": set(),
    "global_avgpool": set(),
    "softmax_cross_entropy": {"label_smoothing"},
}
_LOSS = "softmax_cross_entropy"


class Add(nn.Module):
    """owt's `add`: the elementwise sum of its inputs (all of one shape)."""

    def forward(self, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


class GlobalAvgPool(nn.Module):
    """owt's `global_avgpool`: (N, C, H, W) -> (N, C), the mean over H and W."""

    def forward(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class OwtNet(nn.Module):
    """The layers of an owt model file, run in the file's graph order. Each layer's module sits
    at its owt name, so state_dict keys are owt's checkpoint names: a dotted name such as
    `layer1.0.conv1` is a module nested in plain containers, as in torchvision. Linear layers
    flatten their input first (as owt does); the loss layer is not a module (see `loss`).

    `graph` lists (name, input names) in execution order, the loss excluded; an empty input
    list is the network's input."""

    def __init__(self, config, path, text):
        super().__init__()
        self.config = config
        self.path = path
        self.text = text
        self.input_shape = tuple(config["input"])
        self.classes = int(config["classes"])
        data = config.get("data") or {}
        c = self.input_shape[0]
        self.mean = _per_channel(data.get("mean"), c, 0.0)
        self.std = _per_channel(data.get("std"), c, 1.0)
        self.crop = int(((data.get("augment") or {}).get("crop")) or 0)
        self.label_smoothing = 0.0  # the loss layer's label_smoothing (build_model sets it)
        self.graph = []
        self.output = None  # the layer whose output is the logits (the loss layer's input)
        self._last_use = {}  # name -> index in graph of the last layer that reads its output

    def add_layer(self, name, module, inputs):
        """Registers `module` at the dotted owt `name`, run after the layers added before it on
        the outputs of `inputs` (names; [] for the network's input)."""
        _register_nested(self, name, module)
        for i in inputs:
            self._last_use[i] = len(self.graph)
        self.graph.append((name, tuple(inputs)))

    def set_output(self, name):
        self.output = name
        self._last_use[name] = len(self.graph)

    def forward(self, x):
        outputs = {}  # outputs still to be read by a later layer
        for index, (name, inputs) in enumerate(self.graph):
            xs = [outputs[i] for i in inputs] if inputs else [x]
            module = self.get_submodule(name)
            if isinstance(module, nn.Linear) and xs[0].dim() > 2:
                xs = [torch.flatten(xs[0], 1)]
            y = module(*xs)
            for i in inputs:
                if self._last_use[i] == index:
                    del outputs[i]
            if self._last_use.get(name, -1) > index:
                outputs[name] = y
        return outputs[self.output] if self.graph else x

    def loss(self, logits, labels, reduction="mean"):
        """The training loss, as owt's softmax_cross_entropy with its label_smoothing."""
        return F.cross_entropy(logits, labels, reduction=reduction, label_smoothing=self.label_smoothing)

    def forward_flops(self):
        """Forward multiply-adds x 2 per example for conv and linear layers, as `owt bench`."""
        flops = [0]

        def count(layer, inputs, y):
            if isinstance(layer, nn.Conv2d):
                kh, kw = layer.kernel_size
                flops[0] += 2 * layer.out_channels * layer.in_channels // layer.groups * kh * kw * y.shape[2] * y.shape[3]
            else:
                flops[0] += 2 * layer.in_features * layer.out_features

        hooks = [m.register_forward_hook(count) for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        try:
            with torch.no_grad():
                self(torch.zeros((1,) + self.input_shape))
        finally:
            for h in hooks:
                h.remove()
        return flops[0]


def _register_nested(root, name, module):
    """Adds `module` under `root` at the dotted path `name`, making plain nn.Module containers
    for the missing parents (`layer1`, `layer1.0` for `layer1.0.conv1`)."""
    parts = name.split(".")
    parent = root
    try:
        for depth, part in enumerate(parts):
            if not part:
                raise InteropError(f"layer name '{name}' has an empty part between dots")
            existing = parent._modules.get(part)
            if depth < len(parts) - 1:
                if existing is None:
                    existing = nn.Module()
                    existing.owt_container = True
                    parent.add_module(part, existing)
                parent = existing
            elif existing is None:
                parent.add_module(part, module)
            elif getattr(existing, "owt_container", False):
                # A layer named after an earlier layer's prefix (`block` after `block.conv`):
                # it takes over the container's children.
                for child_name, child in existing.named_children():
                    module.add_module(child_name, child)
                parent._modules[part] = module
            else:
                raise InteropError(f"duplicate layer name '{name}'")
    except KeyError as e:  # add_module: the name is an attribute of the parent (weight, forward, ...)
        raise InteropError(f"layer name '{name}' cannot be a torch module name ({e.args[0]})")


def _per_channel(values, channels, fallback):
    if values is None or values == []:
        return [float(fallback)] * channels
    if not isinstance(values, list):
        values = [values]
    if len(values) == 1:
        return [float(values[0])] * channels
    return [float(v) for v in values]


def _int(layer, key, default=None, minimum=1):
    v = layer.get(key, default)
    if v is None:
        raise InteropError(f"layer '{layer['name']}': missing '{key}'")
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise InteropError(f"layer '{layer['name']}': '{key}' must be an integer >= {minimum}, got {v!r}")
    return v


def _float(layer, key, default, low, high):
    v = layer.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not low < v <= high:
        raise InteropError(f"layer '{layer['name']}': '{key}' must be a number in ({low}, {high}], got {v!r}")
    return float(v)


def build_model(yaml_path):
    """The torch nn.Module (OwtNet) equivalent of an owt model file, in eval mode."""
    try:
        with open(yaml_path) as f:
            text = f.read()
    except OSError as e:
        raise InteropError(f"{yaml_path}: cannot read ({e.strerror})")
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InteropError(f"{yaml_path}: not valid YAML ({e})")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise InteropError(f"{yaml_path}: expected a mapping with a 'layers' list")
    inp = cfg.get("input")
    if not (isinstance(inp, list) and len(inp) == 3 and all(isinstance(d, int) and d > 0 for d in inp)):
        raise InteropError(f"{yaml_path}: 'input' must be [C, H, W] of positive integers, got {inp!r}")
    if not cfg["layers"] or not isinstance(cfg["layers"][-1], dict) or cfg["layers"][-1].get("type") != _LOSS:
        raise InteropError(f"{yaml_path}: the last layer must be {_LOSS}")
    nodes = _layer_graph(yaml_path, cfg["layers"])
    model = OwtNet(cfg, yaml_path, text)
    loss_inputs = []
    shapes = {}  # name -> output shape of one example: (C, H, W), or (features,)
    for i, layer, inputs in _graph_order(yaml_path, nodes):
        where = f"{yaml_path}: layers[{i}] ('{layer['name']}')"
        in_shapes = [shapes[n] for n in inputs] if inputs else [tuple(inp)]
        try:
            module, shapes[layer["name"]] = _make_layer(layer, layer["type"], in_shapes)
        except InteropError as e:
            raise InteropError(f"{where}: {e}")
        if module is None:  # the loss: its input is the network's output
            if shapes[layer["name"]] != (cfg.get("classes"),):
                raise InteropError(f"{yaml_path}: the network outputs {shapes[layer['name']]}, "
                                   f"but classes is {cfg.get('classes')}")
            loss_inputs = inputs
            model.label_smoothing = float(layer.get("label_smoothing", 0.0))
            continue
        try:
            model.add_layer(layer["name"], module, inputs)
        except InteropError as e:
            raise InteropError(f"{where}: {e}")
    if loss_inputs:
        model.set_output(loss_inputs[0])
    return model.eval()


def _layer_graph(yaml_path, layers):
    """[(file index, layer, input names)] with `inputs:` resolved (default: the previous layer;
    for the first, the network's input: [])."""
    nodes, names = [], set()
    for i, layer in enumerate(layers):
        where = f"{yaml_path}: layers[{i}]"
        if not isinstance(layer, dict) or "name" not in layer or "type" not in layer:
            raise InteropError(f"{where}: each layer needs 'name' and 'type'")
        name, kind = str(layer["name"]), layer["type"]
        if kind not in _TYPE_KEYS:
            raise InteropError(f"{where} ('{name}'): unknown layer type '{kind}' "
                               f"(expected one of {', '.join(sorted(_TYPE_KEYS))})")
        extra = set(layer) - _COMMON_KEYS - _TYPE_KEYS[kind]
        if extra:
            raise InteropError(f"{where} ('{name}'): unknown key(s) {', '.join(sorted(extra))} for type {kind}")
        if name in names:
            raise InteropError(f"{where}: duplicate layer name '{name}'")
        if not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", name):
            raise InteropError(f"{where}: layer name '{name}' cannot be a torch module name "
                               "(letters, digits, _ and -, parts joined by dots)")
        names.add(name)
        inputs = layer.get("inputs")
        if inputs is None:
            inputs = [str(layers[i - 1]["name"])] if i else []
        elif not (isinstance(inputs, list) and inputs and all(isinstance(n, str) for n in inputs)):
            raise InteropError(f"{where} ('{name}'): 'inputs' must be a non-empty list of layer names")
        if kind == "add" and len(inputs) < 2:
            raise InteropError(f"{where} ('{name}'): add needs at least 2 inputs, got {len(inputs)}")
        if kind != "add" and len(inputs) > 1:
            raise InteropError(f"{where} ('{name}'): a {kind} layer takes one input, got {len(inputs)}")
        nodes.append((i, dict(layer, name=name), list(inputs)))
    for i, layer, inputs in nodes:
        for n in inputs:
            if n not in names:
                raise InteropError(f"{yaml_path}: layers[{i}] ('{layer['name']}'): input '{n}' is not a layer")
            if n == layer["name"]:
                raise InteropError(f"{yaml_path}: layers[{i}] ('{n}'): a layer cannot be its own input")
    return nodes


def _graph_order(yaml_path, nodes):
    """The nodes in an order where every layer comes after its inputs: the file's order when
    it already is one (always for a chain), else the earliest ready layer first."""
    done, order, pending = set(), [], list(nodes)
    while pending:
        ready = next((n for n in pending if all(i in done for i in n[2])), None)
        if ready is None:
            raise InteropError(f"{yaml_path}: the inputs of layers {_cycle(pending, done)} form a cycle")
        pending.remove(ready)
        done.add(ready[1]["name"])
        order.append(ready)
    return order


def _cycle(pending, done):
    """'a' -> 'b' -> 'a': a cycle among `pending` nodes, none of which has all its inputs done."""
    by_name = {n[1]["name"]: n for n in pending}
    path, node = [], pending[0]
    while node[1]["name"] not in path:
        path.append(node[1]["name"])
        node = by_name[next(i for i in node[2] if i not in done)]
    path = path[path.index(node[1]["name"]):] + [node[1]["name"]]
    return " -> ".join(f"'{n}'" for n in path)


def _make_layer(layer, kind, shapes):
    """(module or None, output shape) for one layer given its input shapes."""
    shape = shapes[0]

    def need_chw():
        if len(shape) != 3:
            raise InteropError(f"layer '{layer['name']}': {kind} needs a (C, H, W) input, got {shape}")
        return shape

    def out_size(n, k, s, p):
        return (n + 2 * p - k) // s + 1

    if kind == "conv":
        c, h, w = need_chw()
        size = layer.get("size", 0)
        kh, kw = _int(layer, "size_h", size or None), _int(layer, "size_w", size or None)
        s, p = _int(layer, "stride", 1), _int(layer, "pad", 0, minimum=0)
        k = _int(layer, "filters")
        m = nn.Conv2d(c, k, (kh, kw), stride=s, padding=p, bias=bool(layer.get("bias", True)))
        return m, (k, out_size(h, kh, s, p), out_size(w, kw, s, p))
    if kind in ("maxpool", "avgpool"):
        c, h, w = need_chw()
        k = _int(layer, "size")
        s, p = _int(layer, "stride", k), _int(layer, "pad", 0, minimum=0)
        if 2 * p > k:
            raise InteropError(f"layer '{layer['name']}': pad {p} must be at most half the window {k}")
        if kind == "maxpool":
            m = nn.MaxPool2d(k, stride=s, padding=p, ceil_mode=False)
        else:
            m = nn.AvgPool2d(k, stride=s, padding=p, ceil_mode=False, count_include_pad=True)
        return m, (c, out_size(h, k, s, p), out_size(w, k, s, p))
    if kind == "lrn":
        need_chw()
        size = _int(layer, "size", 5)
        return nn.LocalResponseNorm(size, alpha=float(layer.get("alpha", 1e-4)),
                                    beta=float(layer.get("beta", 0.75)), k=float(layer.get("k", 2.0))), shape
    if kind == "relu":
        return nn.ReLU(), shape
    if kind == "dropout":
        return nn.Dropout(float(layer.get("rate", 0.5))), shape
    if kind == "flatten":
        n = 1
        for d in shape:
            n *= d
        return nn.Flatten(1), (n,)
    if kind == "linear":
        n = 1
        for d in shape:
            n *= d
        out = _int(layer, "outputs")
        return nn.Linear(n, out, bias=bool(layer.get("bias", True))), (out,)
    if kind == "batchnorm":
        # PyTorch's BatchNorm2d over (C, H, W), BatchNorm1d over (F); `sync` (statistics over
        # the global batch) is how owt splits the batch, nothing for one torch process.
        if len(shape) not in (1, 3):
            raise InteropError(f"layer '{layer['name']}': batchnorm needs a (C, H, W) or (F) input, got {shape}")
        eps, momentum = _float(layer, "eps", 1e-5, 0, 1), _float(layer, "momentum", 0.1, 0, 1)
        bn = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
        return bn(shape[0], eps=eps, momentum=momentum), shape
    if kind == "add":
        if any(s != shape for s in shapes):
            raise InteropError(f"layer '{layer['name']}': add needs inputs of one shape, got "
                               f"{', '.join(str(s) for s in shapes)}")
        return Add(), shape
    if kind == "global_avgpool":
        c, _, _ = need_chw()
        return GlobalAvgPool(), (c,)
    return None, shape  # softmax_cross_entropy: the loss (OwtNet.loss)


def expected_tensors(model):
    """OrderedDict name -> shape of every tensor of an owt checkpoint but the optimizer state:
    parameters and buffers (BatchNorm's running statistics), in layer order."""
    return collections.OrderedDict((k, tuple(v.shape)) for k, v in model.state_dict().items())


def sgd_optimizer(model):
    """torch.optim.SGD as owt's solver trains `model`: lr, momentum, weight_decay, nesterov, and
    each layer's lr_mult, wd_mult and freeze (frozen params are left out)."""
    solver = model.config.get("solver") or {}
    lr, wd = float(solver["lr"]), float(solver.get("weight_decay", 0.0))
    groups = []
    for layer in model.config["layers"]:
        if layer.get("type") == _LOSS or layer.get("freeze", False):
            continue
        params = list(model.get_submodule(str(layer["name"])).parameters(recurse=False))
        if params:
            groups.append({"params": params, "lr": lr * float(layer.get("lr_mult", 1.0)),
                           "weight_decay": wd * float(layer.get("wd_mult", 1.0))})
    return torch.optim.SGD(groups, lr=lr, momentum=float(solver.get("momentum", 0.9)),
                           weight_decay=wd, nesterov=bool(solver.get("nesterov", False)))


# ---------------------------------------------------------------------------------------------
# Conversions

def _owt_dtype(model_tensor):
    """owt stores parameters and float buffers as F32, counters (num_batches_tracked) as I64."""
    return torch.float32 if model_tensor.is_floating_point() else torch.int64


def load_owt_checkpoint(model, path):
    """Loads an owt checkpoint's weights and buffers into `model` (optimizer state is ignored)."""
    tensors, _ = read_safetensors(path)
    sd = {}
    for name, want in model.state_dict().items():
        shape = tuple(want.shape)
        if name not in tensors:
            raise InteropError(f"{path}: tensor '{name}' is missing "
                               f"(the model needs it with shape {list(shape)})")
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise InteropError(f"{path}: tensor '{name}' has shape {list(t.shape)} "
                               f"but the model expects {list(shape)}")
        if t.dtype != _owt_dtype(want):
            raise InteropError(f"{path}: tensor '{name}' is {_CODES[t.dtype]}, expected {_CODES[_owt_dtype(want)]}")
        sd[name] = t
    model.load_state_dict(sd, strict=True)
    return model


def _state_dict_of(obj, path):
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, nn.Module)) and not torch.is_tensor(obj[key]):
                return _state_dict_of(obj[key], path)
        if all(torch.is_tensor(v) for v in obj.values()):
            return obj
    raise InteropError(f"{path}: expected a state_dict (name -> tensor), a dict with 'state_dict', "
                       f"or an nn.Module; found {type(obj).__name__}")


def _is_safetensors(path):
    """By name, or by content: an 8-byte header length followed by a JSON object."""
    if path.endswith(".safetensors"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"


def load_torch_weights(path):
    """A state_dict (name -> tensor) from a .pt file or a .safetensors file, without running
    any code from the file: torch.load(weights_only=True) refuses every pickled object that is
    not a tensor or a plain container (an nn.Module, or anything whose unpickling would call a
    function)."""
    if not os.path.isfile(path):
        raise InteropError(f"{path}: no such file")
    if _is_safetensors(path):
        tensors, _ = read_safetensors(path)
        # An owt checkpoint's optimizer state is not a weight.
        sd = collections.OrderedDict((k, v) for k, v in tensors.items()
                                     if not (k.startswith("optim.") and k.endswith(".momentum_buffer")))
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            detail = str(e).split("WeightsUnpickler error:")[-1].strip()
            raise InteropError(
                f"{path}: refused: it holds more than tensors and plain containers ({detail}); "
                "owt loads .pt files with torch.load(weights_only=True) so that no code in them runs. "
                "Save model.state_dict() with torch.save, or a .safetensors file, instead")
        except Exception as e:  # torch.load raises many kinds on a bad file
            raise InteropError(f"{path}: cannot load with torch.load ({type(e).__name__}: {e})")
        sd = _state_dict_of(obj, path)
    return collections.OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in sd.items())


def torch_to_owt_tensors(model, sd, path, notes=None):
    """Checks a state_dict against the model; returns owt checkpoint tensors: parameters and
    float buffers F32, num_batches_tracked I64, and zero momentum buffers for the parameters so
    the file is resumable. A missing num_batches_tracked (state_dicts saved before PyTorch 0.4.1,
    such as torchvision's pretrained ResNets) is 0, as PyTorch's load_state_dict makes it; each
    such tensor's name is appended to `notes` when given."""
    want = model.state_dict()
    extra = [k for k in sd if k not in want]
    if extra:
        raise InteropError(f"{path}: tensor '{extra[0]}' is not a parameter or buffer of {model.path} "
                           f"({len(extra)} unexpected; the model has {', '.join(want)})")
    out = collections.OrderedDict()
    for name, like in want.items():
        shape, dtype = tuple(like.shape), _owt_dtype(like)
        if name not in sd and name.endswith(".num_batches_tracked"):
            out[name] = torch.zeros(shape, dtype=dtype)
            if notes is not None:
                notes.append(name)
            continue
        if name not in sd:
            raise InteropError(f"{path}: tensor '{name}' is missing "
                               f"(the model needs it with shape {list(shape)})")
        t = sd[name]
        if dtype.is_floating_point and not (torch.is_tensor(t) and t.is_floating_point()):
            raise InteropError(f"{path}: tensor '{name}' is not a floating-point tensor")
        if not dtype.is_floating_point and not (torch.is_tensor(t) and not t.is_floating_point()
                                                and not t.is_complex() and t.dtype != torch.bool):
            raise InteropError(f"{path}: tensor '{name}' is not an integer tensor (a counter)")
        if tuple(t.shape) != shape:
            raise InteropError(f"{path}: tensor '{name}' has shape {list(t.shape)} "
                               f"but {model.path} expects {list(shape)}")
        out[name] = t.detach().to(dtype).contiguous()
    for name, _ in model.named_parameters():
        out[f"optim.{name}.momentum_buffer"] = torch.zeros_like(out[name])
    return out


def _owt_version():
    cm = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "CMakeLists.txt")
    try:
        with open(cm) as f:
            m = re.search(r"project\(owt VERSION ([0-9.]+)", f.read())
            return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def owt_metadata(model, source):
    return {"format": "owt-checkpoint-1", "owt_version": _owt_version(),
            "model_name": str(model.config.get("name", "")), "model": model.text,
            "step": "0", "epoch": "0", "seed": str(model.config.get("seed", 1)),
            "converted_from": os.path.basename(source)}


# ---------------------------------------------------------------------------------------------
# Data and evaluation (as `owt eval`: pixels/255, (x - mean)/std, centre crop, mean loss)

def read_idx(data_dir, split):
    """(pixels uint8 (N, 1, H, W), labels int64 (N)) from MNIST-style IDX files (raw or .gz)."""
    prefix = {"train": "train", "test": "t10k"}[split]

    def load(stem, magic, ndims):
        path = os.path.join(data_dir, stem)
        if not os.path.isfile(path):
            path += ".gz"
        if not os.path.isfile(path):
            raise InteropError(f"IDX dataset: neither {path[:-3]} nor {path} exists")
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        found = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
        if found != magic:
            raise InteropError(f"{path}: not an IDX file with magic 0x{magic:08X}")
        dims = struct.unpack(f">{ndims}I", raw[4:4 + 4 * ndims])
        t = torch.frombuffer(bytearray(raw[4 + 4 * ndims:]), dtype=torch.uint8)
        return t.reshape(dims)

    images = load(f"{prefix}-images-idx3-ubyte", 0x803, 3)
    labels = load(f"{prefix}-labels-idx1-ubyte", 0x801, 1)
    return images.unsqueeze(1), labels.to(torch.int64)


def normalise(model, pixels):
    """uint8 (N, C, H, W) -> the float32 network input exactly as owt's Transform (eval)."""
    x = pixels.to(torch.float32) / 255.0
    if model.crop:
        h, w = x.shape[2], x.shape[3]
        y0, x0 = (h - model.crop) // 2, (w - model.crop) // 2
        x = x[:, :, y0:y0 + model.crop, x0:x0 + model.crop]
    mean = torch.tensor(model.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(model.std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean) / std


def evaluate(model, data_dir, split="test", batch=256):
    """{'examples', 'loss', 'top1', 'top5'} as `owt eval --json` computes them (ties in the
    ranking go to the lower class index)."""
    data = model.config.get("data") or {}
    if data.get("format", "idx") != "idx":
        raise InteropError(f"{model.path}: data.format '{data.get('format')}': eval here reads idx only")
    if set(data.get("augment") or {}) - {"crop", "pad", "flip", "lighting", "test_views"}:
        raise InteropError(f"{model.path}: data.augment.resize is not supported here "
                           "(crop, pad, flip, lighting and test_views are)")
    pixels, labels = read_idx(data_dir, split)
    if tuple(pixels.shape[1:]) != model.input_shape and not model.crop:
        raise InteropError(f"{data_dir}: images are {tuple(pixels.shape[1:])} but {model.path} "
                           f"declares input {model.input_shape}")
    model.eval()
    loss_sum, top1, top5 = 0.0, 0, 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            x, y = normalise(model, pixels[i:i + batch]), labels[i:i + batch]
            logits = model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="none").double().sum().item()
            target = logits.gather(1, y.view(-1, 1))
            cls = torch.arange(logits.shape[1]).view(1, -1)
            rank = ((logits > target) | ((logits == target) & (cls < y.view(-1, 1)))).sum(1)
            top1 += int((rank < 1).sum())
            top5 += int((rank < min(5, logits.shape[1])).sum())
    n = len(labels)
    return {"examples": n, "loss": loss_sum / n, "top1": top1 / n, "top5": top5 / n}


# ---------------------------------------------------------------------------------------------
# Command line

def _cmd_to_torch(a):
    model = load_owt_checkpoint(build_model(a.model), a.checkpoint)
    torch.save(model if a.module else model.state_dict(), a.out)
    print(f"{a.out}: {'module' if a.module else 'state_dict'} with {len(model.state_dict())} tensors")


def _cmd_from_torch(a):
    model = build_model(a.model)
    zeroed = []
    tensors = torch_to_owt_tensors(model, load_torch_weights(a.weights), a.weights, zeroed)
    write_safetensors(a.out, tensors, owt_metadata(model, a.weights))
    params, buffers = len(list(model.parameters())), len(list(model.buffers()))
    print(f"{a.out}: owt checkpoint with {params} parameters (zero momentum, step 0)"
          + (f" and {buffers} buffers" if buffers else ""))
    if zeroed:
        print(f"{a.weights} has no num_batches_tracked for {len(zeroed)} batchnorm layers: set to 0, as PyTorch does")


def _cmd_eval(a):
    model = build_model(a.model)
    # An owt checkpoint, another .safetensors file or a .pt state_dict: no code in it runs.
    tensors = torch_to_owt_tensors(model, load_torch_weights(a.weights), a.weights)
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optim.")})
    data = a.data or (model.config.get("data") or {}).get("path")
    if not data:
        raise InteropError(f"{a.model}: no data set: give data.path in the model file or --data DIR")
    r = evaluate(model, data, a.split)
    if a.json:
        print(json.dumps({"weights": a.weights, "split": a.split, **r}))
    else:
        print(f"{a.weights} on {r['examples']} {a.split} examples: loss {r['loss']:.4f}, "
              f"top-1 {100 * r['top1']:.2f}%, top-5 {100 * r['top5']:.2f}%")


def _cmd_to_onnx(a):
    import onnx_export  # tools/onnx_export.py
    if a.opset < onnx_export.MIN_OPSET:
        raise InteropError(f"--opset {a.opset}: owt exports with opset {onnx_export.MIN_OPSET} or newer")
    model = load_owt_checkpoint(build_model(a.model), a.checkpoint)
    names = read_safetensors(a.checkpoint)[1].get("class_names")
    try:
        onnx_export.export_onnx(model, a.out, a.opset, names.split("\n") if names else None)
    except onnx_export.ExportError as e:
        raise InteropError(f"{a.model}: cannot export to ONNX: {e}")
    print(f"{a.out}: ONNX (opset {a.opset}, dynamic batch): input {list(model.input_shape)} -> logits [{model.classes}]")


def main(argv=None):
    p = argparse.ArgumentParser(prog="torch_interop.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("to-torch", help="owt checkpoint -> torch state_dict (or module)")
    t.add_argument("model"), t.add_argument("checkpoint"), t.add_argument("out")
    t.add_argument("--module", action="store_true", help="save the whole nn.Module, not a state_dict")
    t.set_defaults(run=_cmd_to_torch)
    f = sub.add_parser("from-torch", help="torch state_dict (.pt, or .safetensors) -> owt checkpoint")
    f.add_argument("model"), f.add_argument("weights"), f.add_argument("out")
    f.set_defaults(run=_cmd_from_torch)
    e = sub.add_parser("eval", help="evaluate weights with the torch model, as `owt eval`")
    e.add_argument("model"), e.add_argument("weights")
    e.add_argument("--data"), e.add_argument("--split", default="test", choices=["train", "test"])
    e.add_argument("--json", action="store_true")
    e.set_defaults(run=_cmd_eval)
    o = sub.add_parser("to-onnx", help="owt checkpoint -> ONNX model (ONNX Runtime), dynamic batch")
    o.add_argument("model"), o.add_argument("checkpoint"), o.add_argument("out")
    o.add_argument("--opset", type=int, default=13, help="ONNX opset (13 or newer)")
    o.set_defaults(run=_cmd_to_onnx)
    a = p.parse_args(argv)
    try:
        a.run(a)
    except InteropError as err:
        print(f"torch_interop: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run through the importable module, so a saved --module pickles as torch_interop.OwtNet
    # (loadable wherever tools/ is on sys.path), not __main__.OwtNet.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_interop
    sys.exit(torch_interop.main())
