"""What every importer produces (a Model), how it becomes a package, and the self-check.

A Model holds the package's tensors under their FORMAT.md names (numpy float32, PyTorch layout
and gate order i, f, g, o), the structural fields, the tokenizer, and `reference`: a function
that runs the *source* framework's own forward on token ids (PyTorch modules, or the ONNX graph
evaluated as ONNX specifies it). write_package writes into a temporary directory, reads it back
with tools/lstm_reference.py, compares log-probs on a probe text against `reference`, and only
then moves the files into place.
"""
import dataclasses
import json
import os
import random
import shutil
import tempfile

import numpy as np

import lstm_reference

TOLERANCE = 1e-4  # max |log-prob difference| accepted by the self-check (f32 export)

# Fields the importer computes; metadata may not set them.
STRUCTURAL = ("format", "format_version", "name", "tokenizer", "embedding_dim", "hidden_size",
              "num_layers", "proj_size")


class ImportFailure(Exception):
    """An import that cannot proceed; the message says what and where. Exit status 1."""


@dataclasses.dataclass
class Model:
    tensors: dict            # FORMAT.md name -> float32 ndarray
    vocab_size: int
    embedding_dim: int
    hidden_size: int
    num_layers: int
    proj_size: int = 0
    reference: object = None  # ids (list of int) -> [T, V] float64 log-probs of the source
    notes: list = dataclasses.field(default_factory=list)


def expected_shapes(m):
    V, E, H, L, P = m.vocab_size, m.embedding_dim, m.hidden_size, m.num_layers, m.proj_size
    R = P or H
    want = {"embedding.weight": (V, E), "head.weight": (V, R), "head.bias": (V,)}
    for k in range(L):
        want[f"lstm.weight_ih_l{k}"] = (4 * H, E if k == 0 else R)
        want[f"lstm.weight_hh_l{k}"] = (4 * H, R)
        want[f"lstm.bias_ih_l{k}"] = (4 * H,)
        want[f"lstm.bias_hh_l{k}"] = (4 * H,)
        if P:
            want[f"lstm.weight_hr_l{k}"] = (P, H)
    return want


def check_model(m):
    want = expected_shapes(m)
    if set(m.tensors) != set(want):
        raise ImportFailure(f"internal: tensors {sorted(m.tensors)} != {sorted(want)}")
    for name, shape in want.items():
        if tuple(m.tensors[name].shape) != shape:
            raise ImportFailure(f"{name}: shape {list(m.tensors[name].shape)}, the format needs "
                                f"{list(shape)}")


def probe_text(tokenizer_cfg, tokenizer, length=24, seed=7):
    """A short text made of the vocabulary (deterministic), to run through both sides."""
    rng = random.Random(seed)
    kind = tokenizer_cfg["type"]
    if kind == "char":
        return "".join(rng.choice(tokenizer_cfg["vocab"]) for _ in range(length))
    if kind == "byte":
        return "".join(rng.choice("abcdefgh ij\nKLM,.é") for _ in range(length))
    if kind == "word":
        vocab = [w for w in tokenizer_cfg["vocab"] if w != tokenizer_cfg.get("unk_token")]
        words = [rng.choice(vocab) for _ in range(length)]
        return " ".join("\n" if w == tokenizer_cfg["eos_token"] else w for w in words)
    n = len(tokenizer)
    ids = [rng.randrange(n) for _ in range(length)]
    return tokenizer.decode(ids)


def write_package(model, tokenizer_cfg, source_encode, out_dir, name, metadata=None,
                  dtype="f32", extra_files=None, format_version=None, tolerance=TOLERANCE):
    """Writes `model` as a package in out_dir after the self-check; returns (config, report).

    source_encode: text -> ids with the source's own vocabulary (checked to agree with the
    package tokenizer). extra_files: {name in package: source path} (the SentencePiece model).
    On a failed check nothing is left in out_dir and ImportFailure says by how much.
    """
    from safetensors_io import save_file  # torch only for writing bf16/f16
    import torch

    check_model(model)
    metadata = dict(metadata or {})
    clash = sorted(k for k in metadata if k in STRUCTURAL)
    if clash:
        raise ImportFailure(f"metadata may not set structural field(s) {clash}")
    uses_v2 = bool(model.proj_size) or tokenizer_cfg["type"] in ("word", "sentencepiece")
    config = {
        "format": "lstmserve-lm",
        "format_version": format_version or (2 if uses_v2 else 1),
        "name": name,
        "tokenizer": tokenizer_cfg,
        "embedding_dim": model.embedding_dim,
        "hidden_size": model.hidden_size,
        "num_layers": model.num_layers,
    }
    if model.proj_size:
        config["proj_size"] = model.proj_size
    config.update(metadata)
    dt = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dtype]
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        with open(os.path.join(tmp, "config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
            f.write("\n")
        save_file({k: torch.from_numpy(np.ascontiguousarray(v)).to(dt)
                   for k, v in model.tensors.items()},
                  os.path.join(tmp, "model.safetensors"),
                  metadata={"format": "pt", "exported_by": "lstmserve tools/export.py"})
        for dst, src in (extra_files or {}).items():
            shutil.copyfile(src, os.path.join(tmp, dst))
        report = self_check(tmp, model, source_encode, tolerance)
        os.makedirs(out_dir, exist_ok=True)
        stale = os.path.join(out_dir, "tokenizer.model")
        if os.path.exists(stale) and not os.path.exists(os.path.join(tmp, "tokenizer.model")):
            os.remove(stale)
        for f in os.listdir(tmp):
            os.replace(os.path.join(tmp, f), os.path.join(out_dir, f))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return config, report


def self_check(directory, model, source_encode, tolerance):
    """Reads the package back with lstm_reference and compares it with model.reference."""
    try:
        pkg = lstm_reference.Package.load(directory)
    except (lstm_reference.PackageError, KeyError, ValueError) as e:
        raise ImportFailure(f"self-check: the written package does not load: {e}") from e
    text = probe_text(pkg.config["tokenizer"], pkg.tokenizer)
    ids = pkg.tokenizer.encode(text)
    src_ids = list(source_encode(text))
    if src_ids != list(ids):
        raise ImportFailure(f"self-check: the package tokenizer encodes the probe {text!r} as "
                            f"{list(ids)}, the source vocabulary as {src_ids}; nothing written")
    if pkg.tokenizer.decode(ids) != text and pkg.config["tokenizer"]["type"] != "word":
        raise ImportFailure(f"self-check: decode(encode({text!r})) = {pkg.tokenizer.decode(ids)!r}")
    ours = pkg.log_probs(ids)
    theirs = np.asarray(model.reference(list(ids)), dtype=np.float64).reshape(ours.shape)
    diff = float(np.max(np.abs(ours - theirs)))
    if not diff <= tolerance:
        raise ImportFailure(f"self-check failed: the package's log-probs differ from the source "
                            f"model's by up to {diff:.3g} (limit {tolerance:g}) on a probe of "
                            f"{len(ids)} tokens; nothing written")
    return {"probe_tokens": len(ids), "max_abs_diff": diff}
