#!/usr/bin/python3
"""Draws loss, learning-rate and throughput curves from a run's metrics.jsonl into one PNG.
Usage: scripts/plot_metrics.py RUN_DIR/metrics.jsonl OUT.png"""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_metrics.py METRICS.jsonl OUT.png")
    train, evals = [], []
    with open(sys.argv[1]) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            (train if r.get("kind") == "train" else evals if r.get("kind") == "eval" else []).append(r)
    if not train:
        sys.exit(f"{sys.argv[1]}: no training records")
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    steps = [r["step"] for r in train]
    ax[0].plot(steps, [r["loss"] for r in train], label="train")
    if evals:
        ax[0].plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", label="validation")
    ax[0].set_title("loss"); ax[0].set_xlabel("step"); ax[0].legend()
    ax[1].plot(steps, [r["lr"] for r in train]); ax[1].set_title("learning rate"); ax[1].set_xlabel("step")
    ax[2].plot(steps, [r["tokens_per_s"] for r in train]); ax[2].set_title("tokens/s"); ax[2].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=80)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
