#!/usr/bin/python3
"""Tests of the Python tools (no PyPI): safetensors round-trip, export layout, and (from
tools/export_test.py) the importer on every committed fixture and every refusal."""
import json
import os
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import export_module  # noqa: E402
from lstm_lm import LstmLM  # noqa: E402
from safetensors_io import load_file, save_file  # noqa: E402
from export_test import *  # noqa: E402,F401,F403  (the importer's fixture and refusal tests)


class SafetensorsTest(unittest.TestCase):
    def test_round_trip_all_dtypes(self):
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as d:
            for dt in (torch.float32, torch.bfloat16, torch.float16):
                t = {"a": torch.randn(3, 5).to(dt), "b": torch.randn(7).to(dt)}
                path = os.path.join(d, "x.safetensors")
                save_file(t, path)
                back = load_file(path)
                for k in t:
                    self.assertTrue(torch.equal(back[k], t[k].float()), (dt, k))

    def test_header_is_aligned_and_offsets_contiguous(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "x.safetensors")
            save_file({"a": torch.zeros(3), "b": torch.zeros(2, 2)}, path)
            with open(path, "rb") as f:
                n = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(n))
            self.assertEqual(n % 8, 0)
            self.assertEqual(header["a"]["data_offsets"], [0, 12])
            self.assertEqual(header["b"]["data_offsets"], [12, 28])


class ExportTest(unittest.TestCase):
    def test_package_has_exactly_the_state_dict(self):
        m = LstmLM(5, 3, 4, 2)
        with tempfile.TemporaryDirectory() as d:
            cfg = export_module(m, list("abcdé"), d, "tiny")
            self.assertEqual(cfg["num_layers"], 2)
            back = load_file(os.path.join(d, "model.safetensors"))
            sd = m.state_dict()
            self.assertEqual(set(back), set(sd))
            for k in sd:
                self.assertTrue(torch.equal(back[k], sd[k]), k)
            with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
                self.assertEqual(json.load(f)["tokenizer"]["vocab"][4], "é")

    def test_rejects_multi_code_point_vocab(self):
        m = LstmLM(2, 3, 4, 1)
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(ValueError):
                export_module(m, ["a", "bc"], d, "bad")


class TrainStepBudgetTest(unittest.TestCase):
    def test_max_steps_curve_and_val_chars(self):
        import train
        with tempfile.TemporaryDirectory() as d:
            text = os.path.join(d, "t.txt")
            with open(text, "w", encoding="utf-8") as f:
                f.write("the quick brown fox jumps over the lazy dog. " * 200)
            curve = os.path.join(d, "curve.json")
            train.main(["--text", text, "--out", d, "--embedding-dim", "4", "--hidden-size",
                        "8", "--num-layers", "2", "--seq-len", "8", "--batch-size", "4",
                        "--max-steps", "5", "--eval-every", "2", "--eval-chars", "64",
                        "--val-chars", "100", "--threads", "1", "--curve-json", curve])
            with open(curve) as f:
                c = json.load(f)
            self.assertEqual(c["steps"], 5)
            self.assertEqual([p["step"] for p in c["curve"]], [2, 4])
            self.assertEqual(c["curve"][1]["chars"], 4 * 8 * 4)
            self.assertEqual(len(c["history"]), 1)
            self.assertEqual(c["val_loss"], c["best_val_loss"])
            ck = torch.load(os.path.join(d, "best.pt"))
            self.assertEqual(ck["args"]["max_steps"], 5)


if __name__ == "__main__":
    unittest.main()
