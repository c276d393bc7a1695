#!/usr/bin/python3
"""Writes the committed seed corpora of the fuzz targets (tests/fuzz/corpus/).

Plain Python (no numpy/torch/protobuf): safetensors images and serialized
lstmserve.v1 requests are encoded by hand. Deterministic; rerun after changing
it and commit the result:  /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import json
import math
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


# ---- config.json -------------------------------------------------------------
def config(vocab=None, byte=False, e=2, h=3, l=1, **extra):
    tok = {"type": "byte"} if byte else {"type": "char", "vocab": vocab or ["a", "b", "c"]}
    c = {"format": "lstmserve-lm", "format_version": 1, "name": "seed", "tokenizer": tok,
         "embedding_dim": e, "hidden_size": h, "num_layers": l}
    c.update(extra)
    return json.dumps(c, ensure_ascii=False)


def config_seeds():
    t = "model_config_fuzzer"
    with open(os.path.join(ROOT, "models/shakespeare/config.json"), "rb") as f:
        write(t, "shakespeare.json", f.read())
    write(t, "byte.json", config(byte=True, l=2, corpus="x.txt", loss=1.5))
    write(t, "unicode.json", config(vocab=["\n", "é", "€", "😀", "\u0000", "\\"], e=4, h=5, l=3,
                                    meta={"nested": [1, 2.5, None, True, "s"]}))
    write(t, "escaped.json", '{"format":"lstmserve-lm","format_version":1,"name":"\\u00e9",'
                             '"tokenizer":{"type":"char","vocab":["\\ud83d\\ude00","\\n"]},'
                             '"embedding_dim":65536,"hidden_size":1,"num_layers":64}')
    write(t, "bad_dims.json", config(e=0, h=-1, l=65))
    write(t, "duplicate_vocab.json", config(vocab=["a", "a"]))
    write(t, "two_chars.json", config(vocab=["ab"]))
    write(t, "bad_type.json", config().replace('"char"', '"word"'))


# ---- model.safetensors -------------------------------------------------------
def f16(x):
    return struct.pack("<e", x)


def bf16(x):
    return struct.pack("<f", x)[2:]


def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, raw bytes)] in data order."""
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def values(n, dtype, start=0):
    xs = [math.sin(start + i) for i in range(n)]
    if dtype == "F32":
        return b"".join(struct.pack("<f", x) for x in xs)
    if dtype == "F16":
        return b"".join(f16(x) for x in xs)
    return b"".join(bf16(x) for x in xs)


def model(v=3, e=2, h=2, l=1, dtype="F32"):
    """The tensors of a valid package with V=v, E=e, H=h, L=l."""
    shapes = [("embedding.weight", [v, e])]
    for k in range(l):
        shapes += [(f"lstm.weight_ih_l{k}", [4 * h, e if k == 0 else h]),
                   (f"lstm.weight_hh_l{k}", [4 * h, h]),
                   (f"lstm.bias_ih_l{k}", [4 * h]), (f"lstm.bias_hh_l{k}", [4 * h])]
    shapes += [("head.weight", [v, h]), ("head.bias", [v])]
    out = []
    for i, (name, shape) in enumerate(shapes):
        out.append((name, dtype, shape, values(math.prod(shape), dtype, 10 * i)))
    return out


def safetensors_seeds():
    t = "safetensors_fuzzer"
    write(t, "model_f32_l1.safetensors", safetensors(model()))
    write(t, "model_bf16_l2.safetensors", safetensors(model(v=2, e=1, h=1, l=2, dtype="BF16")))
    write(t, "model_f16_l1_meta.safetensors",
          safetensors(model(v=2, e=3, h=1, dtype="F16"), metadata={"format": "pt"}, pad=False))
    special = f16(6e-8) + f16(-0.0) + f16(65504.0) + f16(float("inf"))
    write(t, "f16_special.safetensors", safetensors([("x", "F16", [2, 2], special)]))
    write(t, "nan_bf16.safetensors", safetensors([("x", "BF16", [1], bf16(float("nan")))]))
    write(t, "empty_tensors.safetensors",
          safetensors([("a", "F32", [0, 5], b""), ("b", "F32", [2], values(2, "F32")),
                       ("c", "F16", [], f16(1.0))]))
    overlap = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' \
              b'"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    write(t, "overlap.safetensors", struct.pack("<Q", len(overlap)) + overlap + bytes(8))
    write(t, "header_past_end.safetensors", struct.pack("<Q", 1000) + b"{}")
    write(t, "empty_header.safetensors", struct.pack("<Q", 2) + b"{}")


