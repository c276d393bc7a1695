"""PyTorch sources: a tools/train.py checkpoint, a bare state_dict, or a whole pickled module.

Names: --map embedding=NAME,lstm=NAME,head=NAME, else train.py's (embedding, lstm, head) or
word_language_model's (encoder, rnn, decoder); `module.` (DataParallel/DDP) and `_orig_mod.`
(torch.compile) prefixes are stripped. Every tensor of the source must end up in the package.
The reference forward is PyTorch's own: the module's submodules when a module was given (its
nn.LSTM with its own batch_first), else nn.Embedding/nn.LSTM/nn.Linear loaded strictly from the
source tensors.
"""
import pickle
import sys

import numpy as np
import torch
from torch import nn

from importers.package import ImportFailure, Model

KNOWN_NAMES = ({"embedding": "embedding", "lstm": "lstm", "head": "head"},
               {"embedding": "encoder", "lstm": "rnn", "head": "decoder"})
PREFIXES = ("module.", "_orig_mod.")


def parse_map(text):
    """'embedding=enc,lstm=rnn,head=out' -> dict (all three required)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, val = part.partition("=")
        if key not in ("embedding", "lstm", "head") or not val:
            raise ImportFailure(f"--map: {part!r} is not embedding=NAME, lstm=NAME or head=NAME")
        out[key] = val
    missing = {"embedding", "lstm", "head"} - set(out)
    if missing:
        raise ImportFailure(f"--map: {sorted(missing)} not given (all three are needed)")
    return out


class _PlainDataUnpickler(pickle.Unpickler):
    """weights_only's allow-list of globals (tensors, storages, dtypes, OrderedDict) over Python's
    full opcode set: torch 1.13's weights_only reader refuses floats (opcode BINFLOAT), which every
    train.py checkpoint holds (its loss history). Anything else is refused; no code runs."""

    def find_class(self, module, name):
        allowed = torch._weights_only_unpickler._get_allowed_globals()
        key = f"{module}.{name}"
        if key not in allowed:
            raise pickle.UnpicklingError(f"{key} is not a tensor or plain data")
        return allowed[key]


class _PlainDataPickle:
    """A pickle_module for torch.serialization._load: its Unpickler."""
    Unpickler = _PlainDataUnpickler


def _load_plain_data(path):
    """torch.load of a zip-format file through _PlainDataUnpickler. (torch 1.13's torch.load
    ignores its pickle_module argument unless weights_only, hence its _load.) Raises
    pickle.UnpicklingError on anything but tensors and plain data, or another format."""
    from torch import serialization
    with open(path, "rb") as f:
        if not serialization._is_zipfile(f):
            raise pickle.UnpicklingError(f"{path} is not in torch's zip format")
        with serialization._open_zipfile_reader(f) as zf:
            return serialization._load(zf, "cpu", _PlainDataPickle, encoding="utf-8")


def load_checkpoint(path, code_dir=None):
    """(object, how) from torch.load: weights_only first, then tensors and plain data through
    weights_only's allow-list, full unpickling (runs code) only if both refuse."""
    if code_dir:
        sys.path.insert(0, code_dir)
    try:
        return torch.load(path, map_location="cpu", weights_only=True), "weights_only"
    except pickle.UnpicklingError:
        pass
    try:
        return _load_plain_data(path), "weights_only allow-list, every pickle opcode (no code run)"
    except pickle.UnpicklingError:
        pass  # a whole module (or other objects): needs real unpickling
    try:
        return torch.load(path, map_location="cpu"), "unpickled (ran the file's code)"
    except (AttributeError, ModuleNotFoundError) as e:
        raise ImportFailure(f"--checkpoint {path}: unpickling needs the model's class definition "
                            f"({e}); pass --code-dir DIR with the directory that defines it") from e


def _strip_prefixes(sd):
    changed = True
    while changed and sd:
        changed = False
        for p in PREFIXES:
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
    return sd


def _unwrap(module):
    while True:
        if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            module = module.module
        elif hasattr(module, "_orig_mod") and isinstance(module._orig_mod, nn.Module):
            module = module._orig_mod
        else:
            return module


def _pick_names(keys, names):
    if names:
        return names
    for cand in KNOWN_NAMES:
        if any(k.startswith(cand["lstm"] + ".weight_ih_l0") for k in keys) and any(
                k.startswith(cand["embedding"] + ".") for k in keys):
            return cand
    raise ImportFailure(
        "cannot find the embedding/LSTM/head: the tensors are "
        f"{sorted(keys)[:12]}{' ...' if len(keys) > 12 else ''}; neither train.py's "
        "(embedding, lstm, head) nor word_language_model's (encoder, rnn, decoder) names; "
        "pass --map embedding=NAME,lstm=NAME,head=NAME")


