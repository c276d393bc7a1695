#!/usr/bin/python3
"""Writes a random word-level model package (format_version 2) for serving
benchmarks: vocabulary "<eos>", "<unk>", "w2" ... "w{V-1}", PyTorch's default
initialization (seeded), f32. Speed does not depend on the weights.

    /usr/bin/python3 bench/word_model_package.py --out /tmp/word2x650 \\
        --vocab 10000 --embedding 650 --hidden 650 --layers 2
"""
import argparse
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from safetensors_io import save_file  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--vocab", type=int, default=10000)
    p.add_argument("--embedding", type=int, default=650)
    p.add_argument("--hidden", type=int, default=650)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--name", default="word2x650")
    args = p.parse_args()
    torch.manual_seed(1)
    V, E, H, L = args.vocab, args.embedding, args.hidden, args.layers
    modules = {"embedding": nn.Embedding(V, E), "lstm": nn.LSTM(E, H, num_layers=L),
               "head": nn.Linear(H, V)}
    tensors = {f"{name}.{k}": v.detach().contiguous()
               for name, m in modules.items() for k, v in m.state_dict().items()}
    os.makedirs(args.out, exist_ok=True)
    vocab = ["<eos>", "<unk>"] + [f"w{i}" for i in range(2, V)]
    config = {"format": "lstmserve-lm", "format_version": 2, "name": args.name,
              "tokenizer": {"type": "word", "vocab": vocab, "eos_token": "<eos>",
                            "unk_token": "<unk>"},
              "embedding_dim": E, "hidden_size": H, "num_layers": L,
              "description": "random weights (bench/word_model_package.py), for benchmarks"}
    with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)
    save_file(tensors, os.path.join(args.out, "model.safetensors"))


if __name__ == "__main__":
    main()