# ---- tokenizer: [tokenizer selector][limit/split][text] -------------------------
def tokenizer_seeds():
    t = "tokenizer_fuzzer"
    write(t, "shakespeare_text", b"\x00\x40" + b"ROMEO:\nBut soft, what light through yonder window breaks?")
    write(t, "shakespeare_oov", b"\x00\x10" + "Héllo {world}".encode())
    write(t, "byte_text", b"\x01\x03" + "any bytes é€😀".encode())
    write(t, "byte_limit", b"\x01\x00" + b"ab")
    write(t, "multibyte_text", b"\x02\x05" + "a é€😀\U0010FFFF\x00a".encode())
    write(t, "invalid_utf8", b"\x02\x02" + b"a\xc3(\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82")
    write(t, "overlong", b"\x01\x01" + b"\xc0\xaf\xe0\x80\xaf\xf0\x80\x80\xaf")
    write(t, "truncated", b"\x02\x01" + "€".encode()[:2])


# ---- serialized lstmserve.v1 requests -------------------------------------------
def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, s):
    s = s.encode() if isinstance(s, str) else s
    return varint(num << 3 | 2) + varint(len(s)) + s


def field_float(num, x):
    return varint(num << 3 | 5) + struct.pack("<f", x)


def generate(model="shakespeare", prompt=None, max_tokens=None, temperature=None, top_k=None,
             top_p=None, seed=None, stop=(), logprobs=None, return_tokens=None, request_id=None):
    m = field_bytes(1, model)
    if prompt is not None:
        m += field_bytes(2, prompt)
    if max_tokens is not None:
        m += field_varint(3, max_tokens)
    if temperature is not None:
        m += field_float(4, temperature)
    if top_k is not None:
        m += field_varint(5, top_k)
    if top_p is not None:
        m += field_float(6, top_p)
    if seed is not None:
        m += field_varint(7, seed)
    for s in stop:
        m += field_bytes(8, s)
    if logprobs is not None:
        m += field_varint(9, logprobs)
    if return_tokens is not None:
        m += field_varint(10, int(return_tokens))
    if request_id is not None:
        m += field_bytes(11, request_id)
    return m


def request_seeds():
    t = "generate_request_fuzzer"
    write(t, "minimal", generate(prompt="ROMEO:", max_tokens=16))
    write(t, "all_fields", generate(prompt="First Citizen:\n", max_tokens=4096, temperature=0.8,
                                    top_k=40, top_p=0.95, seed=2**64 - 1, stop=["\n\n", "END"],
                                    logprobs=20, return_tokens=True, request_id="req-1"))
    write(t, "greedy", generate(prompt="a", max_tokens=1, temperature=0.0, top_p=1.0))
    write(t, "limits_exceeded", generate(prompt="x", max_tokens=4097, top_k=-1, logprobs=21,
                                         stop=["s"] * 9))
    write(t, "bad_floats", generate(prompt="x", max_tokens=5, temperature=float("nan"),
                                    top_p=0.0))
    write(t, "unicode_prompt", generate(prompt="café €😀", max_tokens=2, stop=["é", ""]))
    write(t, "long_prompt", generate(prompt="to be or not " * 40, max_tokens=3))
    write(t, "prompt_over_limit", generate(prompt="a" * 4097, max_tokens=3))
    # As a ScoreRequest: text = field 2, context = field 3.
    write(t, "score", field_bytes(1, "m") + field_bytes(2, "What light") +
          field_bytes(3, "But soft, ") + field_bytes(4, "id"))
    write(t, "invalid_utf8", field_bytes(2, b"\xff\xfe") + field_varint(3, 1))


# ---- stop strings: [n stops][stop 0xFF ... 0xFF chunk 0xFF chunk ...] -------------
def stop_matcher_seeds():
    t = "stop_matcher_fuzzer"
    sep = b"\xff"

    def seed(stops, chunks):
        return bytes([len(stops)]) + sep.join([s.encode() for s in stops + chunks])

    write(t, "no_stops", seed([], ["Hello", ", world"]))
    write(t, "split_stop", seed(["\n\n", "END"], ["First line\n", "\nSecond", " END"]))
    write(t, "overlapping", seed(["abab", "bab", "c"], ["a", "bab", "ab", "c"]))
    write(t, "prefix_never_completes", seed(["stop"], ["st", "o", "p!", "sto"]))
    write(t, "unicode", seed(["é€", "😀"], ["caf\u00e9", "\u20ac", "x😀"]))


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    config_seeds()
    safetensors_seeds()
    tokenizer_seeds()
    request_seeds()
    stop_matcher_seeds()


if __name__ == "__main__":
    main()
