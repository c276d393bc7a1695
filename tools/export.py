#!/usr/bin/python3
"""Exports a trained model to an lstmserve package (config.json + model.safetensors).

Sources:
  --checkpoint OUT/best.pt     a checkpoint written by tools/train.py
  (from Python) export_module(module, vocab, out_dir, name=...) for any LstmLM-shaped module
                               (attributes embedding, lstm, head; see tools/lstm_lm.py).

The C++ side never reads pickle: this tool is the bridge. See models/FORMAT.md.
Run with Debian's interpreter: /usr/bin/python3 tools/export.py --help
"""
import argparse
import json
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstm_lm import LstmLM  # noqa: E402
from safetensors_io import save_file  # noqa: E402

_DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def state_dict_for_package(module):
    """The package's tensors: the module's state_dict minus anything else."""
    sd = module.state_dict()
    keep = {k: v for k, v in sd.items()
            if k.startswith(("embedding.", "lstm.", "head."))}
    return keep


def export_module(module, vocab, out_dir, name, dtype="f32", metadata=None, tokenizer=None):
    """Writes `module` (embedding/lstm/head) as a package in `out_dir`.

    vocab: list of single-code-point strings (char tokenizer), or None with
    tokenizer={"type": "byte"}.
    """
    lstm = module.lstm
    if lstm.bidirectional or lstm.proj_size or not lstm.bias or lstm.batch_first:
        raise ValueError("only unidirectional, biased, seq-first nn.LSTM without projection "
                         "is supported")
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v.detach().to(_DTYPES[dtype]) for k, v in state_dict_for_package(module).items()}
    if tokenizer is None:
        for i, ch in enumerate(vocab):
            if len(ch) != 1:
                raise ValueError(f"vocab[{i}] = {ch!r} is not exactly one code point")
        tokenizer = {"type": "char", "vocab": list(vocab)}
    config = {
        "format": "lstmserve-lm",
        "format_version": 1,
        "name": name,
        "tokenizer": tokenizer,
        "embedding_dim": module.embedding.embedding_dim,
        "hidden_size": lstm.hidden_size,
        "num_layers": lstm.num_layers,
    }
    config.update(metadata or {})
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
        f.write("\n")
    save_file(tensors, os.path.join(out_dir, "model.safetensors"),
              metadata={"format": "pt", "exported_by": "lstmserve tools/export.py"})
    return config


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="best.pt or checkpoint.pt from train.py")
    p.add_argument("--out", required=True, help="package directory to write")
    p.add_argument("--name", required=True, help="model name (config.json \"name\")")
    p.add_argument("--dtype", choices=sorted(_DTYPES), default="f32",
                   help="weight dtype in the package (default f32)")
    args = p.parse_args(argv)
    ck = torch.load(args.checkpoint, map_location="cpu")
    a = ck["args"]
    module = LstmLM(len(ck["vocab"]), a["embedding_dim"], a["hidden_size"], a["num_layers"])
    module.load_state_dict(ck["model"])
    params = sum(p.numel() for p in module.parameters())
    metadata = {
        "corpus": ck.get("corpus"),
        "corpus_chars": ck.get("corpus_chars"),
        "validation_fraction": a["val_fraction"],
        "validation_loss_nats_per_char": round(ck.get("val_loss", ck.get("best_val", 0.0)), 4),
        "epochs_trained": ck["epoch"],
        "training_seconds": round(ck["train_seconds"]),
        "training_machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
        "parameters": params,
        "training": {k: a[k] for k in ("dropout", "seq_len", "batch_size", "lr", "lr_final",
                                       "epochs", "clip", "seed")},
        "history": ck["history"],
    }
    cfg = export_module(module, ck["vocab"], args.out, args.name, args.dtype, metadata)
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    print(f"wrote {args.out}: {cfg['num_layers']}x{cfg['hidden_size']} LSTM, V={len(ck['vocab'])}, "
          f"{params:,} parameters, model.safetensors {size:,} bytes")


if __name__ == "__main__":
    main()
