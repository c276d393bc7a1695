#!/usr/bin/python3
"""Exports bench/ort_decode.py's model (as ort_decode.py does) into DIR/model.onnx and writes
DIR/cases.json: inputs and torch's outputs for decode (T=1; N=1, 8, 256) and a short prefill
(T=5, N=1), from random states. check.js then runs the model in ONNX Runtime (its Node.js
binding, the same core library as the Python wheel) and compares. Local check of the export
where no Python onnxruntime is installed:
  /usr/bin/python3 bench/device/onnx_check/make_cases.py /tmp/onnx_check
  (cd /tmp/onnx_check && npm install --ignore-scripts onnxruntime-node@1.30.0)
  node bench/device/onnx_check/check.js /tmp/onnx_check [dist kit's onnx/char3x512.onnx]
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import ort_decode  # noqa: E402


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    V, E, H, L = ort_decode.SHAPES["char3x512"]
    model = ort_decode.make_model(torch, V, E, H, L, 0)
    ort_decode.export(torch, model, L, H, os.path.join(out, "model.onnx"))
    rng = np.random.default_rng(3)
    cases = []
    for T, N in ((1, 1), (1, 8), (1, 256), (5, 1)):
        tokens = rng.integers(0, V, (T, N), dtype=np.int64)
        h = rng.standard_normal((L, N, H)).astype(np.float32)
        c = rng.standard_normal((L, N, H)).astype(np.float32)
        with torch.no_grad():
            want = model(torch.from_numpy(tokens), torch.from_numpy(h), torch.from_numpy(c))
        cases.append({"T": T, "N": N, "tokens": tokens.ravel().tolist(),
                      "h": h.ravel().tolist(), "c": c.ravel().tolist(),
                      "out": [w.numpy().ravel().tolist() for w in want]})
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"L": L, "H": H, "V": V, "cases": cases}, f)
    print(f"wrote {out}/model.onnx and {out}/cases.json", file=sys.stderr)


if __name__ == "__main__":
    main()
