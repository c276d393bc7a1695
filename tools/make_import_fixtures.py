#!/usr/bin/python3
"""Writes the importer's committed fixtures: tests/import/fixtures/<name>/ holds a small source
model in every shape tools/export.py reads, plus expected.json (a probe text, its ids, and the
source framework's own log-probs); tests/import/packages/<name>/ holds the package export.py
makes from it (read by tests/models/import_fixtures_test.cc).

  /usr/bin/python3 tools/make_import_fixtures.py          # torch + onnx + sentencepiece
  node tests/import/ort_outputs.js tools/npm/node_modules  # ONNX Runtime's outputs -> ort.json

Sources: word_language_model's RNNModel pickled whole (plain, tied, wrapped in DataParallel),
state_dicts with DataParallel's `module.` and torch.compile's `_orig_mod.` prefixes (torch 1.13
has no torch.compile: the prefix is written as it would), a state_dict under other names
(--map), batch_first=True, bias=False, proj_size, E != H, a train.py checkpoint, a SentencePiece
model, an ONNX file from torch.onnx.export and one in tf2onnx's Keras shape built with
onnx.helper. Deterministic (fixed seeds, one thread), except the pickled modules' byte layout.
"""
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from torch import nn

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
FIX = os.path.join(ROOT, "tests", "import", "fixtures")
PKG = os.path.join(ROOT, "tests", "import", "packages")
sys.path.insert(0, TOOLS)
sys.path.insert(0, os.path.join(FIX, "wlm_code"))
from importers import vocab as vocab_sources  # noqa: E402
from model import RNNModel  # noqa: E402  (word_language_model's class)
from custom_lm import Lm  # noqa: E402  (other names, batch_first, bias, proj_size)

CHARS = list("abcdefgh ij\n.,é")
PROBE_CHARS = "a bad cafe\nhij, édic.\nbe"
PROBE_WORDS = "the cat ate a hat\non the dog mat\nthe zebra sat"  # zebra: unknown -> <unk>
PROBE_PIECES = "the cat sat on the mat\nthe dog ate a hat"


def scale(module, s=2.5):
    """Larger weights, so that log-probs are far from uniform and gates saturate sometimes."""
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(s)
    return module


