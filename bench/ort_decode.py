#!/usr/bin/python3
"""ONNX Runtime baseline for bench/engine_bench.cc: step-by-step decode of the same model as
bench/pytorch_decode.py (nn.Embedding + nn.LSTM + nn.Linear + log_softmax, f32, random weights,
seed 0), exported to ONNX, one decode step per session.run with the h/c states as graph inputs
and outputs, fed back.

The exported graph: tokens [T, N] int64, h0 [L, N, H], c0 [L, N, H] -> logprobs [N, V] (head on
the last position only), h1, c1; T and N are dynamic axes. Decode runs it with T=1; prefill with
T=--prompt, N=1 (as pytorch_decode.py's prefill).

Each decode figure is the faster of two ways of calling the session, both timed:
  run:        session.run(None, {name: numpy array}); the returned states are fed back;
  io_binding: two prebuilt IOBindings over preallocated OrtValues (states ping-pong between
              two buffers, so nothing is allocated per step), run_with_iobinding.
Session: intra_op_num_threads = --threads, inter_op_num_threads = 1, sequential execution,
ORT_ENABLE_ALL graph optimizations, CPUExecutionProvider.

Prints JSON in pytorch_decode.py's schema, so engine_bench --pytorch_json can read it:
{"onnxruntime": version, "providers": [...], "torch": exporter's version, "threads": n,
 "shapes": {name: {"decode_tok_s": {batch: tok/s}, "step_us_b1": µs, "prefill_tok_s": tok/s,
 "rss_mb": MB, "decode_tok_s_run": {...}, "decode_tok_s_io_binding": {...},
 "decode_method": {batch: "run" | "io_binding"}, "onnx_source": "exported" | path,
 "max_abs_diff_vs_torch": float}}}
(engine_bench labels whatever JSON it reads "pytorch f32" and prints the "torch" version in its
header: when it reads this file, those mean the ONNX Runtime figures and the exporter's torch.)

Timing as in engine_bench: median of --reps runs, each at least --min-time seconds after one
untimed warm-up call.

The model is exported in this process with torch.onnx.export(dynamo=False where the installed
torch knows that argument, opset 17). If the export fails and --fallback-onnx DIR holds
<shape>.onnx (made with --export-only), that file is used instead. --export-only writes
<shape>.onnx into --onnx-dir and needs only torch (no onnxruntime): bench/device/package.sh uses
it with --weight-levels 16 (weights rounded to 16 values, so the file compresses; speed does not
depend on the values).
  python3 bench/ort_decode.py --threads 2 --shapes char3x512 > ort.json
"""
import argparse
import inspect
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The shapes and the timing method are pytorch_decode.py's (which imports torch only in main()).
from pytorch_decode import SHAPES, rss_mb, time_per_call  # noqa: E402

OPSET = 17
INPUTS = ("tokens", "h0", "c0")
OUTPUTS = ("logprobs", "h1", "c1")


# ---- Export (torch only) ------------------------------------------------------------------

def make_model(torch, V, E, H, L, weight_levels):
    """The model of pytorch_decode.py, as one graph: (tokens [T, N], h0, c0) -> (logprobs of
    the last position [N, V], h1, c1)."""

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(V, E)
            self.lstm = torch.nn.LSTM(E, H, L)
            self.head = torch.nn.Linear(H, V)

        def forward(self, tokens, h0, c0):
            y, (h1, c1) = self.lstm(self.embedding(tokens), (h0, c0))  # y [T, N, H]
            return torch.log_softmax(self.head(y[-1]), dim=-1), h1, c1  # [N, V]

    torch.manual_seed(0)
    model = Model().eval()
    if weight_levels:
        with torch.no_grad():
            for p in model.parameters():
                scale = p.abs().max() / (weight_levels / 2)
                p.copy_(torch.round(p / scale).clamp(-weight_levels / 2, weight_levels / 2 - 1)
                        * scale)
    return model