def _np(t):
    return t.detach().to(torch.float32).cpu().numpy().copy()


def _get_sub(module, dotted):
    m = module
    for part in dotted.split("."):
        if not hasattr(m, part):
            raise ImportFailure(f"the module has no submodule {dotted!r} (--map)")
        m = getattr(m, part)
    return m


def convert(sd, names, module=None, source="checkpoint"):
    """Model from a state_dict (already prefix-stripped) and the three names."""
    sd = {k: v for k, v in sd.items()}
    used = set()
    en, ln, hn = names["embedding"], names["lstm"], names["head"]

    def take(key, what):
        if key not in sd:
            raise ImportFailure(f"{source}: tensor {key!r} ({what}) is missing")
        used.add(key)
        return sd[key]

    emb = take(f"{en}.weight", "embedding table")
    if emb.dim() != 2:
        raise ImportFailure(f"{source}: {en}.weight has shape {list(emb.shape)}, not [V, E]")
    V, E = emb.shape
    reverse = sorted(k for k in sd if k.startswith(f"{ln}.") and k.endswith("_reverse"))
    if reverse:
        raise ImportFailure(f"{source}: {reverse[0]}: a bidirectional LSTM cannot serve "
                            f"left-to-right generation; only unidirectional LSTMs are supported")
    L = 0
    while f"{ln}.weight_ih_l{L}" in sd:
        L += 1
    if L == 0:
        raise ImportFailure(f"{source}: no {ln}.weight_ih_l0")
    w_hh0 = sd.get(f"{ln}.weight_hh_l0")
    if w_hh0 is None:
        raise ImportFailure(f"{source}: {ln}.weight_hh_l0 is missing")
    rows = sd[f"{ln}.weight_ih_l0"].shape[0]
    hr = sd.get(f"{ln}.weight_hr_l0")
    H = hr.shape[1] if hr is not None else w_hh0.shape[1]
    if rows != 4 * H:
        kind = {3 * H: "GRU", H: "plain RNN"}.get(rows, "not an LSTM")
        raise ImportFailure(f"{source}: {ln}.weight_ih_l0 has {rows} rows for hidden size {H}: "
                            f"{kind}; only LSTMs (4 x hidden rows) are supported")
    P = hr.shape[0] if hr is not None else 0
    out = {"embedding.weight": _np(emb)}
    for k in range(L):
        for w in ("weight_ih", "weight_hh"):
            out[f"lstm.{w}_l{k}"] = _np(take(f"{ln}.{w}_l{k}", "LSTM weight"))
        for b in ("bias_ih", "bias_hh"):
            key = f"{ln}.{b}_l{k}"
            if key in sd:
                out[f"lstm.{b}_l{k}"] = _np(take(key, "LSTM bias"))
            else:  # bias=False: the same model with zero biases
                out[f"lstm.{b}_l{k}"] = np.zeros(4 * H, np.float32)
        if P:
            out[f"lstm.weight_hr_l{k}"] = _np(take(f"{ln}.weight_hr_l{k}", "LSTM projection"))
    hw = take(f"{hn}.weight", "output layer")
    out["head.weight"] = _np(hw)  # its own copy even when tied to the embedding
    out["head.bias"] = (_np(take(f"{hn}.bias", "output bias")) if f"{hn}.bias" in sd
                        else np.zeros(hw.shape[0], np.float32))
    if hw.shape[0] != V:
        raise ImportFailure(f"{source}: {hn}.weight has {hw.shape[0]} rows, the embedding "
                            f"{V}: the output layer must cover the same vocabulary")
    left = sorted(set(sd) - used)
    if left:
        raise ImportFailure(f"{source}: tensors not used by the package: {left}; the model has "
                            f"more than embedding -> LSTM -> linear head, or --map names the "
                            f"wrong parts")
    model = Model(out, V, E, H, L, P)
    model.reference = _reference(sd, names, module, model)
    return model


