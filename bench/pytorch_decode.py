#!/usr/bin/python3
"""PyTorch baseline for bench/engine_bench.cc: step-by-step decode with nn.LSTM + nn.Linear
+ log_softmax (f32, random weights), at the same shapes and batch sizes, states carried.

Prints JSON: {"torch": version, "threads": n, "shapes": {name: {"decode_tok_s": {batch: tok/s},
"step_us_b1": µs, "prefill_tok_s": tok/s (one prompt, T=--prompt, in one nn.LSTM call, head
on the last position), "rss_mb": resident-memory growth from building the model}}}.

Timing as in engine_bench: median of --reps runs, each at least --min-time seconds after one
untimed warm-up call. Run with Debian's interpreter (torch 1.13, OpenBLAS):
  /usr/bin/python3 bench/pytorch_decode.py --threads 2 > pytorch.json
"""
import argparse
import json
import os
import statistics
import sys
import time

torch = None  # imported in main(), after the BLAS thread count is set

SHAPES = {  # name: (V, E, H, L); keep in sync with engine_bench.cc
    "char3x512": (65, 512, 512, 3),
    "word2x650": (10000, 650, 650, 2),
    "big4x1024": (32000, 1024, 1024, 4),
}


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def time_per_call(fn, reps, min_time):
    fn()
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        n = 0
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time and n >= 2:
                break
        runs.append(elapsed / n)
    return statistics.median(runs)


def make_model(V, E, H, L):
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(V, E)
            self.lstm = torch.nn.LSTM(E, H, L)
            self.head = torch.nn.Linear(H, V)

        def step(self, tokens, state):  # tokens [N]
            x = self.embedding(tokens).unsqueeze(0)  # [1, N, E]
            y, state = self.lstm(x, state)  # [1, N, H]
            return torch.log_softmax(self.head(y[0]), dim=-1), state  # [N, V]

        def prefill(self, prompt, state):  # prompt [T, 1]
            y, state = self.lstm(self.embedding(prompt), state)  # [T, 1, H]
            return torch.log_softmax(self.head(y[-1]), dim=-1), state

    return Model()


def measure(name, V, E, H, L, args):
    rss0 = rss_mb()
    model = make_model(V, E, H, L).eval()
    out = {"decode_tok_s": {}}
    with torch.inference_mode():
        for n in args.batches:
            tokens = torch.randint(0, V, (n,))
            state = [(torch.zeros(L, n, H), torch.zeros(L, n, H))]

            def step():
                _, state[0] = model.step(tokens, state[0])

            sec = time_per_call(step, args.reps, args.min_time)
            out["decode_tok_s"][str(n)] = n / sec
            if n == 1:
                out["step_us_b1"] = sec * 1e6
            print(f"  {name} b{n}: {n / sec:.0f} tok/s", file=sys.stderr)
        prompt = torch.randint(0, V, (args.prompt, 1))

        def prefill():
            model.prefill(prompt, (torch.zeros(L, 1, H), torch.zeros(L, 1, H)))

        out["prefill_tok_s"] = args.prompt / time_per_call(prefill, args.reps, args.min_time)
    out["rss_mb"] = rss_mb() - rss0
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="demo,char3x512,word2x650,big4x1024")
    p.add_argument("--batches", default="1,8,32,64,256")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    p.add_argument("--min-time", type=float, default=0.3)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--prompt", type=int, default=512)
    p.add_argument("--demo-model", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "models", "shakespeare"))
    args = p.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    threads = args.threads or os.cpu_count()
    # OpenBLAS keeps its own thread pool: cap it too, before torch loads it,
    # or "1 thread" PyTorch still multiplies matrices on every core.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(threads)
    global torch
    import torch as torch_module
    torch = torch_module
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    shapes = dict(SHAPES)
    cfg_path = os.path.join(args.demo_model, "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            cfg = json.load(f)
        vocab = len(cfg["tokenizer"]["vocab"]) if cfg["tokenizer"]["type"] == "char" else 256
        shapes["demo"] = (vocab, cfg["embedding_dim"], cfg["hidden_size"], cfg["num_layers"])
    result = {"torch": torch.__version__, "threads": threads, "shapes": {}}
    for name in args.shapes.split(","):
        if name not in shapes:
            print(f"skipping {name} (unknown, or demo model absent)", file=sys.stderr)
            continue
        result["shapes"][name] = measure(name, *shapes[name], args)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