def export(torch, model, L, H, path):
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: dynamic_axes, one ONNX LSTM per layer
    args = (torch.zeros(2, 2, dtype=torch.int64), torch.zeros(L, 2, H), torch.zeros(L, 2, H))
    batch = {1: "N"}
    torch.onnx.export(
        model, args, path, input_names=list(INPUTS), output_names=list(OUTPUTS),
        dynamic_axes={"tokens": {0: "T", 1: "N"}, "h0": batch, "c0": batch,
                      "logprobs": {0: "N"}, "h1": batch, "c1": batch},
        opset_version=OPSET, do_constant_folding=True, **kwargs)


# ---- ONNX Runtime --------------------------------------------------------------------------

def make_session(ort, path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def run_stepper(np, sess, tokens, L, H):
    """session.run with numpy arrays; returns the step function."""
    N = tokens.shape[1]
    state = [np.zeros((L, N, H), np.float32), np.zeros((L, N, H), np.float32)]

    def step():
        _, state[0], state[1] = sess.run(None, {"tokens": tokens, "h0": state[0],
                                                "c0": state[1]})
    return step


def io_binding_stepper(np, ort, sess, tokens, L, H, V):
    """Two IOBindings over preallocated buffers; states ping-pong between them."""
    N = tokens.shape[1]
    bufs = [[np.zeros((L, N, H), np.float32) for _ in range(2)] for _ in range(2)]  # [side][h,c]
    logprobs = np.zeros((N, V), np.float32)
    vals = [[ort.OrtValue.ortvalue_from_numpy(a) for a in side] for side in bufs]
    tok = ort.OrtValue.ortvalue_from_numpy(tokens)
    out = ort.OrtValue.ortvalue_from_numpy(logprobs)
    bindings = []
    for src, dst in ((0, 1), (1, 0)):
        b = sess.io_binding()
        b.bind_ortvalue_input("tokens", tok)
        b.bind_ortvalue_input("h0", vals[src][0])
        b.bind_ortvalue_input("c0", vals[src][1])
        b.bind_ortvalue_output("logprobs", out)
        b.bind_ortvalue_output("h1", vals[dst][0])
        b.bind_ortvalue_output("c1", vals[dst][1])
        bindings.append(b)
    turn = [0]

    def step():
        sess.run_with_iobinding(bindings[turn[0]])
        turn[0] ^= 1
    step.keep_alive = (bufs, logprobs, vals, tok, out)
    return step


def measure(np, ort, sess, name, V, E, H, L, args, rss0):
    out = {"decode_tok_s": {}, "decode_tok_s_run": {}, "decode_tok_s_io_binding": {},
           "decode_method": {}}
    rng = np.random.default_rng(2)
    for n in args.batches:
        tokens = rng.integers(0, V, (1, n), dtype=np.int64)
        sec_run = time_per_call(run_stepper(np, sess, tokens, L, H), args.reps, args.min_time)
        sec_io = time_per_call(io_binding_stepper(np, ort, sess, tokens, L, H, V), args.reps,
                               args.min_time)
        sec = min(sec_run, sec_io)
        key = str(n)
        out["decode_tok_s_run"][key] = n / sec_run
        out["decode_tok_s_io_binding"][key] = n / sec_io
        out["decode_method"][key] = "run" if sec_run <= sec_io else "io_binding"
        out["decode_tok_s"][key] = n / sec
        if n == 1:
            out["step_us_b1"] = sec * 1e6
        print(f"  {name} b{n}: {n / sec:.0f} tok/s ({out['decode_method'][key]}; run "
              f"{n / sec_run:.0f}, io_binding {n / sec_io:.0f})", file=sys.stderr)
    prompt = rng.integers(0, V, (args.prompt, 1), dtype=np.int64)
    zeros = np.zeros((L, 1, H), np.float32)

    def prefill():
        sess.run(None, {"tokens": prompt, "h0": zeros, "c0": zeros})

    out["prefill_tok_s"] = args.prompt / time_per_call(prefill, args.reps, args.min_time)
    out["rss_mb"] = rss_mb() - rss0
    return out


def max_abs_diff(np, torch, model, sess, L, H, V):
    """One decode step at N=8 from a random state: ONNX Runtime against torch."""
    rng = np.random.default_rng(3)
    feeds = {"tokens": rng.integers(0, V, (1, 8), dtype=np.int64),
             "h0": rng.standard_normal((L, 8, H)).astype(np.float32),
             "c0": rng.standard_normal((L, 8, H)).astype(np.float32)}
    got = sess.run(None, feeds)
    with torch.no_grad():
        want = model(*(torch.from_numpy(feeds[k]) for k in INPUTS))
    return max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="char3x512")
    p.add_argument("--batches", default="1,8,32,64,256")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = all cores)")
    p.add_argument("--min-time", type=float, default=0.3)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--prompt", type=int, default=512)
    p.add_argument("--onnx-dir", default="", help="where exported models go (default: a temp dir)")
    p.add_argument("--fallback-onnx", default="",
                   help="dir of <shape>.onnx files to use when the export fails")
    p.add_argument("--export-only", action="store_true",
                   help="write <shape>.onnx into --onnx-dir and exit (needs torch, not ORT)")
    p.add_argument("--weight-levels", type=int, default=0,
                   help="round weights to this many values (0 = keep; for --export-only)")
    args = p.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    threads = args.threads or os.cpu_count()
    for name in args.shapes.split(","):
        if name not in SHAPES:
            sys.exit(f"ort_decode.py: unknown shape {name!r}; known: {', '.join(SHAPES)}")

    ort = None
    if not args.export_only:
        try:
            import onnxruntime as ort
        except ImportError as e:
            sys.exit(f"ort_decode.py: onnxruntime is not importable by {sys.executable} ({e}); "
                     "no ONNX Runtime figures")
    import numpy as np
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError as e:
        torch = None
        if args.export_only or not args.fallback_onnx:
            sys.exit(f"ort_decode.py: torch is not importable ({e}) and there is no "
                     "--fallback-onnx: cannot make the ONNX model")

    tmp = None if args.onnx_dir else tempfile.TemporaryDirectory(prefix="ort_decode.")
    onnx_dir = args.onnx_dir or tmp.name
    os.makedirs(onnx_dir, exist_ok=True)
    result = {"threads": threads, "opset": OPSET, "shapes": {}}
    if ort:
        result["onnxruntime"] = ort.__version__
        result["providers"] = ort.get_available_providers()
    if torch:  # engine_bench reads "torch" as a string: leave it out rather than null
        result["torch"] = torch.__version__
    for name in args.shapes.split(","):
        V, E, H, L = SHAPES[name]
        path, model, source = os.path.join(onnx_dir, f"{name}.onnx"), None, "exported"
        if torch is not None:
            try:
                model = make_model(torch, V, E, H, L, args.weight_levels)
                export(torch, model, L, H, path)
                print(f"exported {path} ({os.path.getsize(path) / 2**20:.1f} MiB) with torch "
                      f"{torch.__version__}", file=sys.stderr)
            except Exception as e:  # any exporter failure: try the fallback file
                print(f"ort_decode.py: export of {name} failed: {type(e).__name__}: {e}",
                      file=sys.stderr)
                model = None
        if args.export_only:
            if model is None:
                sys.exit(1)
            continue
        if model is None:
            path = os.path.join(args.fallback_onnx, f"{name}.onnx")
            source = path
            if not args.fallback_onnx or not os.path.exists(path):
                print(f"ort_decode.py: no ONNX model for {name}; skipped", file=sys.stderr)
                continue
            print(f"using the fallback model {path}", file=sys.stderr)
        rss0 = rss_mb()
        sess = make_session(ort, path, threads)
        result["providers_used"] = sess.get_providers()
        r = measure(np, ort, sess, name, V, E, H, L, args, rss0)
        r["onnx_source"] = source
        if model is not None:
            r["max_abs_diff_vs_torch"] = max_abs_diff(np, torch, model, sess, L, H, V)
        result["shapes"][name] = r
    if args.export_only:
        return
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
