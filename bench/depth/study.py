#!/usr/bin/python3
"""Depth study: char-level LSTMs of 1..4 layers at an equal parameter budget.

  train   trains every (depth, learning rate) with tools/train.py under the same
          budget (a fixed number of optimizer steps), --jobs at a time, one torch
          thread each; writes RUN/runs/L{depth}_lr{rate}/curve.json and
          RUN/train_summary.json (the best rate per depth).
  export  exports the best checkpoint of each depth to RUN/models/L{depth}
          (f32; the server quantizes to int8/bf16 at load).
  plot    draws the loss and curve figures from RUN/train_summary.json (and the
          serving figure from RUN/serve.json, written by bench/depth/serve_bench.sh).

The hidden size per depth is the multiple of 8 whose parameter count is nearest
the demo model's (models/shakespeare: 2x384, embedding 64, 1,903,105 parameters).
Held-out split: the last 10% of the corpus, as the demo model (tools/train.py).

  /usr/bin/python3 bench/depth/study.py train  --run bench/depth/out [--steps 100]
  /usr/bin/python3 bench/depth/study.py export --run bench/depth/out
  /usr/bin/python3 bench/depth/study.py plot   --run bench/depth/out --figures bench/depth
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = "/usr/bin/python3"
V, E = 65, 64
TARGET = 1903105  # the demo model's parameter count
BUDGETS = {
    "short": {"steps": 40, "batch_size": 16, "val_chars": 16384, "eval_every": 10,
              "eval_chars": 2048,
              "lrs": "1=0.004,0.008,0.016;2=0.002,0.004,0.008;3=0.002,0.004,0.008;"
                     "4=0.002,0.004,0.008"},
    "medium": {"steps": 160, "batch_size": 32, "val_chars": 16384, "eval_every": 20,
               "eval_chars": 4096,
               "lrs": "1=0.004,0.008,0.016;2=0.002,0.004,0.008;3=0.002,0.004,0.008;"
                      "4=0.001,0.002,0.004"},
    "long": {"steps": 4000, "batch_size": 32, "val_chars": 0, "eval_every": 250,
             "eval_chars": 16384, "lrs": "0.001,0.002,0.004"},
}


def lstm_lm_params(layers, hidden, vocab=V, emb=E):
    p = vocab * emb + vocab * hidden + vocab
    for k in range(layers):
        inp = emb if k == 0 else hidden
        p += 4 * hidden * (inp + hidden) + 8 * hidden
    return p


def hidden_for(layers, target=TARGET):
    return min(range(64, 2049, 8), key=lambda h: abs(lstm_lm_params(layers, h) - target))


def run_dir(run, layers, lr):
    return os.path.join(run, "runs", f"L{layers}_lr{lr:g}")


def train_one(args, layers, lr):
    out = run_dir(args.run, layers, lr)
    os.makedirs(out, exist_ok=True)
    curve = os.path.join(out, "curve.json")
    if os.path.exists(curve) and not args.force:
        return curve
    cmd = ["nice", "-n", str(args.nice), PY, os.path.join(REPO, "tools", "train.py"),
           "--text", args.text, "--out", out, "--num-layers", str(layers),
           "--hidden-size", str(hidden_for(layers)), "--embedding-dim", str(E),
           "--dropout", str(args.dropout), "--seq-len", str(args.seq_len),
           "--batch-size", str(args.batch_size), "--lr", str(lr),
           "--lr-final", str(lr * args.lr_final_ratio), "--max-steps", str(args.steps),
           "--eval-every", str(args.eval_every), "--eval-chars", str(args.eval_chars),
           "--val-chars", str(args.val_chars), "--threads", str(args.threads),
           "--seed", str(args.seed), "--curve-json", curve]
    t0 = time.time()
    with open(os.path.join(out, "train.log"), "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    print(f"L{layers} lr {lr:g}: done in {time.time() - t0:.0f} s "
          f"(val {json.load(open(curve))['val_loss']})", flush=True)
    return curve


def parse_lrs(spec, depths):
    """"a,b,c" (every depth) or "1=a,b,c;2=..." (per depth) -> {depth: [rates]}."""
    if "=" not in spec:
        return {d: [float(r) for r in spec.split(",")] for d in depths}
    out = {}
    for part in spec.split(";"):
        d, rates = part.split("=")
        out[int(d)] = [float(r) for r in rates.split(",")]
    missing = [d for d in depths if d not in out]
    if missing:
        sys.exit(f"--lrs names no rates for depth(s) {missing}")
    return out


def cmd_train(args):
    depths = [int(d) for d in args.depths.split(",")]
    lrs = parse_lrs(args.lrs, depths)
    # Interleaved (rate index outer, depth inner) so that contention spreads evenly.
    jobs = [(d, lrs[d][i]) for i in range(max(len(v) for v in lrs.values())) for d in depths
            if i < len(lrs[d])]
    if not args.summarize:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(train_one, args, d, r) for d, r in jobs]
            for f in futures:
                f.result()
    summary = {"budget": {"steps": args.steps, "batch_size": args.batch_size,
                          "seq_len": args.seq_len,
                          "chars": args.steps * args.batch_size * args.seq_len,
                          "val_chars": args.val_chars, "budget": args.budget,
                          "dropout": args.dropout, "lr_final_ratio": args.lr_final_ratio,
                          "threads_per_run": args.threads, "parallel_runs": args.jobs},
               "depths": []}
    for d in depths:
        runs, missing = [], []
        for r in lrs[d]:
            path = os.path.join(run_dir(args.run, d, r), "curve.json")
            if not os.path.exists(path):
                missing.append(r)
                continue
            c = json.load(open(path))
            runs.append({"lr": r, "val_loss": c["val_loss"], "train_seconds": c["train_seconds"],
                         "eval_chars": c["args"]["eval_chars"],
                         "parameters": c["parameters"], "curve": c["curve"]})
        best = min(runs, key=lambda x: x["val_loss"])
        summary["depths"].append({"layers": d, "hidden_size": hidden_for(d),
                                  "parameters": best["parameters"], "best_lr": best["lr"],
                                  "val_loss": best["val_loss"],
                                  "train_seconds": best["train_seconds"], "sweep": runs,
                                  "missing_rates": missing})
    with open(os.path.join(args.run, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    for d in summary["depths"]:
        print(f"{d['layers']} layers x {d['hidden_size']}: {d['parameters']:,} params, "
              f"best lr {d['best_lr']:g}, held-out {d['val_loss']:.4f} nats/char, "
              f"{d['train_seconds']:.0f} s"
              + (f"; NOT RUN: {d['missing_rates']}" if d["missing_rates"] else ""))


def cmd_export(args):
    if args.untrained:
        # Serving cost depends only on the shape: these measure it before training ends.
        sys.path.insert(0, os.path.join(REPO, "tools"))
        from export import export_module
        from lstm_lm import LstmLM
        with open(args.text, encoding="utf-8") as f:
            vocab = sorted(set(f.read()))
        for d in (int(x) for x in args.depths.split(",")):
            out = os.path.join(args.run, "models", f"L{d}")
            export_module(LstmLM(len(vocab), E, hidden_for(d), d), vocab, out, f"depth{d}")
            print(out, "(untrained)")
        return
    summary = json.load(open(os.path.join(args.run, "train_summary.json")))
    for d in summary["depths"]:
        ck = os.path.join(run_dir(args.run, d["layers"], d["best_lr"]), "best.pt")
        out = os.path.join(args.run, "models", f"L{d['layers']}")
        subprocess.run([PY, os.path.join(REPO, "tools", "export.py"), "--checkpoint", ck,
                        "--out", out, "--name", f"depth{d['layers']}"], check=True)
        print(out)


def count_baselines(text_path, val_chars):
    """Held-out nats/char of a unigram and an add-one bigram count table fitted on the
    training split, on the same held-out chars as the study's validation loss."""
    import collections
    import math
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    cut = len(text) - int(len(text) * 0.1)
    train, val = text[:cut], text[cut:]
    if val_chars:
        val = val[:val_chars]
    uni = collections.Counter(train)
    bi = collections.Counter(zip(train, train[1:]))
    v = len(set(text))
    unigram = -sum(math.log(uni[c] / len(train)) for c in val) / len(val)
    bigram = -sum(math.log((bi[(a, b)] + 1) / (uni[a] + v)) for a, b in zip(val, val[1:])) / (
        len(val) - 1)
    return unigram, bigram


