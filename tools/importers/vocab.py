"""Vocabulary sources: --vocab FILE, --word-corpus DIR, --sentencepiece FILE, a char list.

Each returns a Vocabulary: the package's "tokenizer" object, the source-side encoder used by the
self-check (built from the source's own vocabulary, not from the package), the vocabulary size,
and the files the package must carry.
"""
import dataclasses
import json
import os

from importers.package import ImportFailure


@dataclasses.dataclass
class Vocabulary:
    tokenizer: dict
    size: int
    encode: object                # text -> ids, the source's own rules
    files: dict = dataclasses.field(default_factory=dict)  # package name -> source path
    source: str = ""


def char_vocab(chars, source="train.py checkpoint"):
    chars = list(chars)
    for i, ch in enumerate(chars):
        if not isinstance(ch, str) or len(ch) != 1:
            raise ImportFailure(f"{source}: vocab[{i}] = {ch!r} is not exactly one code point; "
                                f"a char vocabulary needs one code point per entry")
    if len(set(chars)) != len(chars):
        raise ImportFailure(f"{source}: the char vocabulary has duplicates")
    index = {c: i for i, c in enumerate(chars)}

    def encode(text):
        return [index[c] for c in text]
    return Vocabulary({"type": "char", "vocab": chars}, len(chars), encode, source=source)


def word_vocab(words, eos_token, unk_token, source):
    words = list(words)
    index = {}
    for i, w in enumerate(words):
        if w in index:
            raise ImportFailure(f"{source}: word {w!r} appears twice (ids {index[w]} and {i})")
        if not w or any(ch.isspace() for ch in w):
            raise ImportFailure(f"{source}: vocab entry {i} ({w!r}) is empty or holds whitespace; "
                                f"a word vocabulary's entries are whitespace-free words")
        index[w] = i
    if eos_token not in index:
        raise ImportFailure(f"{source}: the end-of-line token {eos_token!r} is not in the "
                            f"vocabulary (--eos-token names it)")
    unk = unk_token if unk_token in index else None

    def encode(text):  # data.Corpus: each line's words + eos
        ids = []
        lines = text.split("\n")
        for n, line in enumerate(lines):
            ids.extend(index[w] if w in index else index[unk] for w in line.split())
            if n + 1 < len(lines):
                ids.append(index[eos_token])
        return ids
    tok = {"type": "word", "vocab": words, "eos_token": eos_token, "unk_token": unk}
    return Vocabulary(tok, len(words), encode, source=source)


def from_vocab_file(path, eos_token="<eos>", unk_token="<unk>"):
    """--vocab FILE: one token per line (line N = id N), or a JSON array (*.json).

    A word vocabulary when it holds the end-of-line token, else a char vocabulary (every line one
    code point; newline itself can only be given in the JSON form)."""
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    if path.endswith(".json"):
        tokens = json.loads(raw)
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ImportFailure(f"--vocab {path}: a .json vocabulary must be an array of strings")
    else:
        tokens = raw.split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        tokens = [t[:-1] if t.endswith("\r") else t for t in tokens]
    if not tokens:
        raise ImportFailure(f"--vocab {path}: empty")
    if eos_token in tokens:
        return word_vocab(tokens, eos_token, unk_token, f"--vocab {path}")
    if all(len(t) == 1 for t in tokens):
        return char_vocab(tokens, f"--vocab {path}")
    bad = next(t for t in tokens if len(t) != 1)
    raise ImportFailure(f"--vocab {path}: neither a word vocabulary (no end-of-line token "
                        f"{eos_token!r}; name yours with --eos-token) nor a char vocabulary "
                        f"(entry {bad!r} is not one character)")


def from_word_corpus(directory, eos_token="<eos>", unk_token="<unk>"):
    """--word-corpus DIR: word_language_model's data.Corpus dictionary, rebuilt exactly:
    train.txt, valid.txt, test.txt in that order; each line's line.split() + ['<eos>'];
    a word gets the next id when first seen."""
    words, seen = [], set()
    for name in ("train.txt", "valid.txt", "test.txt"):
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise ImportFailure(f"--word-corpus {directory}: {name} is missing (data.Corpus "
                                f"reads train.txt, valid.txt and test.txt)")
        with open(path, "r", encoding="utf8") as f:
            for line in f:
                for w in line.split() + [eos_token]:
                    if w not in seen:
                        seen.add(w)
                        words.append(w)
    return word_vocab(words, eos_token, unk_token, f"--word-corpus {directory}")


def from_sentencepiece(path):
    import sentencepiece as spm
    try:
        sp = spm.SentencePieceProcessor(model_file=path)
    except (OSError, RuntimeError) as e:
        raise ImportFailure(f"--sentencepiece {path}: not a SentencePiece model: {e}") from e
    return Vocabulary({"type": "sentencepiece", "model_file": "tokenizer.model"},
                      sp.get_piece_size(), lambda text: sp.encode(text),
                      files={"tokenizer.model": path}, source=f"--sentencepiece {path}")


def byte_vocab():
    return Vocabulary({"type": "byte"}, 256, lambda text: list(text.encode("utf-8")),
                      source="byte")
