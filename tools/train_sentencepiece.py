#!/usr/bin/python3
"""Trains a SentencePiece tokenizer for an lstmserve subword model (python3-sentencepiece).

Trained on the text minus its last --val-fraction (the held-out split tools/train.py uses), so
the tokenizer never sees the held-out text. Settings chosen so that decode(encode(text)) == text
for any UTF-8 text: identity normalization, whitespace kept as is, "\\n" a piece of its own,
byte fallback for characters outside the vocabulary, no dummy prefix, no BOS/EOS.

  /usr/bin/python3 tools/train_sentencepiece.py --text corpus.txt --out tokenizer.model
"""
import argparse
import io

import sentencepiece as spm


def train(text, vocab_size, model_type="bpe"):
    """The serialized SentencePiece model (bytes) trained on `text`."""
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.split("\n")), model_writer=proto, vocab_size=vocab_size,
        model_type=model_type, character_coverage=1.0, byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        user_defined_symbols=["\n"], add_dummy_prefix=False, bos_id=-1, eos_id=-1, unk_id=0,
        minloglevel=2, num_threads=1, hard_vocab_limit=False)
    return proto.getvalue()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, help="UTF-8 corpus")
    p.add_argument("--out", required=True, help="SentencePiece model file to write")
    p.add_argument("--vocab-size", type=int, default=2000)
    p.add_argument("--model-type", choices=("bpe", "unigram"), default="bpe")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="last fraction of the text left out of tokenizer training (default 0.1)")
    args = p.parse_args(argv)
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    text = text[: len(text) - int(len(text) * args.val_fraction)]
    model = train(text, args.vocab_size, args.model_type)
    with open(args.out, "wb") as f:
        f.write(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    print(f"wrote {args.out}: {sp.get_piece_size()} pieces, {len(model):,} bytes")


if __name__ == "__main__":
    main()
