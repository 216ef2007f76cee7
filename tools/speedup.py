#!/usr/bin/python3
# Predicted (and measured) speedup against the number of workers for one model: runs `owt plan
# --json` for each K, for the model file as it is and with `fc_update: block` (the OWT paper's
# two settings), prints a Markdown table and draws speedup against K. Debian's matplotlib
# (python3-matplotlib) under /usr/bin/python3.
"""Speedup of K workers over one worker on the same global batch, as owt plan predicts it.

  tools/speedup.py MODEL --batch B [--workers 1,2,4,8] [--owt PATH]
                   [--figures GBS,TFLOPS,OVERLAP] [--profile P.json --comm C.json]
                   [--measured LABEL:K=S,K=S ...] [-o FILE] [--title TEXT]

Each prediction line is labelled by what it came from (figures, measured files, or both sets
of lines when both are given). --measured adds measured points (the
label names them, e.g. "measured here, step:1=1,2=1.93"). FILE ends in .png, .svg or .pdf; the
table goes to stdout. The model file needs transition: pipelined for the block setting (else
only the step setting is drawn).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def plan(owt, model, k, batch, inputs):
    out = subprocess.run([owt, "plan", model, "--workers", str(k), "--batch", str(batch), "--json"] + inputs,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"speedup: owt plan failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def with_block_updates(model, folder):
    """A copy of the model file with fc_update: block, or None when it is not pipelined."""
    text = open(model).read()
    if "transition: pipelined" not in text:
        return None
    text = text.replace("fc_update: step", "fc_update: block")
    if "fc_update: block" not in text:
        text = text.replace("transition: pipelined", "transition: pipelined, fc_update: block")
    path = os.path.join(folder, "block_" + os.path.basename(model))
    open(path, "w").write(text)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, required=True, help="images per worker")
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--owt", default=os.environ.get("OWT_BIN", os.path.join(ROOT, "build", "owt")))
    ap.add_argument("--figures", help="GB/s,TFLOP/s,overlap")
    ap.add_argument("--profile")
    ap.add_argument("--comm")
    ap.add_argument("--measured", action="append", default=[])
    ap.add_argument("-o", "--output")
    ap.add_argument("--title")
    a = ap.parse_args()
    if bool(a.profile) != bool(a.comm) or not (a.figures or a.profile):
        sys.exit("speedup: give --figures GBS,TFLOPS,OVERLAP and/or --profile P --comm C")
    sources = []
    if a.figures:
        gbs, tflops, overlap = a.figures.split(",")
        sources.append((f"{gbs} GB/s, {tflops} TFLOP/s, overlap {overlap}",
                        ["--bandwidth", gbs, "--flops", tflops, "--overlap", overlap]))
    if a.profile:
        sources.append((f"{os.path.basename(a.profile)} + {os.path.basename(a.comm)}",
                        ["--profile", a.profile, "--comm", a.comm]))
    ks = [int(k) for k in a.workers.split(",")]
    lines = {}
    with tempfile.TemporaryDirectory() as folder:
        settings = [("step", a.model), ("block", with_block_updates(a.model, folder))]
        for source, inputs in sources:
            for setting, model in settings:
                if model is None:
                    continue
                rows = [plan(a.owt, model, k, a.batch, inputs) for k in ks]
                lines[f"hybrid, {setting} ({source})"] = [1.0 if k == 1 else r["speedup"] for k, r in zip(ks, rows)]
                if setting == "step":
                    lines[f"data-parallel ({source})"] = [1.0 if k == 1 else r["speedup_dp"] for k, r in zip(ks, rows)]
    source = "; ".join(s for s, _ in sources)
    measured = {}
    for m in a.measured:
        label, points = m.rsplit(":", 1)
        measured[label] = sorted((int(k), float(s)) for k, s in (p.split("=") for p in points.split(",")))

    print(f"Speedup over one worker on the same global batch, {os.path.basename(a.model)}, "
          f"{a.batch} images per worker; predicted from {source}")
    print("| K | " + " | ".join(lines) + " |")
    print("| ---: |" + " ---: |" * len(lines))
    for i, k in enumerate(ks):
        print(f"| {k} | " + " | ".join(f"{v[i]:.2f}" for v in lines.values()) + " |")
    for label, pts in measured.items():
        print(f"{label}: " + ", ".join(f"K={k}: {s:.2f}" for k, s in pts))
    if not a.output:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(ks, ks, color="0.8", linestyle=":", label="linear")
    for label, values in lines.items():
        ax.plot(ks, values, marker="o", label=label)
    for label, pts in measured.items():
        ax.plot([k for k, _ in pts], [s for _, s in pts], marker="s", linestyle="none", markersize=8, label=label)
    ax.set_xlabel("workers K")
    ax.set_ylabel("speedup over one worker")
    ax.set_xticks(ks)
    ax.set_title(a.title or f"{os.path.basename(a.model)}, {a.batch}/worker: {source}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(a.output)
    print(f"speedup: {a.output}")


if __name__ == "__main__":
    main()
