#!/usr/bin/python3
"""Writes the golden fixtures in tests/models/golden/: small LstmLM packages with
awkward shapes plus PyTorch's log-probs at every step of a few sequences.

    /usr/bin/python3 tools/make_golden.py [--out tests/models/golden]

Each fixture <name>/ holds a package (config.json, model.safetensors, written by
tools/export.py) and golden.json:
  {"name", "reference": "torch float64", "weights_dtype",
   "torch_f32_max_abs_diff": how far PyTorch's own f32 forward is from the f64 one,
   "sequences": [{"start": "zeros" | <index of an earlier sequence whose final
                  state this one continues from>,
                  "text": the UTF-8 text the ids encode,
                  "ids": [T ints],
                  "logprobs": [T rows of V floats, rounded to 1e-6]}]}
Row t of "logprobs" is log_softmax(head(h_top)) after feeding ids[0..t].

The reference runs in float64 on exactly the weights stored in the package
(for BF16/F16 packages: the rounded weights, widened). Weights are PyTorch's
default init scaled up so gates saturate and the log-probs are far from uniform.
Deterministic: fixed seeds, sorted JSON, fixed rounding; re-running rewrites
identical bytes. See tests/models/golden/README.md.
"""
import argparse
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import export_module  # noqa: E402
from lstm_lm import LstmLM  # noqa: E402
from safetensors_io import save_file  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TORCH_DTYPE = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}

_ASCII = list("abcdefghij ")
_UNICODE = list("aeiouéßnst \n.,\"\\'中文字🙂😀€ñüøΩж") + ["\u00a0", "\t"]
# Seeds, vocab, shapes, dtype, weight scales, sequences (length, start).
# start "zeros" or the index of an earlier sequence to continue from.
FIXTURES = [
    dict(name="l1_h13", seed=101, vocab=_ASCII, E=7, H=13, L=1, dtype="f32",
         lstm_scale=3.0, head_scale=12.0, seqs=[(24, "zeros"), (31, "zeros"), (20, 0)]),
    dict(name="l4_e10_h21_unicode", seed=202, vocab=_UNICODE, E=10, H=21, L=4, dtype="f32",
         lstm_scale=3.0, head_scale=14.0, seqs=[(33, "zeros"), (22, "zeros"), (27, 1)]),
    dict(name="l2_e32_h16_unicode", seed=303, vocab=_UNICODE, E=32, H=16, L=2, dtype="f32",
         lstm_scale=3.0, head_scale=12.0, seqs=[(40, "zeros"), (25, 0)]),
    dict(name="l2_h29_bf16", seed=404, vocab=_UNICODE, E=9, H=29, L=2, dtype="bf16",
         lstm_scale=3.0, head_scale=12.0, seqs=[(30, "zeros"), (21, "zeros"), (24, 0)]),
    dict(name="l3_e17_h37_f16", seed=505, vocab=_UNICODE, E=17, H=37, L=3, dtype="f16",
         lstm_scale=3.0, head_scale=12.0, seqs=[(28, "zeros"), (23, 0)]),
    dict(name="byte_l2_h24", seed=606, vocab=None, E=16, H=24, L=2, dtype="f32",
         lstm_scale=3.0, head_scale=12.0, seqs=[(26, "zeros"), (22, 0)]),
    # Projected LSTMs (format_version 2, nn.LSTM(proj_size=P)): E != H != P, and E == P.
    dict(name="proj_l2_e12_h20_p8", seed=707, vocab=_UNICODE, E=12, H=20, P=8, L=2,
         dtype="f32", lstm_scale=3.0, head_scale=12.0,
         seqs=[(30, "zeros"), (22, "zeros"), (25, 0)]),
    dict(name="proj_l3_e6_h14_p6", seed=808, vocab=_ASCII, E=6, H=14, P=6, L=3, dtype="f32",
         lstm_scale=3.0, head_scale=12.0, seqs=[(27, "zeros"), (21, 0)]),
]


class ProjLM(nn.Module):
    """LstmLM with nn.LSTM(proj_size=P): the head reads the projected h."""

    def __init__(self, vocab_size, embedding_dim, hidden_size, num_layers, proj_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers=num_layers,
                            proj_size=proj_size)
        self.head = nn.Linear(proj_size, vocab_size)

    def forward(self, ids, state=None):
        y, state = self.lstm(self.embedding(ids), state)
        return self.head(y), state


def make_lm(V, fx):
    if fx.get("P"):
        return ProjLM(V, fx["E"], fx["H"], fx["L"], fx["P"])
    return LstmLM(V, fx["E"], fx["H"], fx["L"])


