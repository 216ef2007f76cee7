#!/usr/bin/python3
# Plots owt runs: training loss and test top-1 against epoch, one line per run, from each run
# directory's metrics.jsonl; PNG, SVG or PDF by the output's extension. Debian's matplotlib
# (python3-matplotlib, installed by tools/install_deps.sh) under /usr/bin/python3.
"""Plot owt runs: training loss and test top-1 against epoch.

  tools/plot.py RUN [RUN ...] [-o FILE] [--title TEXT]

RUN is a run directory (it holds metrics.jsonl) or a metrics.jsonl file. Each run is one line
in both panels, named by its directory in the legend. FILE ends in .png (default plot.png),
.svg or .pdf. A run resumed after an interruption may repeat epochs in metrics.jsonl: the last
record of each epoch counts.
"""
import argparse
import json
import os
import sys

FORMATS = (".png", ".svg", ".pdf")


class PlotError(Exception):
    """Bad input: printed as `plot: error: <message>`, exit 1."""


def read_run(path):
    """(name, {epoch: train record}, {epoch: eval record}) of a run directory or metrics file."""
    metrics = os.path.join(path, "metrics.jsonl") if os.path.isdir(path) else path
    if not os.path.exists(path):
        raise PlotError(f"{path}: no such run directory")
    if not os.path.isfile(metrics):
        raise PlotError(f"{path}: no metrics.jsonl (not an owt run directory, or a run that has "
                        "not finished its first epoch)")
    train, test = {}, {}
    with open(metrics) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                kind, epoch = r["kind"], int(r["epoch"])
            except (ValueError, KeyError, TypeError) as e:
                raise PlotError(f"{metrics}:{number}: not an owt metrics record ({e})")
            if kind == "train" and "loss" in r:
                train[epoch] = r
            elif kind == "eval" and "top1" in r:
                test[epoch] = r
    if not train and not test:
        raise PlotError(f"{metrics}: no train or eval records yet")
    run_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    return os.path.basename(os.path.abspath(run_dir)), train, test


def unique_names(names):
    """Run names for the legend; repeated names get their position: a (1), a (2)."""
    out = []
    for i, n in enumerate(names):
        out.append(f"{n} ({names[:i].count(n) + 1})" if names.count(n) > 1 else n)
    return out


def plot(runs, out, title=None):
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_top1) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    names = unique_names([name for name, _, _ in runs])
    for label, (_, train, test) in zip(names, runs):
        line = None
        if train:
            epochs = sorted(train)
            (line,) = ax_loss.plot(epochs, [train[e]["loss"] for e in epochs], marker="o",
                                   markersize=3, label=label)
        if test:
            epochs = sorted(test)
            ax_top1.plot(epochs, [100 * test[e]["top1"] for e in epochs], marker="o", markersize=3,
                         label=label, color=line.get_color() if line else None)
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="mean cross-entropy")
    ax_top1.set(title="test top-1", xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax_loss, ax_top1):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="plot.py", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory (or its metrics.jsonl)")
    p.add_argument("-o", "--out", default="plot.png", help="output file: .png, .svg or .pdf")
    p.add_argument("--title", help="a title above both panels")
    a = p.parse_args(argv)
    try:
        ext = os.path.splitext(a.out)[1].lower()
        if ext not in FORMATS:
            raise PlotError(f"{a.out}: unknown format '{ext}' (expected {', '.join(FORMATS)})")
        runs = [read_run(r) for r in a.runs]
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise PlotError("matplotlib is missing: tools/install_deps.sh installs python3-matplotlib")
        plot(runs, a.out, a.title)
    except PlotError as e:
        print(f"plot: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"plot: error: {a.out}: cannot write ({e.strerror})", file=sys.stderr)
        return 1
    print(f"plot: {a.out}: {len(runs)} run{'s' if len(runs) > 1 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