def cmd_plot(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    summary = json.load(open(os.path.join(args.run, "train_summary.json")))
    ds = summary["depths"]
    b = summary["budget"]
    budget = f"{b['steps']} steps x {b['batch_size']}x{b['seq_len']} chars"
    os.makedirs(args.figures, exist_ok=True)

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    for d in ds:
        xs = [d["layers"]] * len(d["sweep"])
        ax.scatter(xs, [r["val_loss"] for r in d["sweep"]], color="0.6", s=14,
                   label="other learning rates" if d is ds[0] else None)
    ax.plot([d["layers"] for d in ds], [d["val_loss"] for d in ds], "o-", color="C0",
            label="best learning rate")
    for d in ds:
        ax.annotate(f"{d['hidden_size']}", (d["layers"], d["val_loss"]),
                    textcoords="offset points", xytext=(6, 4), fontsize=8)
    if os.path.exists(args.text):
        uni, bi = count_baselines(args.text, b.get("val_chars", 0))
        ax.axhline(uni, color="0.5", ls="--", lw=1)
        ax.axhline(bi, color="0.5", ls=":", lw=1)
        ax.text(ds[0]["layers"], uni, f"unigram counts {uni:.3f}", fontsize=7, va="bottom")
        ax.text(ds[0]["layers"], bi, f"bigram counts {bi:.3f}", fontsize=7, va="bottom")
    ax.set_xticks([d["layers"] for d in ds])
    ax.set_xlabel("LSTM layers (label: hidden size; ~1.9M parameters each)")
    ax.set_ylabel("held-out loss (nats/char)")
    ax.set_title(f"Held-out loss vs depth ({budget})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.figures, "loss_vs_depth.png"))

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    for i, d in enumerate(ds):
        best = next(r for r in d["sweep"] if r["lr"] == d["best_lr"])
        c = best["curve"]
        ax.plot([p["chars"] / 1e3 for p in c], [p["val_loss_subset"] for p in c], "o-",
                color=f"C{i}", ms=3, label=f"{d['layers']}x{d['hidden_size']} lr {d['best_lr']:g}")
    ax.set_xlabel("training chars (thousands)")
    ax.set_ylabel("held-out loss (nats/char)")
    ax.set_title(f"Training curves, best rate per depth ({budget})\n"
                 f"held-out loss on its first {summary['depths'][0]['sweep'][0]['eval_chars']:,} "
                 "chars at each point", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.figures, "curves_by_depth.png"))

    serve = os.path.join(args.run, "serve.json")
    if os.path.exists(serve):
        s = json.load(open(serve))
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), dpi=100)
        for ax, key, label in (
                (axes[0], "tokens_per_server_cpu_s_64", "tokens per server CPU-second"),
                (axes[1], "tokens_per_s_64", "tokens/s (wall clock, contended)")):
            for i, q in enumerate(sorted({r["quant"] for r in s["rows"]})):
                rows = sorted((r for r in s["rows"] if r["quant"] == q),
                              key=lambda r: r["layers"])
                ax.plot([r["layers"] for r in rows], [r[key] for r in rows], "o-",
                        color=f"C{i}", label=q)
            ax.set_xticks([d["layers"] for d in ds])
            ax.set_xlabel("LSTM layers (~1.9M parameters each)")
            ax.set_ylabel(label)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"Served by lstmserve, 64 streams x 64 tokens (lstmbench); {s['machine']}, "
                     f"{s['date']}", fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(args.figures, "tokens_per_s_vs_depth.png"))


