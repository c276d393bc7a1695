#!/usr/bin/python3
"""Draws the serving figures from bench/serving_figures.sh's JSON.

  /usr/bin/python3 bench/serving/plot.py bench/serving/serving.json bench/serving

Writes throughput_vs_streams.png (generated tokens/s vs concurrent streams, one
line per precision) and itl_vs_streams.png (inter-token latency p50/p90/p99 vs
streams, one panel per precision). With several repeats per point: the median,
and the throughput figure shows the range as error bars.
"""
import json
import os
import statistics
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
    def median_points(q):
        """One point per stream count: medians over the repeats, and the range."""
        out = []
        for n in sorted({p["streams"] for p in data["points"] if p["precision"] == q}):
            rs = [p["result"] for p in data["points"]
                  if p["precision"] == q and p["streams"] == n]
            tps = [r["tokens_per_second"] for r in rs]
            out.append({"streams": n, "tps": statistics.median(tps), "tps_min": min(tps),
                        "tps_max": max(tps),
                        "itl": {pc: statistics.median(r["inter_token"][f"{pc}_ms"] for r in rs)
                                for pc in ("p50", "p90", "p99")}})
        return out

    by = {q: median_points(q) for q in precisions}
    reps = data.get("repeats", 1)
    sub = (f"{data['model']}, {data['machine']}, server threads {data.get('server_threads')}\n"
           f"{data['date']}, {data['point_duration']} per point"
           + (f", median of {reps} (bars: range)" if reps > 1 else ""))

    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
    for i, q in enumerate(precisions):
        pts = by[q]
        ax.errorbar([p["streams"] for p in pts], [p["tps"] for p in pts],
                    yerr=[[p["tps"] - p["tps_min"] for p in pts],
                          [p["tps_max"] - p["tps"] for p in pts]],
                    fmt="o-", ms=4, capsize=2, color=f"C{i}", label=q)
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
            # lstmbench prints 3 decimals of a ms: 0 is drawn at that resolution, 0.001.
            ax.plot(xs, [max(p["itl"][pc], 1e-3) for p in pts], style, ms=3,
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