def save_expected(directory, text, ids, logprobs, extra=None):
    data = {"text": text, "ids": [int(i) for i in ids],
            "logprobs": [[round(float(v), 7) for v in row] for row in np.asarray(logprobs)]}
    data.update(extra or {})
    with open(os.path.join(directory, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def fresh(name):
    d = os.path.join(FIX, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write_vocab(d, tokens, json_form=False):
    path = os.path.join(d, "vocab.json" if json_form else "vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        if json_form:
            json.dump(tokens, f, ensure_ascii=False)
        else:
            f.write("".join(t + "\n" for t in tokens))
    return os.path.basename(path)


def seq_first(ids):
    return torch.tensor(ids, dtype=torch.long).view(-1, 1)


@torch.no_grad()
def wlm_fixtures(word_voc):
    out = []
    ids = word_voc.encode(PROBE_WORDS)
    V = word_voc.size
    for name, wrap, tied, E, H in (("wlm_module", None, False, 6, 10),
                                   ("wlm_tied", None, True, 8, 8),
                                   ("wlm_dataparallel", "dp", False, 6, 9)):
        torch.manual_seed(sum(map(ord, name)))
        m = scale(RNNModel("LSTM", V, E, H, 2, dropout=0.3, tie_weights=tied)).eval()
        d = fresh(name)
        lp, _ = m(seq_first(ids), m.init_hidden(1))  # the example's own forward
        obj = nn.DataParallel(m) if wrap == "dp" else m
        torch.save(obj, os.path.join(d, "model.pt"))
        save_expected(d, PROBE_WORDS, ids, lp)
        out.append((name, ["--checkpoint", "model.pt", "--code-dir", "../wlm_code",
                           "--word-corpus", "../word_corpus"]))
    return out


@torch.no_grad()
def state_dict_fixtures(word_voc):
    out = []
    cv = vocab_sources.char_vocab(CHARS)
    cids = cv.encode(PROBE_CHARS)
    wids = word_voc.encode(PROBE_WORDS)
    V = len(CHARS)

    # DataParallel's and torch.compile's prefixes on a word_language_model state_dict.
    for name, prefix in (("prefix_module", "module."), ("prefix_orig_mod", "_orig_mod."),
                         ("prefix_both", "module._orig_mod.")):
        torch.manual_seed(len(name))
        m = scale(RNNModel("LSTM", word_voc.size, 5, 7, 1, dropout=0.0)).eval()
        d = fresh(name)
        torch.save({prefix + k: v for k, v in m.state_dict().items()},
                   os.path.join(d, "state_dict.pt"))
        lp, _ = m(seq_first(wids), m.init_hidden(1))
        save_expected(d, PROBE_WORDS, wids, lp)
        out.append((name, ["--checkpoint", "state_dict.pt", "--vocab", "../word_vocab.txt"]))

    # Other names (--map), E != H, 3 layers; a char vocabulary in JSON (it holds "\n").
    torch.manual_seed(11)
    m = scale(Lm(V, 4, 9, 3, names=("emb", "stack", "out"))).eval()
    d = fresh("mapped_names")
    torch.save(m.state_dict(), os.path.join(d, "state_dict.pt"))
    save_expected(d, PROBE_CHARS, cids, m(seq_first(cids))[:, 0])
    vf = write_vocab(d, CHARS, json_form=True)
    out.append(("mapped_names", ["--checkpoint", "state_dict.pt", "--vocab", vf,
                                 "--map", "embedding=emb,lstm=stack,head=out"]))

    # batch_first=True, pickled whole (class custom_lm.Lm: --code-dir).
    torch.manual_seed(12)
    m = scale(Lm(V, 7, 6, 2, batch_first=True)).eval()
    d = fresh("batch_first")
    torch.save(m, os.path.join(d, "model.pt"))
    lp = m(torch.tensor(cids).view(1, -1))[0]
    save_expected(d, PROBE_CHARS, cids, lp)
    vf = write_vocab(d, CHARS, json_form=True)
    out.append(("batch_first", ["--checkpoint", "model.pt", "--code-dir", "../wlm_code",
                                "--vocab", vf]))

    # bias=False in the LSTM and the head.
    torch.manual_seed(13)
    m = scale(Lm(V, 5, 8, 2, bias=False)).eval()
    d = fresh("bias_false")
    torch.save(m.state_dict(), os.path.join(d, "state_dict.pt"))
    save_expected(d, PROBE_CHARS, cids, m(seq_first(cids))[:, 0])
    vf = write_vocab(d, CHARS, json_form=True)
    out.append(("bias_false", ["--checkpoint", "state_dict.pt", "--vocab", vf]))

    # proj_size (projected LSTM), E != H != P.
    torch.manual_seed(14)
    m = scale(Lm(V, 5, 12, 2, proj_size=4)).eval()
    d = fresh("proj")
    torch.save(m.state_dict(), os.path.join(d, "state_dict.pt"))
    save_expected(d, PROBE_CHARS, cids, m(seq_first(cids))[:, 0])
    vf = write_vocab(d, CHARS, json_form=True)
    out.append(("proj", ["--checkpoint", "state_dict.pt", "--vocab", vf]))

    # A tools/train.py checkpoint (char vocabulary inside).
    sys.path.insert(0, TOOLS)
    from lstm_lm import LstmLM
    torch.manual_seed(15)
    m = scale(LstmLM(V, 6, 10, 2)).eval()
    d = fresh("train_py")
    args = {"embedding_dim": 6, "hidden_size": 10, "num_layers": 2, "val_fraction": 0.1,
            "dropout": 0.2, "seq_len": 64, "batch_size": 64, "lr": 3e-3, "lr_final": 1e-4,
            "epochs": 1, "clip": 1.0, "seed": 1}
    torch.save({"vocab": CHARS, "args": args, "epoch": 1, "history": [], "train_seconds": 1.0,
                "corpus": "fixture", "corpus_chars": 100, "model": m.state_dict(),
                "val_loss": 2.5}, os.path.join(d, "best.pt"))
    logits, _ = m(seq_first(cids))
    save_expected(d, PROBE_CHARS, cids, torch.log_softmax(logits[:, 0], -1))
    out.append(("train_py", ["--checkpoint", "best.pt"]))
    return out


@torch.no_grad()
def sentencepiece_fixture():
    import sentencepiece as spm
    d = fresh("sentencepiece")
    text = ""
    for f in ("train.txt", "valid.txt", "test.txt"):
        with open(os.path.join(FIX, "word_corpus", f), encoding="utf-8") as fh:
            text += fh.read()
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.split("\n") * 3), model_writer=proto, vocab_size=300,
        model_type="bpe", character_coverage=1.0, byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        user_defined_symbols=["\n"], add_dummy_prefix=False, bos_id=-1, eos_id=-1, unk_id=0,
        minloglevel=2, num_threads=1, hard_vocab_limit=False)
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(proto.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    V = sp.get_piece_size()
    torch.manual_seed(16)
    m = scale(Lm(V, 6, 8, 2)).eval()
    torch.save(m.state_dict(), os.path.join(d, "state_dict.pt"))
    ids = sp.encode(PROBE_PIECES)
    save_expected(d, PROBE_PIECES, ids, m(seq_first(ids))[:, 0])
    return [("sentencepiece", ["--checkpoint", "state_dict.pt", "--sentencepiece",
                               "tokenizer.model"])]


@torch.no_grad()
def onnx_torch_fixture():
    """torch.onnx.export of an LSTM LM: ids [T, 1] -> log-probs [T, 1, V]."""
    cv = vocab_sources.char_vocab(CHARS)
    ids = cv.encode(PROBE_CHARS)
    torch.manual_seed(17)
    m = scale(Lm(len(CHARS), 6, 8, 2)).eval()
    d = fresh("onnx_torch")
    torch.onnx.export(m, seq_first(ids), os.path.join(d, "model.onnx"), input_names=["ids"],
                      output_names=["logprobs"], dynamic_axes={"ids": {0: "T"}},
                      opset_version=14)
    save_expected(d, PROBE_CHARS, ids, m(seq_first(ids))[:, 0],
                  {"onnx_input": "ids", "onnx_input_shape": [len(ids), 1],
                   "onnx_input_type": "int64", "onnx_output": "logprobs",
                   "onnx_output_is": "logprobs"})
    vf = write_vocab(d, CHARS, json_form=True)
    return [("onnx_torch", ["--onnx", "model.onnx", "--vocab", vf])]


def keras_lstm_np(x, kernel, rec, bias):
    """Keras LSTM (recurrent_activation sigmoid): kernel [in, 4H] in Keras order i, f, c, o."""
    H = rec.shape[0]
    h, c, ys = np.zeros(H), np.zeros(H), []
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(x.shape[0]):
        z = x[t] @ kernel + h @ rec + bias
        i, f, cc, o = (z[k * H:(k + 1) * H] for k in range(4))
        c = sig(f) * c + sig(i) * np.tanh(cc)
        h = sig(o) * np.tanh(c)
        ys.append(h)
    return np.array(ys)


def keras_to_onnx_lstm(kernel, rec, bias):
    """What tf2onnx writes for a Keras LSTM: W [1, 4H, in], R [1, 4H, H] in ONNX order
    i, o, f, c; B [1, 8H] = [Wb, Rb] with the Keras bias in Wb and zeros in Rb."""
    H = rec.shape[0]
    order = (0, 3, 1, 2)  # ONNX block k = Keras block order[k]

    def r(m):
        return np.concatenate([m[..., j * H:(j + 1) * H] for j in order], axis=-1)
    W = r(kernel).T[None].astype(np.float32)
    R = r(rec).T[None].astype(np.float32)
    B = np.concatenate([r(bias), np.zeros(4 * H)])[None].astype(np.float32)
    return W, R, B


def build_keras_onnx(path, emb, layers, dense_w, dense_b, activations=None, extra=None):
    """A graph in tf2onnx's shape for Keras Embedding -> LSTM(return_sequences) x n -> Dense
    (softmax): batch-major int32 input, Cast, Gather, Transpose to time-major, LSTM, Squeeze,
    Transpose back, MatMul + Add, Softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits = [numpy_helper.from_array(emb.astype(np.float32), "embedding/embeddings:0"),
             numpy_helper.from_array(np.array([1], np.int64), "const_axes__1"),
             numpy_helper.from_array(dense_w.astype(np.float32), "dense/MatMul/ReadVariableOp:0"),
             numpy_helper.from_array(dense_b.astype(np.float32), "dense/BiasAdd/ReadVariableOp:0")]
    nodes = [helper.make_node("Cast", ["input_1"], ["cast_ids"], to=TensorProto.INT64,
                              name="embedding/Cast"),
             helper.make_node("Gather", ["embedding/embeddings:0", "cast_ids"], ["emb_out"],
                              name="embedding/embedding_lookup", axis=0)]
    x = "emb_out"
    for k, (kernel, rec, bias) in enumerate(layers):
        W, R, B = keras_to_onnx_lstm(kernel, rec, bias)
        n = f"lstm_{k}"
        inits += [numpy_helper.from_array(W, f"{n}/W"), numpy_helper.from_array(R, f"{n}/R"),
                  numpy_helper.from_array(B, f"{n}/B")]
        kw = {"hidden_size": rec.shape[0], "direction": "forward"}
        if activations is not None:
            kw["activations"] = activations
        kw.update((extra or {}).get(k, {}))
        nodes += [helper.make_node("Transpose", [x], [f"{n}_tm"], perm=[1, 0, 2],
                                   name=f"{n}/transpose"),
                  helper.make_node("LSTM", [f"{n}_tm", f"{n}/W", f"{n}/R", f"{n}/B"],
                                   [f"{n}_y", f"{n}_yh", f"{n}_yc"], name=f"{n}/LSTM", **kw),
                  helper.make_node("Squeeze", [f"{n}_y", "const_axes__1"], [f"{n}_sq"],
                                   name=f"{n}/Squeeze"),
                  helper.make_node("Transpose", [f"{n}_sq"], [f"{n}_out"], perm=[1, 0, 2],
                                   name=f"{n}/transpose_1")]
        x = f"{n}_out"
    nodes += [helper.make_node("MatMul", [x, "dense/MatMul/ReadVariableOp:0"], ["dense_mm"],
                               name="dense/Tensordot/MatMul"),
              helper.make_node("Add", ["dense_mm", "dense/BiasAdd/ReadVariableOp:0"],
                               ["dense_logits"], name="dense/BiasAdd"),
              helper.make_node("Softmax", ["dense_logits"], ["dense"], name="dense/Softmax",
                               axis=-1)]
    V = emb.shape[0]
    graph = helper.make_graph(
        nodes, "tf2onnx", [helper.make_tensor_value_info("input_1", TensorProto.INT32,
                                                         ["unk__6", "unk__7"])],
        [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["unk__8", "unk__9", V])],
        inits)
    model = helper.make_model(graph, producer_name="tf2onnx", producer_version="1.9.3",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)


def keras_weights(rng, V, E, sizes):
    emb = rng.uniform(-1, 1, (V, E))
    layers, n_in = [], E
    for H in sizes:
        layers.append((rng.normal(0, 0.8, (n_in, 4 * H)), rng.normal(0, 0.8, (H, 4 * H)),
                       rng.normal(0, 0.5, 4 * H)))
        n_in = H
    return emb, layers, rng.normal(0, 1.5, (n_in, V)), rng.normal(0, 0.5, V)


def onnx_keras_fixture(word_voc):
    """tf2onnx's shape of a Keras word model, and its Keras-semantics log-probs (numpy)."""
    rng = np.random.default_rng(18)
    V = word_voc.size
    emb, layers, dw, db = keras_weights(rng, V, 5, (7, 7))
    d = fresh("onnx_keras")
    build_keras_onnx(os.path.join(d, "model.onnx"), emb, layers, dw, db)
    ids = word_voc.encode(PROBE_WORDS)
    x = emb[ids]
    for kernel, rec, bias in layers:
        x = keras_lstm_np(x, kernel, rec, bias)
    z = x @ dw + db
    lp = z - z.max(1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    save_expected(d, PROBE_WORDS, ids, lp,
                  {"onnx_input": "input_1", "onnx_input_shape": [1, len(ids)],
                   "onnx_input_type": "int32", "onnx_output": "dense",
                   "onnx_output_is": "probs", "source": "Keras LSTM semantics in numpy"})
    return [("onnx_keras", ["--onnx", "model.onnx", "--vocab", "../word_vocab.txt"])]


def main():
    torch.set_num_threads(1)
    word_voc = vocab_sources.from_word_corpus(os.path.join(FIX, "word_corpus"))
    with open(os.path.join(FIX, "word_vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(w + "\n" for w in word_voc.tokenizer["vocab"]))
    only = set(sys.argv[1:])  # fixture groups to remake (default all)
    jobs = []
    for group, make in (("wlm", lambda: wlm_fixtures(word_voc)),
                        ("state_dict", lambda: state_dict_fixtures(word_voc)),
                        ("sentencepiece", sentencepiece_fixture), ("onnx_torch", onnx_torch_fixture),
                        ("onnx_keras", lambda: onnx_keras_fixture(word_voc))):
        if not only or group in only:
            jobs += make()
    path = os.path.join(FIX, "commands.json")
    commands = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else {}
    for name, args in jobs:
        out = os.path.join(PKG, name)
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, os.path.join(TOOLS, "export.py"), *args,
               "--out", os.path.relpath(out, os.path.join(FIX, name)), "--name", name]
        r = subprocess.run(cmd, cwd=os.path.join(FIX, name), capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"{name}: export failed: {r.stderr}")
        shutil.copyfile(os.path.join(FIX, name, "expected.json"),
                        os.path.join(out, "expected.json"))
        commands[name] = args
        print(f"{name:18s} {r.stdout.strip().splitlines()[-1]}")
    with open(os.path.join(FIX, "commands.json"), "w", encoding="utf-8") as f:
        json.dump(commands, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
