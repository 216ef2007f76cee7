#!/usr/bin/python3
# Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/), in the input layouts
# fuzz_targets.cpp describes: small valid files of every kind plus a few near misses. Run it
# from anywhere after changing a layout: /usr/bin/python3 tests/fuzz/make_seeds.py
# (corpus/image_decode/opencv_*.{jpg,webp,tif} were encoded once with OpenCV and are kept as
# they are.) The corpus is small on purpose: libFuzzer grows its own in a temp directory.
import gzip
import json
import os
import struct
import zlib

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))


def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def png(w, h):
    raw = b"".join(b"\x00" + bytes([(x * 40 + y * 90) % 256 for x in range(w * 3)]) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def bmp(w, h):
    row = (w * 3 + 3) // 4 * 4
    pix = b"".join(bytes([(x * 50 + y * 70) % 256 for x in range(w * 3)]) + b"\0" * (row - w * 3)
                   for y in range(h))
    dib = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pix), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(pix), 0, 0, 54) + dib + pix


# ---- model_yaml: the shipped models, a network-only file, and variants of every section.
for name in sorted(os.listdir(os.path.join(root, "models"))):
    if name.endswith(".yaml"):
        with open(os.path.join(root, "models", name), "rb") as f:
            put("model_yaml", name, f.read())
put("model_yaml", "network_only.yaml", """name: plan_only
input: [3, 32, 32]
classes: 10
layers:
  - {name: conv1, type: conv, filters: 8, size: 3, pad: 1}
  - {name: relu1, type: relu}
  - {name: pool1, type: avgpool, size: 2}
  - {name: norm1, type: lrn, size: 3}
  - {name: flat, type: flatten}
  - {name: fc1, type: linear, outputs: 16, split: output}
  - {name: drop1, type: dropout, rate: 0.5}
  - {name: fc2, type: linear, outputs: 10, split: input, lr_mult: 2, wd_mult: 0, freeze: false}
  - {name: loss, type: softmax_cross_entropy}
parallel: {transition: pipelined, fc_update: block}
""")
put("model_yaml", "everything.yaml", """name: all_keys
input: [3, 24, 24]
classes: 3
seed: 7
precision: bf16
data:
  format: folder
  path: /data
  mean: [0.5, 0.4, 0.3]
  std: [0.2]
  augment: {resize: 28, crop: 24, pad: 2, flip: true, lighting: 0.1, test_views: 10}
  threads: 2
  prefetch: 3
  strict: true
  labels: [2, 0, 1]
  class_names: [cat, dog, "bird/other"]
layers:
  - {name: conv1, type: conv, filters: 4, size_h: 3, size_w: 5, stride: 2, pad: 1, bias: false, init: he}
  - {name: pool1, type: maxpool, size: 3, stride: 2, pad: 1}
  - {name: fc1, type: linear, outputs: 3, parallel: model}
  - {name: loss, type: softmax_cross_entropy}
parallel: {transition: allgather}
solver:
  type: sgd
  lr: 0.1
  momentum: 0.5
  weight_decay: 1.0e-4
  batch: 4
  epochs: 3
  schedule: {type: step, warmup_epochs: 0.5, milestones: [1, 2], gamma: 0.5}
""")
put("model_yaml", "bad_combination.yaml", """name: bad
input: [1, 8, 8]
classes: 2
data: {format: idx, strict: true, augment: {test_views: 10}}
layers:
  - {name: fc1, type: linear, outputs: 2, parallel: data}
  - {name: loss, type: softmax_cross_entropy}
parallel: {transition: allgather, fc_update: block}
solver: {lr: 0.1, batch: 99999999999, epochs: 1, schedule: {type: cosine, min_lr: 1, milestones: [1]}}
""")
put("model_yaml", "huge.yaml", """name: huge
input: [3, 65536, 65536]
classes: 16777216
layers:
  - {name: fc1, type: linear, outputs: 9007199254740992}
  - {name: loss, type: softmax_cross_entropy}
""")

# ---- idx: u16 LE length of the images file, the images file, then the labels file.
def idx_images(n, h, w, pixels, magic=0x803):
    return struct.pack(">IIII", magic, n, h, w) + bytes(pixels)


def idx_labels(n, labels, magic=0x801):
    return struct.pack(">II", magic, n) + bytes(labels)


def idx_input(images, labels):
    return struct.pack("<H", len(images)) + images + labels


