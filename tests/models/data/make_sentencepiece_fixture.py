#!/usr/bin/python3
"""Writes tests/models/data/sp_bpe400.model, the SentencePiece fixture of the
C++ tokenizer tests: BPE, 400 pieces (256 of them byte-fallback pieces), trained
on the first 200,000 characters of tinyshakespeare plus one line of non-ASCII
text. Identity normalization and no whitespace folding, so newlines and runs of
spaces survive a round trip; characters outside the trained set (e.g. 'z',
CJK, emoji) are byte-fallback pieces, which the streaming tests need.

  /usr/bin/python3 tests/models/data/make_sentencepiece_fixture.py CORPUS
"""
import os
import sys
import tempfile

import sentencepiece as spm


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/tinyshakespeare.txt"
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sp_bpe400")
    with open(corpus, encoding="utf-8") as f:
        text = f.read()[:200000]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "naïve café — Ünïcödé\n")
        spm.SentencePieceTrainer.train(
            input=path, model_prefix=out, vocab_size=400, model_type="bpe",
            byte_fallback=True, character_coverage=0.995, bos_id=-1, eos_id=-1, unk_id=0,
            normalization_rule_name="identity", remove_extra_whitespaces=False,
            split_by_whitespace=True, minloglevel=2)
    os.remove(out + ".vocab")


if __name__ == "__main__":
    main()