def _reference(sd, names, module, model):
    """PyTorch's forward over ids: the module's own submodules, else rebuilt ones."""
    if module is not None:
        emb = _get_sub(module, names["embedding"])
        lstm = _get_sub(module, names["lstm"])
        head = _get_sub(module, names["head"])
        for part, obj, cls in ((names["embedding"], emb, nn.Embedding),
                               (names["lstm"], lstm, nn.LSTM), (names["head"], head, nn.Linear)):
            if not isinstance(obj, cls):
                raise ImportFailure(f"submodule {part!r} is {type(obj).__name__}, "
                                    f"expected nn.{cls.__name__}")
        if lstm.bidirectional:
            raise ImportFailure(f"{names['lstm']}: bidirectional LSTM is not supported")
        batch_first = lstm.batch_first
    else:
        V, E, H, L, P = (model.vocab_size, model.embedding_dim, model.hidden_size,
                         model.num_layers, model.proj_size)
        emb = nn.Embedding(V, E)
        emb.load_state_dict({"weight": sd[f"{names['embedding']}.weight"]})
        bias = f"{names['lstm']}.bias_ih_l0" in sd
        lstm = nn.LSTM(E, H, num_layers=L, bias=bias, proj_size=P)
        lstm.load_state_dict({k[len(names["lstm"]) + 1:]: v for k, v in sd.items()
                              if k.startswith(names["lstm"] + ".")})
        hb = f"{names['head']}.bias" in sd
        head = nn.Linear(P or H, V, bias=hb)
        head.load_state_dict({k[len(names["head"]) + 1:]: v for k, v in sd.items()
                              if k.startswith(names["head"] + ".")})
        batch_first = False

    @torch.no_grad()
    def run(ids):
        was = [m.training for m in (emb, lstm, head)]
        for m in (emb, lstm, head):
            m.eval()
        x = torch.tensor(ids, dtype=torch.long).view(1, -1) if batch_first else \
            torch.tensor(ids, dtype=torch.long).view(-1, 1)
        dt = lstm.weight_ih_l0.dtype
        y, _ = lstm(emb(x).to(dt))
        z = head(y.to(head.weight.dtype)).float().reshape(len(ids), -1)
        for m, w in zip((emb, lstm, head), was):
            m.train(w)
        out = torch.log_softmax(z.double(), dim=-1).numpy()
        if module is not None:
            _compare_with_module_forward(module, x, out, model)
        return out
    return run


@torch.no_grad()
def _compare_with_module_forward(module, x, composed, model):
    """Runs the module's own forward (word_language_model's (input, hidden) or (input)) and
    fails when it computes something other than embedding -> LSTM -> head (an extra scale, a
    residual...). A forward that cannot be called this way is noted and skipped."""
    was = module.training
    module.eval()
    try:
        args = (x, module.init_hidden(1)) if hasattr(module, "init_hidden") else (x,)
        y = module(*args)
    except Exception as e:  # noqa: BLE001 (any user code)
        model.notes.append(f"the module's own forward was not called ({type(e).__name__}: "
                           f"{e}); checked against its submodules only")
        return
    finally:
        module.train(was)
    y = y[0] if isinstance(y, (tuple, list)) else y
    if not isinstance(y, torch.Tensor) or y.numel() != composed.size:
        model.notes.append("the module's forward returned something other than [T, V] "
                           "scores; checked against its submodules only")
        return
    y = y.double().reshape(composed.shape)
    lp = torch.log_softmax(y, dim=-1).numpy()
    diff = float(abs(lp - composed).max())
    if diff > 1e-4:
        raise ImportFailure(f"the module's own forward differs from embedding -> LSTM -> head "
                            f"by up to {diff:.3g} in log-prob: it computes something the "
                            f"package format cannot express")
    model.notes.append(f"the module's own forward agrees with its submodules ({diff:.1e})")


def from_object(obj, names=None, source="checkpoint"):
    """(Model, extra) for a loaded checkpoint object; extra holds train.py's vocab/metadata."""
    extra = {}
    module = None
    if isinstance(obj, nn.Module):
        module = _unwrap(obj)
        sd = dict(module.state_dict())
    elif isinstance(obj, dict) and "model" in obj and "vocab" in obj and "args" in obj:
        extra = obj  # tools/train.py checkpoint
        sd = dict(obj["model"])
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = dict(obj)
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        extra_keys = sorted(k for k in obj if k != "state_dict")
        if any(isinstance(obj[k], torch.Tensor) for k in extra_keys):
            raise ImportFailure(f"{source}: tensors outside state_dict: {extra_keys}")
        sd = dict(obj["state_dict"])
    else:
        kind = type(obj).__name__
        keys = sorted(obj)[:10] if isinstance(obj, dict) else ""
        raise ImportFailure(f"{source}: a {kind} {keys} is none of: a train.py checkpoint, a "
                            f"state_dict, an nn.Module")
    sd = _strip_prefixes(sd)
    if names is None:
        names = _pick_names(list(sd), None)
    if module is not None and any(not isinstance(v, torch.Tensor) for v in sd.values()):
        raise ImportFailure(f"{source}: state_dict holds non-tensors")
    return convert(sd, names, module, source), extra