def cmd_table(args):
    """Prints the markdown tables of RESULTS.md: one row per depth."""
    summary = json.load(open(os.path.join(args.run, "train_summary.json")))
    serve_path = os.path.join(args.run, "serve.json")
    serve = json.load(open(serve_path))["rows"] if os.path.exists(serve_path) else []

    def sv(layers, key, fmt):
        vals = []
        for q in ("f32", "int8"):
            r = next((r for r in serve if r["layers"] == layers and r["quant"] == q), None)
            vals.append(fmt.format(r[key]) if r else "–")
        return " / ".join(vals)

    print("| layers | hidden | parameters | best lr (swept) | held-out nats/char (other rates) "
          "| training s (wall, contended) | step µs b1 (CPU) | step µs b64 (CPU) "
          "| 512-char prefill ms (CPU) "
          "| served tokens per server CPU-s, 64 streams |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for d in summary["depths"]:
        L = d["layers"]
        others = ", ".join(f"{r['val_loss']:.3f}" for r in d["sweep"] if r["lr"] != d["best_lr"])
        rates = "/".join(f"{r['lr']:g}" for r in d["sweep"])
        cells = [str(L), str(d["hidden_size"]), f"{d['parameters']:,}",
                 f"{d['best_lr']:g} ({rates})", f"**{d['val_loss']:.3f}** ({others})",
                 f"{d['train_seconds']:.0f}", sv(L, "cpu_step_us_b1", "{:.0f}"),
                 sv(L, "cpu_step_us_b64", "{:.0f}"), sv(L, "cpu_prefill_512_ms", "{:.1f}"),
                 sv(L, "tokens_per_server_cpu_s_64", "{:,.0f}")]
        print("| " + " | ".join(cells) + " |")
    print()
    print("| layers | step µs b1 (wall) | step µs b64 (wall) | time to first token, 512-char "
          "prompt, ms (p50) | server CPU ms per 512-char prompt | tokens/s at 64 streams (wall) "
          "| inter-token p50 / p99 ms, 64 streams, f32 |")
    print("|---|---|---|---|---|---|---|")
    for d in summary["depths"]:
        L = d["layers"]
        r32 = next((r for r in serve if r["layers"] == L and r["quant"] == "f32"), None)
        itl = f"{r32['itl_64_ms_p50']:.1f} / {r32['itl_64_ms_p99']:.1f}" if r32 else "–"
        print("| " + " | ".join([str(L), sv(L, "step_us_b1", "{:.0f}"),
                                  sv(L, "step_us_b64", "{:.0f}"),
                                  sv(L, "ttft_512_ms_p50", "{:.0f}"),
                                  sv(L, "server_cpu_ms_per_512_prompt", "{:.1f}"),
                                  sv(L, "tokens_per_s_64", "{:,.0f}"), itl]) + " |")
    print("\n(each cell: f32 / int8)")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["train", "export", "plot", "table", "hidden"])
    p.add_argument("--run", default=os.path.join(REPO, "bench", "depth", "out"))
    p.add_argument("--figures", default=os.path.join(REPO, "bench", "depth"))
    p.add_argument("--text", default=os.path.join(REPO, "..", "shared", "data",
                                                  "tinyshakespeare.txt"),
                   help="the corpus (default ../shared/data/tinyshakespeare.txt)")
    p.add_argument("--depths", default="1,2,3,4")
    p.add_argument("--lrs", help="learning rates to sweep: a,b,c for every depth, or per depth "
                   "1=a,b,c;2=d,e,f;... (short budget: 1 layer 0.004,0.008,0.016, 2-4 layers "
                   "0.002,0.004,0.008; long: 0.001,0.002,0.004)")
    p.add_argument("--budget", choices=sorted(BUDGETS), default="short",
                   help="short: 40 steps of 16x64 chars (41k chars, 0.04 epoch), validation on "
                        "the first 16,384 held-out chars (what fits a shared 2-core machine); "
                        "medium: 160 steps of 32x64 chars (328k chars, 0.33 epoch), the same "
                        "validation chars; "
                        "long: 4000 steps of 32x64 chars (8.2 epochs), the whole held-out split")
    p.add_argument("--steps", type=int, help="optimizer steps, the same for every run "
                   "(overrides --budget)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--val-chars", type=int,
                   help="held-out chars for the final validation loss (0 = all 111,539)")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--lr-final-ratio", type=float, default=0.1,
                   help="the cosine schedule ends at lr * this")
    p.add_argument("--eval-every", type=int, help="steps between curve points")
    p.add_argument("--eval-chars", type=int,
                   help="held-out chars evaluated at each curve point")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--nice", type=int, default=10)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--force", action="store_true", help="retrain runs that have a curve")
    p.add_argument("--summarize", action="store_true",
                   help="train: only write the summary of the runs that have finished")
    p.add_argument("--untrained", action="store_true",
                   help="export: packages of the study's shapes with initial weights (serving "
                        "speed depends only on the shape)")
    args = p.parse_args()
    for k, v in BUDGETS[args.budget].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.command == "hidden":
        for d in args.depths.split(","):
            h = hidden_for(int(d))
            print(d, h, lstm_lm_params(int(d), h))
    else:
        {"train": cmd_train, "export": cmd_export, "plot": cmd_plot,
         "table": cmd_table}[args.command](args)


if __name__ == "__main__":
    main()