imgs = idx_images(3, 4, 4, range(48))
labs = idx_labels(3, [0, 2, 1])
put("idx", "valid", idx_input(imgs, labs))
put("idx", "valid_gzip", idx_input(gzip.compress(imgs, mtime=0), gzip.compress(labs, mtime=0)))
put("idx", "count_mismatch", idx_input(imgs, idx_labels(2, [0, 1])))
put("idx", "truncated", idx_input(imgs[:30], labs))
put("idx", "huge_header", idx_input(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 0x7FFF, 0x7FFF), labs))

# ---- cifar: flags byte (bit 0: CIFAR-100, bit 1: names file follows), [u16 n, names], batch.
rec10 = bytes([3]) + bytes(range(256)) * 12
rec100 = bytes([1, 42]) + bytes(range(256)) * 12
names10 = "\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                     "ship", "truck"]).encode()
put("cifar", "cifar10", b"\x00" + rec10 * 2)
put("cifar", "cifar10_names", b"\x02" + struct.pack("<H", len(names10)) + names10 + rec10)
names100 = "\n".join(f"class{i}" for i in range(100)).encode()
put("cifar", "cifar100_names", b"\x03" + struct.pack("<H", len(names100)) + names100 + rec100)
put("cifar", "partial_record", b"\x00" + rec10 + rec10[:100])

# ---- safetensors
def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


put("safetensors", "checkpoint", safetensors(
    {"fc1.weight": ("F32", [2, 3], struct.pack("<6f", *range(6))),
     "fc1.bias": ("F32", [2], struct.pack("<2f", 0.5, -0.5)),
     "optim.fc1.bias.momentum_buffer": ("F32", [2], bytes(8))},
    {"format": "owt-checkpoint-1", "class_names": "a\nb", "step": "3"}))
put("safetensors", "dtypes", safetensors(
    {"i64": ("I64", [2], struct.pack("<2q", -1, 1)), "scalar": ("F64", [], struct.pack("<d", 2.0)),
     "empty": ("BF16", [0, 5], b""), "u8": ("U8", [3], b"\x01\x02\x03")}))
put("safetensors", "huge_shape", safetensors({"w": ("F32", [4294967296, 4294967296], b"")}))
put("safetensors", "huge_header_length", struct.pack("<Q", 1 << 40) + b"{}")

# ---- packed_index: indexes over the fixed shards of fuzz_targets.cpp.
png22, bmp22 = png(2, 2), bmp(2, 2)
assert len(png22) == 79 and len(bmp22) == 70


def pstr(s):
    s = s.encode()
    return struct.pack("<I", len(s)) + s


def packed_index(classes, shards, records):
    b = b"OWTPACK1" + struct.pack("<IIIQ", 1, len(classes), len(shards), len(records))
    b += b"".join(pstr(c) for c in classes) + b"".join(pstr(s) for s in shards)
    for shard, offset, size, label, h, w, name in records:
        b += struct.pack("<IQIIII", shard, offset, size, label, h, w) + pstr(name)
    return b + b"OWTPEND1"


shards = ["train-00000.owtshard", "train-00001.owtshard"]
records = [(0, 8, 79, 0, 2, 2, "cat/a.png"), (0, 87, 70, 1, 2, 2, "dog/b.bmp"),
           (1, 8, 19, 1, 2, 2, "dog/c.jpg")]
put("packed_index", "valid", packed_index(["cat", "dog"], shards, records))
put("packed_index", "one_shard", packed_index(["cat"], shards[:1], [(0, 8, 79, 0, 2, 2, "cat/a.png")]))
put("packed_index", "escaping_shard", packed_index(["cat"], ["../../etc/passwd"], records[:1]))
put("packed_index", "wrapping_offset", packed_index(["cat", "dog"], shards,
                                                    [(0, (1 << 64) - 8, 79, 0, 2, 2, "cat/a.png")]))

# ---- image_decode: hand-made PNG, BMP, PNM; OpenCV-encoded JPEG, WebP and TIFF kept as files.
put("image_decode", "rgb.png", png22)
put("image_decode", "rgb.bmp", bmp22)
put("image_decode", "grey.pgm", b"P5\n# a comment\n3 2\n255\n" + bytes(range(0, 60, 10)))
put("image_decode", "rgb.ppm", b"P3 2 1 255 255 0 0 0 255 0\n")
put("image_decode", "huge.png", png22[:16] + struct.pack(">II", 1 << 20, 1 << 20) + png22[24:])