def write_proj_package(module, fx, directory, metadata):
    """A format_version 2 package with proj_size (models/FORMAT.md), written
    here rather than by tools/export.py so the fixtures pin the format itself."""
    os.makedirs(directory, exist_ok=True)
    config = {"format": "lstmserve-lm", "format_version": 2, "name": fx["name"],
              "tokenizer": {"type": "char", "vocab": list(fx["vocab"])},
              "embedding_dim": fx["E"], "hidden_size": fx["H"], "num_layers": fx["L"],
              "proj_size": fx["P"]}
    config.update(metadata)
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
        f.write("\n")
    tensors = {k: v.detach().to(_TORCH_DTYPE[fx["dtype"]]) for k, v in module.state_dict().items()}
    save_file(tensors, os.path.join(directory, "model.safetensors"),
              metadata={"format": "pt", "exported_by": "lstmserve tools/make_golden.py"})

# Text the byte model reads: multi-byte characters, so ids split characters.
_BYTE_TEXT = "héllo, wörld! 中文 🙂 ß€ abc \n\"q\" Ωж ñ 😀 end"


def build_module(fx):
    torch.manual_seed(fx["seed"])
    V = 256 if fx["vocab"] is None else len(fx["vocab"])
    m = make_lm(V, fx).eval()
    with torch.no_grad():
        for name, p in m.lstm.named_parameters():
            p.mul_(fx["lstm_scale"])
        m.head.weight.mul_(fx["head_scale"])
        m.head.bias.mul_(fx["head_scale"])
        # Round through the package dtype so the reference sees the stored weights.
        for p in m.parameters():
            p.copy_(p.to(_TORCH_DTYPE[fx["dtype"]]).to(torch.float32))
    return m


def make_sequences(fx, gen):
    """[(text, ids, start)] for the fixture's sequence plan."""
    out = []
    for k, (length, start) in enumerate(fx["seqs"]):
        if fx["vocab"] is None:
            data = _BYTE_TEXT.encode("utf-8")
            off = (7 * k) % (len(data) - length)
            ids = list(data[off:off + length])
            text = bytes(ids).decode("utf-8", errors="replace")
        else:
            ids = torch.randint(len(fx["vocab"]), (length,), generator=gen).tolist()
            text = "".join(fx["vocab"][i] for i in ids)
        out.append((text, ids, start))
    return out


def run(module, ids, state):
    """Log-probs [T, V] and the final state for `ids` from `state` (None = zeros)."""
    x = torch.tensor(ids, dtype=torch.long).unsqueeze(1)  # [T, 1]
    with torch.no_grad():
        logits, state = module(x, state)
        return torch.log_softmax(logits[:, 0, :], dim=-1), state


def make_fixture(fx, out_root):
    module = build_module(fx)
    directory = os.path.join(out_root, fx["name"])
    tokenizer = {"type": "byte"} if fx["vocab"] is None else None
    metadata = {"description": "golden test fixture written by tools/make_golden.py "
                               "(random weights)"}
    if fx.get("P"):
        write_proj_package(module, fx, directory, metadata)
    else:
        export_module(module, fx["vocab"], directory, fx["name"], dtype=fx["dtype"],
                      tokenizer=tokenizer, metadata=metadata)
    ref = make_lm(module.embedding.num_embeddings, fx).eval()
    ref.load_state_dict(module.state_dict())
    ref = ref.double()
    gen = torch.Generator().manual_seed(fx["seed"])
    seqs, finals64, finals32 = [], [], []
    f32_diff, lp_min, lp_max_std = 0.0, 0.0, 0.0
    for text, ids, start in make_sequences(fx, gen):
        s64 = None if start == "zeros" else finals64[start]
        s32 = None if start == "zeros" else finals32[start]
        lp64, s64 = run(ref, ids, s64)
        lp32, s32 = run(module, ids, s32)
        finals64.append(s64)
        finals32.append(s32)
        f32_diff = max(f32_diff, (lp64 - lp32.double()).abs().max().item())
        lp_min = min(lp_min, lp64.min().item())
        lp_max_std = max(lp_max_std, lp64.std(dim=-1).max().item())
        seqs.append({"start": start, "text": text, "ids": ids,
                     "logprobs": [[round(v, 6) for v in row] for row in lp64.tolist()]})
    golden = {"name": fx["name"], "reference": "torch float64",
              "weights_dtype": fx["dtype"].upper(),
              "torch_version": torch.__version__.split("a")[0].split("+")[0],
              "torch_f32_max_abs_diff": float(f"{f32_diff:.2e}"), "sequences": seqs}
    with open(os.path.join(directory, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    V = module.embedding.num_embeddings
    print(f"{fx['name']:22s} V={V:3d} E={fx['E']:2d} H={fx['H']:2d} L={fx['L']} "
          f"{fx['dtype']:4s} seqs={[len(s['ids']) for s in seqs]} min logprob={lp_min:.1f} "
          f"max row std={lp_max_std:.2f} torch f32 vs f64={f32_diff:.1e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(_ROOT, "tests", "models", "golden"),
                   help="directory to write the fixtures into (default tests/models/golden)")
    p.add_argument("--only", nargs="*", help="fixture names to write (default: all)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # same reduction order on every run
    for fx in FIXTURES:
        if args.only and fx["name"] not in args.only:
            continue
        make_fixture(fx, args.out)


if __name__ == "__main__":
    main()
