"""A small numpy implementation of models/FORMAT.md: reads a package back and runs it.

This is the project's own reference for the importer's self-check (tools/export.py): it knows
nothing of torch or ONNX, only the package format — config.json, model.safetensors (read here
with numpy), the tokenizers (char, byte, word, sentencepiece through the SentencePiece library)
and the model's equations, computed in float64.

  pkg = Package.load("models/shakespeare")
  ids = pkg.tokenizer.encode("ROMEO:")
  logp = pkg.log_probs(ids)          # [T, V]: log-probabilities of the token after each prefix
"""
import json
import os
import struct

import numpy as np

_DTYPES = {"F32": "<f4", "F16": "<f2"}


class PackageError(ValueError):
    """A package that does not follow models/FORMAT.md (the message names the field/tensor)."""


def read_safetensors(path):
    """{name: float32 ndarray} of a safetensors file (F32, F16, BF16)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise PackageError(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _DTYPES:
            arr = np.frombuffer(data[b:e], dtype=_DTYPES[info["dtype"]]).astype(np.float32)
        else:
            raise PackageError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        out[name] = arr.reshape(info["shape"])
    return out


class CharTokenizer:
    def __init__(self, vocab):
        self.vocab = list(vocab)
        self.index = {c: i for i, c in enumerate(self.vocab)}

    def encode(self, text):
        ids = []
        for pos, ch in enumerate(text):
            if ch not in self.index:
                raise PackageError(f"character {ch!r} at position {pos} is not in the vocabulary")
            ids.append(self.index[ch])
        return ids

    def decode(self, ids):
        return "".join(self.vocab[i] for i in ids)


class ByteTokenizer:
    vocab = None

    def encode(self, text):
        return list(text.encode("utf-8"))

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")


class WordTokenizer:
    """Whitespace-split words per line, each newline the eos token (data.Corpus's convention)."""

    def __init__(self, vocab, eos_token, unk_token=None):
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        if eos_token not in self.index:
            raise PackageError(f"tokenizer.eos_token {eos_token!r} is not in tokenizer.vocab")
        if unk_token is not None and unk_token not in self.index:
            raise PackageError(f"tokenizer.unk_token {unk_token!r} is not in tokenizer.vocab")
        self.eos, self.unk = eos_token, unk_token

    def encode(self, text):
        ids, pos = [], 0
        lines = text.split("\n")
        for n, line in enumerate(lines):
            for word in line.split():
                if word in self.index:
                    ids.append(self.index[word])
                elif self.unk is not None:
                    ids.append(self.index[self.unk])
                else:
                    raise PackageError(f"word {word!r} (word {pos}) is not in the vocabulary")
                pos += 1
            if n + 1 < len(lines):  # every newline ends a line with the eos token
                ids.append(self.index[self.eos])
                pos += 1
        return ids

    def decode(self, ids):
        out = []
        for i in ids:
            w = self.vocab[i]
            if w == self.eos:
                out.append("\n")
            else:
                if out and out[-1] != "\n":
                    out.append(" ")
                out.append(w)
        return "".join(out)


class SentencePieceTokenizer:
    def __init__(self, model_file):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor(model_file=model_file)
        self.vocab = None

    def __len__(self):
        return self.sp.get_piece_size()

    def encode(self, text):
        return self.sp.encode(text)

    def decode(self, ids):
        return self.sp.decode(list(ids))


def make_tokenizer(tok, directory):
    """(tokenizer, V or None) from config.json's "tokenizer" object."""
    kind = tok.get("type")
    if kind == "char":
        return CharTokenizer(tok["vocab"]), len(tok["vocab"])
    if kind == "byte":
        return ByteTokenizer(), 256
    if kind == "word":
        t = WordTokenizer(tok["vocab"], tok["eos_token"], tok.get("unk_token"))
        return t, len(t.vocab)
    if kind == "sentencepiece":
        path = os.path.join(directory, tok["model_file"])
        if os.path.basename(tok["model_file"]) != tok["model_file"]:
            raise PackageError(f"tokenizer.model_file {tok['model_file']!r} is not a plain name")
        t = SentencePieceTokenizer(path)
        return t, len(t)
    raise PackageError(f"tokenizer.type {kind!r} is not char, byte, word or sentencepiece")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class Package:
    """A package read back from disk: config, float64 weights, tokenizer. Not thread-safe."""

    def __init__(self, config, tensors, tokenizer):
        self.config, self.t, self.tokenizer = config, tensors, tokenizer

    @classmethod
    def load(cls, directory):
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        if cfg.get("format") != "lstmserve-lm" or cfg.get("format_version") not in (1, 2):
            raise PackageError("config.json: format must be lstmserve-lm, format_version 1 or 2")
        tokenizer, V = make_tokenizer(cfg["tokenizer"], directory)
        E, H, L = cfg["embedding_dim"], cfg["hidden_size"], cfg["num_layers"]
        P = cfg.get("proj_size") or 0
        if P and cfg["format_version"] < 2:
            raise PackageError("config.json: proj_size needs format_version 2")
        R = P or H  # what the recurrence and the head see
        tensors = read_safetensors(os.path.join(directory, "model.safetensors"))
        want = {"embedding.weight": [V, E], "head.weight": [V, R], "head.bias": [V]}
        for k in range(L):
            want[f"lstm.weight_ih_l{k}"] = [4 * H, E if k == 0 else R]
            want[f"lstm.weight_hh_l{k}"] = [4 * H, R]
            want[f"lstm.bias_ih_l{k}"] = [4 * H]
            want[f"lstm.bias_hh_l{k}"] = [4 * H]
            if P:
                want[f"lstm.weight_hr_l{k}"] = [P, H]
        if set(tensors) != set(want):
            raise PackageError(f"model.safetensors: missing {sorted(set(want) - set(tensors))}, "
                               f"unexpected {sorted(set(tensors) - set(want))}")
        for name, shape in want.items():
            if list(tensors[name].shape) != shape:
                raise PackageError(f"model.safetensors: {name} has shape "
                                   f"{list(tensors[name].shape)}, expected {shape}")
            if not np.all(np.isfinite(tensors[name])):
                raise PackageError(f"model.safetensors: {name} is not finite")
        t = {k: v.astype(np.float64) for k, v in tensors.items()}
        return cls(cfg, t, tokenizer)

    def zero_state(self):
        H, L = self.config["hidden_size"], self.config["num_layers"]
        P = self.config.get("proj_size") or 0
        return [np.zeros(P or H) for _ in range(L)], [np.zeros(H) for _ in range(L)]

    def step(self, x, state):
        """Feeds token `x` to `state` ((h, c) lists, updated in place); returns [V] log-probs."""
        cfg, t = self.config, self.t
        H, L = cfg["hidden_size"], cfg["num_layers"]
        P = cfg.get("proj_size") or 0
        h, c = state
        inp = t["embedding.weight"][x]
        for k in range(L):
            # [4H] gates in PyTorch's order i, f, g, o
            g = (t[f"lstm.weight_ih_l{k}"] @ inp + t[f"lstm.bias_ih_l{k}"]
                 + t[f"lstm.weight_hh_l{k}"] @ h[k] + t[f"lstm.bias_hh_l{k}"])
            i, f, gg, o = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
            c[k] = _sigmoid(f) * c[k] + _sigmoid(i) * np.tanh(gg)
            hk = _sigmoid(o) * np.tanh(c[k])
            h[k] = t[f"lstm.weight_hr_l{k}"] @ hk if P else hk  # [P] or [H]
            inp = h[k]
        z = t["head.weight"] @ inp + t["head.bias"]  # [V]
        m = z.max()
        return z - m - np.log(np.exp(z - m).sum())

    def log_probs(self, ids):
        """[T, V] float64: log-softmax of the head after each token of `ids` (zero start state)."""
        state = self.zero_state()
        out = [self.step(x, state) for x in ids]
        return np.array(out).reshape(len(ids), -1)

    def sample(self, prompt, n, temperature=0.8, seed=7):
        """`prompt` continued by `n` sampled tokens (text)."""
        rng = np.random.RandomState(seed)
        ids = self.tokenizer.encode(prompt)
        state = self.zero_state()
        for x in ids:
            lp = self.step(x, state)
        out = []
        for _ in range(n):
            p = np.exp((lp - lp.max()) / temperature)
            x = int(rng.choice(len(p), p=p / p.sum()))
            out.append(x)
            lp = self.step(x, state)
        return prompt + self.tokenizer.decode(out)


def evaluate_text(pkg, text):
    """(nats/token, nats/char) of `text` read as one stream from the zero state: the first
    token is predicted from nothing, so it is left out of both counts."""
    ids = pkg.tokenizer.encode(text)
    state, total = pkg.zero_state(), 0.0
    lp = pkg.step(ids[0], state)
    for x in ids[1:]:
        total += -lp[x]
        lp = pkg.step(x, state)
    chars = len(text) - len(pkg.tokenizer.decode(ids[:1]))
    return total / (len(ids) - 1), total / chars


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="Samples from a package with the numpy reference, "
                                 "or (--eval FILE) measures its loss on the last "
                                 "--last-fraction of FILE (the held-out split of train.py).")
    ap.add_argument("package")
    ap.add_argument("--eval", help="UTF-8 text file to measure the loss on")
    ap.add_argument("--last-fraction", type=float, default=0.1)
    ap.add_argument("--prompt", default="ROMEO:\n")
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    if a.eval:
        with open(a.eval, encoding="utf-8") as f:
            full = f.read()
        held = full[len(full) - int(len(full) * a.last_fraction):]
        per_token, per_char = evaluate_text(Package.load(a.package), held)
        print(f"{a.eval}: last {len(held):,} characters: {per_token:.4f} nats/token, "
              f"{per_char:.4f} nats/char")
    else:
        print(Package.load(a.package).sample(a.prompt, a.tokens, a.temperature, a.seed))
