#!/usr/bin/python3
"""The serving path's CPU cost per generated token, against the engine's own.

In one run, REPEATS times interleaved:
  engine: serving_bench --engine_only --threads 1 --streams 64 on the package:
          the engine's CPU time per token at batch 64 (one engine thread);
  served: lstmserve --threads 1 on the same package, driven by lstmbench
          (a separate process on the same machine) with 64 greedy streams of
          256 tokens; the server's CPU time (utime + stime from
          /proc/PID/stat, all its threads) over the run divided by the tokens
          the client received, and the client's own CPU per token (rusage).
Prints one line per measurement and the medians, and the ratio
served / engine (goal: <= 1.25, issue 15).

Usage: bench/serving_cpu.py [--build build] [--package models/shakespeare | --random 3x512]
           [--repeats 3] [--duration 10s] [--streams 64] [--server-arg=--flag=value ...]
--random LxH writes a random char package (the demo model's vocabulary, E=64,
torch.manual_seed(1)) with tools/export.py into a temporary directory and
measures that (server/README.md used --random 3x512).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine_run(args):
    out = subprocess.run(
        [f"{args.build}/bench/serving_bench", "--package", args.package, "--threads", "1",
         "--streams", str(args.streams), "--engine_only", "--duration", args.duration],
        check=True, capture_output=True, text=True).stdout
    # "engine alone, batch-64 Step: X tokens/s, Y us CPU per token (engine thread)"
    words = out.split()
    return float(words[words.index("us") - 1]), float(words[words.index("tokens/s,") - 1])


def served_run(args):
    port = free_port()
    server = subprocess.Popen(
        [f"{args.build}/server/lstmserve", "--model", f"m={args.package}", "--threads", "1",
         "--listen", f"127.0.0.1:{port}", "--request_log", ""] + args.server_arg,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if subprocess.run([f"{args.build}/client/lstmctl", "--server", f"127.0.0.1:{port}",
                               "health"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        before = proc_cpu_seconds(server.pid)
        bench = subprocess.Popen(
            [f"{args.build}/client/lstmbench", "--server", f"127.0.0.1:{port}", "--model", "m",
             "--concurrency", str(args.streams), "--max_tokens", "256", "--temperature", "0",
             "--duration", args.duration, "--json"], stdout=subprocess.PIPE, text=True)
        out = bench.stdout.read()
        _, status, usage = os.wait4(bench.pid, 0)
        after = proc_cpu_seconds(server.pid)
        r = json.loads(out)
        tokens = r["tokens_per_second"] * r["seconds"]
        return {
            "server_us": (after - before) * 1e6 / tokens,
            "client_us": (usage.ru_utime + usage.ru_stime) * 1e6 / tokens,
            "tok_s": r["tokens_per_second"],
            "itl_p50": r["inter_token"]["p50_ms"],
            "itl_p99": r["inter_token"]["p99_ms"],
            "errors": r["errors"],
        }
    finally:
        server.terminate()
        server.wait()


def random_package(shape, out_dir):
    """Writes a random LstmLM of shape "LxH" with the demo model's vocabulary."""
    layers, hidden = (int(x) for x in shape.split("x"))
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import torch  # Debian's python3-torch
    from export import export_module
    from lstm_lm import LstmLM
    with open(os.path.join(ROOT, "models", "shakespeare", "config.json")) as f:
        vocab = json.load(f)["tokenizer"]["vocab"]
    torch.manual_seed(1)
    export_module(LstmLM(len(vocab), 64, hidden, layers), vocab, out_dir, f"char{shape}")
    return out_dir


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--package", default=os.path.join(ROOT, "models", "shakespeare"))
    p.add_argument("--random", help="measure a random char package of this shape, e.g. 3x512")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", default="10s")
    p.add_argument("--streams", type=int, default=64)
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra lstmserve flag (repeatable), e.g. --server-arg=--max_batch=64")
    args = p.parse_args()
    if args.random:
        args.package = random_package(args.random, tempfile.mkdtemp(prefix="serving_cpu_"))
    engine, served = [], []
    for rep in range(args.repeats):
        us, tok_s = engine_run(args)
        engine.append(us)
        print(f"rep {rep + 1} engine: {us:7.2f} us CPU/token at batch {args.streams} "
              f"({tok_s:.0f} tok/s wall)", flush=True)
        s = served_run(args)
        served.append(s)
        print(f"rep {rep + 1} served: server {s['server_us']:7.2f} us CPU/token, client "
              f"{s['client_us']:7.2f}, {s['tok_s']:.0f} tok/s, itl p50 {s['itl_p50']:.2f} "
              f"p99 {s['itl_p99']:.2f} ms, errors {s['errors']}", flush=True)
    e = statistics.median(engine)
    sv = statistics.median(s["server_us"] for s in served)
    cl = statistics.median(s["client_us"] for s in served)
    print(f"median: engine {e:.2f} us/token, server {sv:.2f} us/token "
          f"(server/engine {sv / e:.2f}), client {cl:.2f} us/token")
    return 0


if __name__ == "__main__":
    sys.exit(main())
