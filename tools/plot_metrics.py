#!/usr/bin/env python3
"""Draw a training run's curves from RUN_DIR/metrics.jsonl into a PNG.

    python3 tools/plot_metrics.py runs/clip_shapes            # -> runs/clip_shapes/metrics.png
    python3 tools/plot_metrics.py runs/clip_shapes --out curves.png

Left: the training loss (raw and smoothed) and the learning rate. Right: every
`eval_*` metric with values in [0, 1] (zero-shot accuracy, recall@K) against the step.
Needs matplotlib (Debian: python3-matplotlib); exits with status 2 and a message when it is missing.
"""
import argparse
import json
import os
import sys


def read_metrics(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return rows


def smooth(values, window):
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", help="a run folder holding metrics.jsonl (or the file itself)")
    ap.add_argument("--out", help="PNG to write (default RUN_DIR/metrics.png)")
    args = ap.parse_args()
    path = args.run_dir if args.run_dir.endswith(".jsonl") else os.path.join(args.run_dir, "metrics.jsonl")
    out = args.out or os.path.join(os.path.dirname(path), "metrics.png")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_metrics: matplotlib is not installed (apt-get install python3-matplotlib); no plot drawn",
              file=sys.stderr)
        return 2
    rows = read_metrics(path)
    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if any(k.startswith("eval_") for k in r)]
    fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(12, 4.5))
    if train:
        steps = [r["step"] for r in train]
        losses = [r["loss"] for r in train]
        ax_loss.plot(steps, losses, alpha=0.3, label="loss")
        ax_loss.plot(steps, smooth(losses, 25), label="loss (smoothed)")
        ax_loss.set_xlabel("step")
        ax_loss.set_ylabel("loss")
        ax_loss.set_title("training loss")
        if "lr" in train[0]:
            ax_lr = ax_loss.twinx()
            ax_lr.plot(steps, [r.get("lr", 0) for r in train], color="grey", linestyle=":", label="lr")
            ax_lr.set_ylabel("learning rate")
        ax_loss.legend(loc="upper right")
    keys = sorted({k for r in evals for k in r if k.startswith("eval_")})
    for k in keys:
        pts = [(r["step"], r[k]) for r in evals if k in r and isinstance(r[k], (int, float))]
        if pts and all(0.0 <= v <= 1.0 for _, v in pts):
            ax_eval.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=k[5:])
    ax_eval.set_xlabel("step")
    ax_eval.set_ylim(0, 1)
    ax_eval.set_title("held-out evaluation")
    if keys:
        ax_eval.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
