#!/usr/bin/python3
"""Draws the serving figures from bench/serving_figures.sh's JSON.

  /usr/bin/python3 bench/serving/plot.py bench/serving/serving.json bench/serving

Writes throughput_vs_streams.png (generated tokens/s vs concurrent streams, one
line per precision) and itl_vs_streams.png (inter-token latency p50/p90/p99 vs
streams, one panel per precision).
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    data = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    precisions = []
    for p in data["points"]:
        if p["precision"] not in precisions:
            precisions.append(p["precision"])
    by = {q: sorted((p for p in data["points"] if p["precision"] == q),
                    key=lambda p: p["streams"]) for q in precisions}
    sub = f"{data['model']}, {data['machine']}\n{data['date']}, {data['point_duration']} per point"

    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
    for i, q in enumerate(precisions):
        pts = by[q]
        ax.plot([p["streams"] for p in pts], [p["result"]["tokens_per_second"] for p in pts],
                "o-", ms=4, color=f"C{i}", label=q)
    ax.set_xscale("log", base=2)
    ax.set_xticks([p["streams"] for p in by[precisions[0]]])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("concurrent streams (lstmbench closed loop)")
    ax.set_ylabel("generated tokens/s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Throughput vs streams\n{sub}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "throughput_vs_streams.png"))

    fig, axes = plt.subplots(1, len(precisions), figsize=(3.2 * len(precisions), 3.6), dpi=100,
                             sharey=True, squeeze=False)
    for ax, q in zip(axes[0], precisions):
        pts = by[q]
        xs = [p["streams"] for p in pts]
        for j, (pc, style) in enumerate((("p50", "o-"), ("p90", "s--"), ("p99", "^:"))):
            ax.plot(xs, [p["result"]["inter_token"][f"{pc}_ms"] for p in pts], style, ms=3,
                    color=f"C{j}", label=pc)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs)
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("concurrent streams")
        ax.set_title(q, fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("inter-token latency (ms)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Inter-token latency percentiles vs streams — {sub}", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "itl_vs_streams.png"))


if __name__ == "__main__":
    main()
