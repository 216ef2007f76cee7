# Reads an owt run directory's TensorBoard event files with TensorBoard's own reader
# (EventAccumulator, over every event file of the directory, as `tensorboard --logdir` does)
# and checks them against metrics.jsonl: every scalar tag present, steps strictly increasing,
# one value per record equal to the record's to the precision metrics.jsonl prints; the text
# summaries present. Also checks every record's bytes re-serialize identically through
# TensorBoard's protobuf classes (the encoder, byte for byte).
# Usage: .venv/bin/python check_events.py RUN_DIR [--min-files N] [--damaged FILE ...]
# (--damaged: event files the test corrupted on purpose, left out of the byte check)
import argparse
import glob
import json
import os
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2

# tag -> (metrics.jsonl kind, key, absolute tolerance, relative tolerance): the JSON keeps
# loss/top1/top5 to 6 decimals, images_per_s to 1, data_wait_s to 3, lr to 6 digits.
TAGS = {
    "train/loss": ("train", "loss", 1e-6, 1e-6),
    "train/top1": ("train", "top1", 1e-6, 1e-6),
    "train/lr": ("train", "lr", 0, 1e-5),
    "train/images_per_s": ("train", "images_per_s", 0.051, 1e-6),
    "train/data_wait_s": ("train", "data_wait_s", 5.1e-4, 1e-6),
    "train/comm_bytes": ("train", "comm_bytes", 0, 1e-7),
    "eval/loss": ("eval", "loss", 1e-6, 1e-6),
    "eval/top1": ("eval", "top1", 1e-6, 1e-6),
    "eval/top5": ("eval", "top5", 1e-6, 1e-6),
}
TEXTS = ("model_file", "config", "command_line")


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def complete_records(path):
    """The records of a TFRecord file up to the first incomplete one (a killed writer's tail)."""
    raw = open(path, "rb").read()
    at, out = 0, []
    while at + 12 <= len(raw):
        (n,) = struct.unpack("<Q", raw[at:at + 8])
        if at + 12 + n + 4 > len(raw):
            break
        out.append(raw[at + 12:at + 12 + n])
        at += 12 + n + 4
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--min-files", type=int, default=1)
    p.add_argument("--damaged", nargs="*", default=[])
    a = p.parse_args()
    files = sorted(glob.glob(os.path.join(a.run, "events.out.tfevents.*")))
    if len(files) - len(a.damaged) < a.min_files:
        fail(f"{len(files)} event files in {a.run}, expected at least {a.min_files}")

    # Byte for byte: TensorBoard's protobuf parses each record and writes the same bytes.
    damaged = {os.path.basename(d) for d in a.damaged}
    for f in files:
        if os.path.basename(f) in damaged:
            continue
        for data in complete_records(f):
            if event_pb2.Event.FromString(data).SerializeToString() != data:
                fail(f"{f}: a record does not re-serialize to the same bytes")

    acc = event_accumulator.EventAccumulator(a.run, size_guidance={event_accumulator.SCALARS: 0,
                                                                   event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    records = [json.loads(line) for line in open(os.path.join(a.run, "metrics.jsonl")) if line.strip()]
    # The last record of each step (a resumed run may repeat an epoch a killed one wrote).
    by_kind = {}
    for r in records:
        by_kind.setdefault(r["kind"], {})[r["step"]] = r
    for tag, (kind, key, atol, rtol) in TAGS.items():
        if tag not in tags["scalars"]:
            fail(f"scalar {tag} missing (have {sorted(tags['scalars'])})")
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        if any(b <= a for a, b in zip(steps, steps[1:])):
            fail(f"{tag}: steps not increasing: {steps}")
        want = by_kind.get(kind, {})
        if steps != sorted(want):
            fail(f"{tag}: steps {steps}, metrics.jsonl has {sorted(want)}")
        for e in events:
            v = float(want[e.step][key])
            if abs(e.value - v) > atol + rtol * abs(v):
                fail(f"{tag} at step {e.step}: event {e.value!r}, metrics.jsonl {v!r}")
    for tag in TEXTS:
        if tag not in tags["tensors"]:
            fail(f"text summary {tag} missing (have {sorted(tags['tensors'])})")
        text = acc.Tensors(tag)[-1].tensor_proto.string_val[0].decode()
        if not text.strip():
            fail(f"text summary {tag} is empty")
    command = acc.Tensors("command_line")[-1].tensor_proto.string_val[0].decode()
    if " train " not in command:
        fail(f"command_line summary does not hold the train command: {command!r}")
    print(f"ok: {len(files)} event files, {len(TAGS)} scalar tags, steps {[e.step for e in acc.Scalars('train/loss')]}")


if __name__ == "__main__":
    main()
