#!/usr/bin/python3
"""Tests of tools/export.py on the committed fixtures (tests/import/) and of every refusal.

Each fixture is exported afresh and its package, read back by tools/lstm_reference.py, must
reproduce the source framework's own log-probs (expected.json) and, for ONNX, ONNX Runtime's
(ort.json) within 1e-4. Run by tools/tools_test.py.
"""
import contextlib
import copy
import io
import json
import os
import sys
import tempfile
import unittest

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
FIX = os.path.join(ROOT, "tests", "import", "fixtures")
PKG = os.path.join(ROOT, "tests", "import", "packages")
sys.path.insert(0, TOOLS)
import export  # noqa: E402
import lstm_reference  # noqa: E402
from importers import onnx_source, torch_source  # noqa: E402
from importers import vocab as vocab_sources  # noqa: E402
from importers.package import ImportFailure, Model, write_package  # noqa: E402

TOL = 1e-4
with open(os.path.join(FIX, "commands.json"), encoding="utf-8") as _f:
    COMMANDS = json.load(_f)
MAX_DIFFS = {}


def run_export(args, cwd=None):
    """(exit status, stdout, stderr) of export.main(args) run in `cwd`."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = export.main(args)
    finally:
        os.chdir(old)
    return rc, out.getvalue(), err.getvalue()


def load_json(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return json.load(f)


class FixtureTest(unittest.TestCase):
    """Every committed source, exported now, against the source framework's outputs."""

    def check_package(self, directory, name):
        exp = load_json(FIX, name, "expected.json")
        pkg = lstm_reference.Package.load(directory)
        self.assertEqual(pkg.tokenizer.encode(exp["text"]), exp["ids"], name)
        lp = pkg.log_probs(exp["ids"])
        diff = float(np.max(np.abs(lp - np.array(exp["logprobs"]))))
        self.assertLess(diff, TOL, name)
        if os.path.exists(os.path.join(FIX, name, "ort.json")):
            ort = np.array(load_json(FIX, name, "ort.json")["logprobs"])
            ort_diff = float(np.max(np.abs(lp - ort)))
            self.assertLess(ort_diff, TOL, f"{name} vs ONNX Runtime")
            diff = max(diff, ort_diff)
        return diff

    def test_every_fixture_exports_and_matches_its_source(self):
        self.assertGreaterEqual(len(COMMANDS), 14)
        for name, args in sorted(COMMANDS.items()):
            with self.subTest(name), tempfile.TemporaryDirectory() as d:
                out = os.path.join(d, name)
                rc, stdout, stderr = run_export(args + ["--out", out], cwd=os.path.join(FIX, name))
                self.assertEqual(rc, 0, stderr)
                self.assertIn("self-check: max |log-prob diff|", stdout)
                MAX_DIFFS[name] = self.check_package(out, name)
                # The committed package (read by the C++ test) is what export.py writes today.
                committed = lstm_reference.read_safetensors(
                    os.path.join(PKG, name, "model.safetensors"))
                fresh = lstm_reference.read_safetensors(os.path.join(out, "model.safetensors"))
                self.assertEqual(set(committed), set(fresh), name)
                for k in fresh:
                    np.testing.assert_array_equal(committed[k], fresh[k], err_msg=f"{name} {k}")
                self.assertEqual(load_json(out, "config.json"),
                                 load_json(PKG, name, "config.json"), name)

    def test_onnx_fixtures_have_onnx_runtime_outputs(self):
        onnx_names = [n for n, a in COMMANDS.items() if "--onnx" in a]
        self.assertEqual(sorted(onnx_names), ["onnx_keras", "onnx_torch"])
        for name in onnx_names:
            self.assertTrue(os.path.exists(os.path.join(FIX, name, "ort.json")), name)

    def test_format_versions(self):
        self.assertEqual(load_json(PKG, "train_py", "config.json")["format_version"], 1)
        for name in ("wlm_module", "sentencepiece", "proj"):
            self.assertEqual(load_json(PKG, name, "config.json")["format_version"], 2, name)
        cfg = load_json(PKG, "proj", "config.json")
        self.assertEqual(cfg["proj_size"], 4)
        tok = load_json(PKG, "wlm_tied", "config.json")["tokenizer"]
        self.assertEqual((tok["type"], tok["eos_token"], tok["unk_token"]),
                         ("word", "<eos>", "<unk>"))
        self.assertTrue(os.path.exists(os.path.join(PKG, "sentencepiece", "tokenizer.model")))

    def test_weights_only_where_it_suffices(self):
        # train.py checkpoints hold floats, which torch 1.13's weights_only reader lacks: they
        # go through the same allow-list without running code.
        for name, how in (("prefix_module", "weights_only"), ("mapped_names", "weights_only"),
                          ("train_py", "weights_only allow-list, every pickle opcode (no code run)"),
                          ("wlm_module", "unpickled")):
            args = COMMANDS[name]
            with tempfile.TemporaryDirectory() as d:
                rc, out, err = run_export(args + ["--out", d + "/p"], cwd=os.path.join(FIX, name))
                self.assertEqual(rc, 0, err)
                self.assertIn(f"read with torch.load: {how}", out)
                if how == "unpickled":
                    self.assertIn("the module's own forward agrees with its submodules", out)

    def test_plain_data_reader_runs_no_code(self):
        # A float beside the tensors (what weights_only refuses in torch 1.13) loads; a global
        # outside the tensor allow-list is refused before anything calls it.
        with tempfile.TemporaryDirectory() as d:
            ok = os.path.join(d, "ok.pt")
            torch.save({"val_loss": 1.5, "model": {"w": torch.ones(2)}}, ok)
            obj, how = torch_source.load_checkpoint(ok)
            self.assertEqual(how, "weights_only allow-list, every pickle opcode (no code run)")
            self.assertEqual(obj["val_loss"], 1.5)
            self.assertTrue(torch.equal(obj["model"]["w"], torch.ones(2)))
            bad = os.path.join(d, "bad.pt")
            torch.save({"val_loss": 1.5, "hook": os.getcwd}, bad)
            with self.assertRaisesRegex(Exception, "getcwd is not a tensor or plain data"):
                torch_source._load_plain_data(bad)

    def test_help_warns_that_unpickling_runs_code(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaises(SystemExit):
            export.main(["--help"])
        self.assertIn("unpickling runs code", out.getvalue())
        self.assertIn("weights_only", out.getvalue())


class WordCorpusTest(unittest.TestCase):
    def test_dictionary_is_data_corpus_order(self):
        v = vocab_sources.from_word_corpus(os.path.join(FIX, "word_corpus"))
        # train.txt: "the cat sat on the mat", "", "the dog ate the cat <unk> food", then valid.
        self.assertEqual(v.tokenizer["vocab"][:9],
                         ["the", "cat", "sat", "on", "mat", "<eos>", "dog", "ate", "<unk>"])
        self.assertEqual(v.tokenizer["unk_token"], "<unk>")

    def test_word_tokenizer_rules(self):
        t = lstm_reference.WordTokenizer(["a", "b", "<eos>", "<unk>"], "<eos>", "<unk>")
        self.assertEqual(t.encode("a  b\n\nb zz\n"), [0, 1, 2, 2, 1, 3, 2])
        self.assertEqual(t.decode([0, 1, 2, 2, 1]), "a b\n\nb")
        strict = lstm_reference.WordTokenizer(["a", "<eos>"], "<eos>")
        with self.assertRaisesRegex(lstm_reference.PackageError, r"'zz' \(word 2\)"):
            strict.encode("a\nzz")

    def test_missing_corpus_file(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(ImportFailure, "valid.txt is missing"):
                open(os.path.join(d, "train.txt"), "w").close()
                vocab_sources.from_word_corpus(d)


def _sd(**kw):
    sys.path.insert(0, os.path.join(FIX, "wlm_code"))
    from custom_lm import Lm
    torch.manual_seed(0)
    return Lm(6, 3, 4, 2, **kw)


class TorchRefusalTest(unittest.TestCase):
    def refuse(self, obj, pattern, names=None):
        with self.assertRaisesRegex(ImportFailure, pattern):
            torch_source.from_object(obj, names, "src")

    def test_bidirectional(self):
        self.refuse(_sd(bidirectional=True).state_dict(),
                    r"lstm\.\w+_l0_reverse: a bidirectional LSTM")

    def test_gru(self):
        m = _sd()
        m.lstm = torch.nn.GRU(3, 4, 2)
        self.refuse(m.state_dict(), r"lstm.weight_ih_l0 has 12 rows for hidden size 4: GRU")

    def test_leftover_tensors_are_named(self):
        sd = dict(_sd().state_dict())
        sd["extra.scale"] = torch.ones(3)
        self.refuse(sd, r"tensors not used by the package: \['extra.scale'\]")

    def test_unknown_names_ask_for_map(self):
        sd = {k.replace("lstm.", "body."): v for k, v in _sd().state_dict().items()}
        self.refuse(sd, r"pass --map embedding=NAME,lstm=NAME,head=NAME")

    def test_bad_map(self):
        with self.assertRaisesRegex(ImportFailure, r"--map: 'lstm' is not"):
            torch_source.parse_map("embedding=a,lstm,head=c")
        with self.assertRaisesRegex(ImportFailure, r"\['head'\] not given"):
            torch_source.parse_map("embedding=a,lstm=b")

    def test_not_a_model(self):
        self.refuse([1, 2], r"a list .* is none of")

    def test_module_whose_forward_does_more(self):
        class Scaled(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = _sd()
                self.embedding, self.lstm, self.head = (self.inner.embedding, self.inner.lstm,
                                                        self.inner.head)

            def forward(self, ids):
                y, _ = self.lstm(self.embedding(ids) * 2.0)
                return self.head(y)
        m = Scaled()
        del m.inner  # its parameters are the same objects as the three attributes
        model, _ = torch_source.from_object(m, None, "src")
        with self.assertRaisesRegex(ImportFailure, r"the module's own forward differs from "
                                    r"embedding -> LSTM -> head by up to"):
            model.reference([1, 2, 3])

    def test_pickled_module_without_code_dir(self):
        import subprocess  # a fresh interpreter: this one has imported the class already
        r = subprocess.run([sys.executable, os.path.join(TOOLS, "export.py"), "--checkpoint",
                            "model.pt", "--word-corpus", "../word_corpus", "--out", "/tmp/x/y"],
                           cwd=os.path.join(FIX, "wlm_module"), capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("No module named 'model'", r.stderr)
        self.assertIn("pass --code-dir DIR", r.stderr)

    def test_vocabulary_size_mismatch(self):
        with tempfile.TemporaryDirectory() as d:
            rc, _, err = run_export(["--checkpoint", "state_dict.pt", "--vocab",
                                     "../word_vocab.txt", "--out", d + "/p"],
                                    cwd=os.path.join(FIX, "bias_false"))
        self.assertEqual(rc, 1)
        self.assertIn("12 tokens, but the model's embedding has 15 rows", err)

    def test_word_vocab_without_eos(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "v.txt")
            with open(path, "w") as f:
                f.write("hello\nworld\n")
            with self.assertRaisesRegex(ImportFailure, "no end-of-line token '<eos>'"):
                vocab_sources.from_vocab_file(path)

    def test_metadata_cannot_set_structural_fields(self):
        m, _ = torch_source.from_object(_sd().state_dict(), None, "src")
        v = vocab_sources.char_vocab("abcdef")
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(ImportFailure, r"structural field\(s\) \['hidden_size'"):
                write_package(m, v.tokenizer, v.encode, d + "/p", "x",
                              {"hidden_size": 99, "tokenizer": {}})
            self.assertFalse(os.path.exists(d + "/p"))

    def test_self_check_failure_writes_nothing(self):
        m, _ = torch_source.from_object(_sd().state_dict(), None, "src")
        m.tensors["head.bias"][2] += np.float32(0.01)  # as a wrong conversion would
        v = vocab_sources.char_vocab("abcdef")
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(ImportFailure, r"differ from the source model's by up "
                                        r"to 0\.0\d+ \(limit 0\.0001\).*nothing written"):
                write_package(m, v.tokenizer, v.encode, d + "/p", "x")
            self.assertEqual(os.listdir(d), [])

    def test_self_check_tokenizer_disagreement(self):
        m, _ = torch_source.from_object(_sd().state_dict(), None, "src")
        v = vocab_sources.char_vocab("abcdef")
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(ImportFailure, "the source vocabulary as"):
                write_package(m, v.tokenizer, lambda t: [0] * len(t), d + "/p", "x")

    def test_cli_failure_exit_status(self):
        rc, _, err = run_export(["--out", "/tmp/x"])
        self.assertEqual(rc, 1)
        self.assertIn("exactly one of --checkpoint and --onnx", err)


def keras_model(**kw):
    """The tf2onnx-shaped fixture with changes: kw = activations / extra attrs per layer."""
    sys.path.insert(0, TOOLS)
    import make_import_fixtures as mk
    rng = np.random.default_rng(1)
    emb, layers, dw, db = mk.keras_weights(rng, 12, 5, kw.pop("sizes", (7, 7)))
    with tempfile.TemporaryDirectory() as d:
        mk.build_keras_onnx(os.path.join(d, "m.onnx"), emb, layers, dw, db, **kw)
        return onnx.load(os.path.join(d, "m.onnx"))


class OnnxRefusalTest(unittest.TestCase):
    def refuse(self, model, pattern):
        with self.assertRaisesRegex(ImportFailure, pattern):
            onnx_source.convert(model)

    def test_the_fixture_shape_converts(self):
        m = onnx_source.convert(keras_model())
        self.assertEqual((m.num_layers, m.hidden_size, m.vocab_size), (2, 7, 12))

    def test_hard_sigmoid(self):
        self.refuse(keras_model(activations=["HardSigmoid", "Tanh", "Tanh"]),
                    r"node lstm_0/LSTM \(LSTM\): attribute activations = \['HardSigmoid'")

    def test_clip(self):
        self.refuse(keras_model(extra={1: {"clip": 3.0}}),
                    r"node lstm_1/LSTM \(LSTM\): attribute clip = 3.0")

    def test_input_forget(self):
        self.refuse(keras_model(extra={0: {"input_forget": 1}}),
                    r"node lstm_0/LSTM \(LSTM\): attribute input_forget = 1")

    def test_reverse_and_bidirectional(self):
        self.refuse(keras_model(extra={0: {"direction": "reverse"}}),
                    r"node lstm_0/LSTM \(LSTM\): attribute direction = 'reverse'")
        self.refuse(keras_model(extra={0: {"direction": "bidirectional"}}),
                    r"attribute direction = 'bidirectional'")

    def test_peepholes(self):
        m = keras_model()
        node = next(n for n in m.graph.node if n.op_type == "LSTM")
        m.graph.initializer.append(numpy_helper.from_array(np.zeros((1, 21), np.float32), "P"))
        node.input.extend(["", "", "", "P"])
        self.refuse(m, r"node lstm_0/LSTM \(LSTM\): input P \(peepholes, 'P'\)")

    def test_loop_instead_of_lstm(self):
        m = keras_model()
        body = helper.make_graph([], "body", [], [])
        m.graph.node.insert(2, helper.make_node("Loop", ["", ""], [], body=body,
                                                name="while_loop"))
        self.refuse(m, r"node while_loop \(Loop\): a Loop instead of an ONNX LSTM node")

    def test_other_op(self):
        m = keras_model()
        for n in m.graph.node:
            if n.op_type == "Softmax":
                n.op_type = "Sigmoid"
        self.refuse(m, r"node dense/Softmax: op Sigmoid is not part of")

    def test_different_hidden_sizes(self):
        self.refuse(keras_model(sizes=(7, 6)), r"node lstm_1/LSTM: hidden_size 6 differs")

    def test_leftover_initializer(self):
        m = keras_model()
        m.graph.initializer.append(numpy_helper.from_array(np.ones(3, np.float32), "unused_w"))
        self.refuse(m, r"float tensors not used by the package: \['unused_w'\]")

    def test_nonzero_initial_state(self):
        m = keras_model()
        node = next(n for n in m.graph.node if n.op_type == "LSTM")
        m.graph.initializer.append(numpy_helper.from_array(np.ones((1, 1, 7), np.float32), "h0"))
        node.input.extend(["", "h0"])
        self.refuse(m, r"node lstm_0/LSTM: input initial_h is a non-zero constant")

    def test_not_onnx(self):
        with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
            f.write(b"not a protobuf \xff\xff")
            f.flush()
            with self.assertRaisesRegex(ImportFailure, "not an ONNX model"):
                onnx_source.load(f.name)

    def test_gemm_head_and_gate_order(self):
        """A Gemm head (transB) and logits output; gates permuted i,o,f,c -> i,f,g,o."""
        m = copy.deepcopy(keras_model())
        g = m.graph
        inits = {t.name: t for t in g.initializer}
        w = numpy_helper.to_array(inits["dense/MatMul/ReadVariableOp:0"])
        b = numpy_helper.to_array(inits["dense/BiasAdd/ReadVariableOp:0"])
        keep = [n for n in g.node if n.op_type not in ("MatMul", "Add", "Softmax")]
        last = keep[-1].output[0]
        nodes = keep + [
            helper.make_node("Reshape", [last, "shape2"], ["flat"], name="flatten"),
            helper.make_node("Gemm", ["flat", "wT", "b"], ["logits"], transB=1, name="gemm")]
        del g.node[:]
        g.node.extend(nodes)
        for n in ("dense/MatMul/ReadVariableOp:0", "dense/BiasAdd/ReadVariableOp:0"):
            g.initializer.remove(inits[n])
        g.initializer.extend([numpy_helper.from_array(w.T.copy(), "wT"),
                              numpy_helper.from_array(b, "b"),
                              numpy_helper.from_array(np.array([-1, 7], np.int64), "shape2")])
        del g.output[:]
        g.output.append(helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT,
                                                      [None, 12]))
        model = onnx_source.convert(m)
        W = numpy_helper.to_array(inits["lstm_0/W"])[0]
        np.testing.assert_array_equal(model.tensors["lstm.weight_ih_l0"][7:14], W[14:21])  # f
        np.testing.assert_array_equal(model.tensors["lstm.weight_ih_l0"][21:], W[7:14])  # o
        ids = [1, 4, 2, 9, 0, 3]
        v = vocab_sources.from_vocab_file(os.path.join(FIX, "word_vocab.txt"))
        with tempfile.TemporaryDirectory() as d:
            _, report = write_package(model, v.tokenizer, v.encode, d + "/p", "gemm")
            self.assertLess(report["max_abs_diff"], TOL)
            pkg = lstm_reference.Package.load(d + "/p")
            self.assertLess(np.max(np.abs(pkg.log_probs(ids) - model.reference(ids))), TOL)


class ByteAndCharTest(unittest.TestCase):
    def test_byte_round_trip(self):
        m, _ = torch_source.from_object(
            __import__("lstm_lm").LstmLM(256, 4, 5, 1).state_dict(), None, "src")
        v = vocab_sources.byte_vocab()
        with tempfile.TemporaryDirectory() as d:
            cfg, report = write_package(m, v.tokenizer, v.encode, d + "/p", "b")
            self.assertEqual(cfg["format_version"], 1)
            self.assertLess(report["max_abs_diff"], TOL)

    def test_model_shapes_checked(self):
        t = {"embedding.weight": np.zeros((3, 2), np.float32)}
        with self.assertRaisesRegex(ImportFailure, "internal"):
            write_package(Model(t, 3, 2, 2, 1), {"type": "char", "vocab": list("abc")},
                          None, "/tmp/none", "x")


class SubwordTrainingTest(unittest.TestCase):
    """train_sentencepiece.py -> train.py --sentencepiece -> export.py, on a tiny text."""

    def test_train_and_export_a_subword_model(self):
        import subprocess
        text = "".join(open(os.path.join(FIX, "word_corpus", f), encoding="utf-8").read()
                       for f in ("train.txt", "valid.txt", "test.txt")) * 20
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "corpus.txt"), "w", encoding="utf-8") as f:
                f.write(text)
            py = sys.executable
            subprocess.run([py, os.path.join(TOOLS, "train_sentencepiece.py"), "--text",
                            d + "/corpus.txt", "--out", d + "/sp.model", "--vocab-size", "280"],
                           check=True, capture_output=True)
            r = subprocess.run([py, os.path.join(TOOLS, "train.py"), "--text", d + "/corpus.txt",
                                "--sentencepiece", d + "/sp.model", "--out", d + "/run",
                                "--embedding-dim", "4", "--hidden-size", "6", "--num-layers", "1",
                                "--batch-size", "4", "--seq-len", "8", "--epochs", "1",
                                "--threads", "1"], check=True, capture_output=True, text=True)
            self.assertRegex(r.stdout, r"nats/piece = \d+\.\d+ nats/char")
            rc, out, err = run_export(["--checkpoint", d + "/run/best.pt", "--out", d + "/pkg"])
            self.assertEqual(rc, 0, err)
            cfg = load_json(d, "pkg", "config.json")
            self.assertEqual(cfg["tokenizer"], {"type": "sentencepiece",
                                                "model_file": "tokenizer.model"})
            self.assertGreater(cfg["validation_loss_nats_per_piece"],
                               cfg["validation_loss_nats_per_char"])
            pkg = lstm_reference.Package.load(d + "/pkg")
            self.assertEqual(pkg.tokenizer.decode(pkg.tokenizer.encode("the cat\nsat")),
                             "the cat\nsat")


def tearDownModule():
    if MAX_DIFFS:
        print("\nmax |package - source| log-prob per fixture: " +
              ", ".join(f"{k} {v:.1e}" for k, v in sorted(MAX_DIFFS.items())), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
