#!/usr/bin/python3
"""Imports a trained stacked-LSTM language model as an lstmserve package (models/FORMAT.md).

Sources (one of):
  --checkpoint FILE   a tools/train.py checkpoint, a bare state_dict, or a whole pickled module
                      (torch.save(model), e.g. word_language_model's RNNModel; add --code-dir).
  --onnx FILE         Gather -> LSTM node(s) -> MatMul/Gemm (+Add) -> optional (Log)Softmax, as
                      torch.onnx.export and tf2onnx (Keras Embedding/LSTM/Dense) write it.
Vocabulary (train.py checkpoints carry theirs): --vocab FILE (one token per line, line N = id N;
  or a JSON array in FILE.json), --word-corpus DIR (word_language_model's data.Corpus dictionary
  rebuilt from train.txt, valid.txt, test.txt), --sentencepiece FILE, --byte.

WARNING: unpickling runs code. A checkpoint is first read with torch.load(weights_only=True), then
(torch 1.13's reader lacks floats) with the same allow-list of tensor types over every pickle
opcode; that suffices for train.py checkpoints and state_dicts. A whole pickled module needs real
unpickling, which executes whatever the file says. Import only files you trust.

Every tensor of the source must be used (else the import fails naming the leftovers). Every
import ends with a self-check: the written package, read back by tools/lstm_reference.py (numpy,
no torch), against the source framework's own forward on a probe text; a log-prob difference over
1e-4 (f32) leaves nothing written and exits 1 with its size.

  /usr/bin/python3 tools/export.py --checkpoint runs/x/best.pt --out models/x
  /usr/bin/python3 tools/export.py --checkpoint model.pt --code-dir word_language_model \\
      --word-corpus word_language_model/data/wikitext-2 --out models/wikitext2
  /usr/bin/python3 tools/export.py --onnx keras.onnx --vocab words.txt --out models/keras-lm
"""
import argparse
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from importers import vocab as vocab_sources  # noqa: E402
from importers.package import ImportFailure, write_package  # noqa: E402

TOLERANCES = {"f32": 1e-4, "f16": 1e-2, "bf16": 1e-1}


def _train_py_metadata(ck, params):
    import torch
    a = ck["args"]
    meta = {
        "corpus": ck.get("corpus"),
        "corpus_chars": ck.get("corpus_chars"),
        "validation_fraction": a.get("val_fraction"),
        "epochs_trained": ck.get("epoch"),
        "training_seconds": round(ck.get("train_seconds", 0)),
        "training_machine": f"{platform.machine()} {os.cpu_count()} cores, "
                            f"torch {torch.__version__}",
        "parameters": params,
        "training": {k: a[k] for k in ("dropout", "seq_len", "batch_size", "lr", "lr_final",
                                       "epochs", "clip", "seed") if k in a},
        "history": ck.get("history"),
    }
    val = ck.get("val_loss", ck.get("best_val", 0.0))
    if ck.get("tokenizer") == "sentencepiece":
        meta["validation_loss_nats_per_piece"] = round(val, 4)
        meta["validation_loss_nats_per_char"] = round(ck.get("val_loss_per_char") or 0.0, 4)
        meta["corpus_pieces"] = ck.get("corpus_pieces")
    else:
        meta["validation_loss_nats_per_char"] = round(val, 4)
    return meta


def _vocabulary(args, extra, tmpdir):
    given = [x for x in ("vocab", "word_corpus", "sentencepiece") if getattr(args, x)]
    given += ["byte"] if args.byte else []
    if len(given) > 1:
        raise ImportFailure(f"give one vocabulary source, got {given}")
    if args.vocab:
        return vocab_sources.from_vocab_file(args.vocab, args.eos_token, args.unk_token)
    if args.word_corpus:
        return vocab_sources.from_word_corpus(args.word_corpus, args.eos_token, args.unk_token)
    if args.sentencepiece:
        return vocab_sources.from_sentencepiece(args.sentencepiece)
    if args.byte:
        return vocab_sources.byte_vocab()
    if extra.get("tokenizer") == "sentencepiece":  # train.py --sentencepiece checkpoint
        path = os.path.join(tmpdir, "tokenizer.model")
        with open(path, "wb") as f:
            f.write(bytes(extra["sentencepiece_model"].tolist()))
        return vocab_sources.from_sentencepiece(path)
    if "vocab" in extra:
        return vocab_sources.char_vocab(extra["vocab"])
    raise ImportFailure("no vocabulary: give --vocab, --word-corpus, --sentencepiece or --byte "
                        "(only train.py checkpoints carry their own)")


def run(args):
    import tempfile
    if bool(args.checkpoint) == bool(args.onnx):
        raise ImportFailure("give exactly one of --checkpoint and --onnx")
    extra, metadata = {}, {}
    if args.checkpoint:
        from importers import torch_source
        names = torch_source.parse_map(args.map) if args.map else None
        obj, how = torch_source.load_checkpoint(args.checkpoint, args.code_dir)
        model, extra = torch_source.from_object(obj, names, f"--checkpoint {args.checkpoint}")
        model.notes.append(f"read with torch.load: {how}")
        if extra:
            params = sum(v.numel() for v in extra["model"].values())
            metadata = _train_py_metadata(extra, params)
        source = os.path.basename(args.checkpoint)
    else:
        if args.map or args.code_dir:
            raise ImportFailure("--map and --code-dir apply to --checkpoint only")
        from importers import onnx_source
        model = onnx_source.convert(onnx_source.load(args.onnx), f"--onnx {args.onnx}")
        source = os.path.basename(args.onnx)
    with tempfile.TemporaryDirectory() as tmpdir:
        voc = _vocabulary(args, extra, tmpdir)
        if voc.size != model.vocab_size:
            raise ImportFailure(f"{voc.source}: {voc.size} tokens, but the model's embedding "
                                f"has {model.vocab_size} rows")
        metadata.setdefault("source", source)
        name = args.name or os.path.basename(os.path.normpath(args.out))
        config, report = write_package(model, voc.tokenizer, voc.encode, args.out, name,
                                       metadata, args.dtype, voc.files,
                                       tolerance=TOLERANCES[args.dtype])
    return model, config, report


def export_module(module, vocab, out_dir, name, dtype="f32", metadata=None, tokenizer=None):
    """Python API: writes an embedding/lstm/head module (tools/lstm_lm.py's LstmLM or any module
    with those or word_language_model's names) with a char vocabulary `vocab`, or with
    tokenizer={"type": "byte"}; self-checked like the command line. Returns the config."""
    from importers import torch_source
    try:
        model, _ = torch_source.from_object(module, None, "module")
        voc = (vocab_sources.byte_vocab() if tokenizer == {"type": "byte"}
               else vocab_sources.char_vocab(vocab, "vocab"))
        config, _ = write_package(model, voc.tokenizer, voc.encode, out_dir, name, metadata,
                                  dtype, voc.files, tolerance=TOLERANCES[dtype])
    except ImportFailure as e:
        raise ValueError(str(e)) from e
    return config


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="train.py checkpoint, state_dict or pickled module "
                   "(unpickling runs code: trusted files only)")
    p.add_argument("--onnx", help="ONNX model file")
    p.add_argument("--code-dir", help="directory holding the pickled module's class definition "
                   "(put on the import path)")
    p.add_argument("--map", help="embedding=NAME,lstm=NAME,head=NAME: the submodule names")
    p.add_argument("--vocab", help="vocabulary file: one token per line (line N = id N), or a "
                   "JSON array when the name ends in .json")
    p.add_argument("--word-corpus", help="word_language_model data directory "
                   "(train.txt, valid.txt, test.txt): rebuilds its dictionary")
    p.add_argument("--sentencepiece", help="SentencePiece model file (copied into the package)")
    p.add_argument("--byte", action="store_true", help="byte vocabulary (V = 256)")
    p.add_argument("--eos-token", default="<eos>", help="word vocabularies: the end-of-line "
                   "token (default <eos>)")
    p.add_argument("--unk-token", default="<unk>", help="word vocabularies: the unknown-word "
                   "token, used when the vocabulary has it (default <unk>)")
    p.add_argument("--out", required=True, help="package directory to write")
    p.add_argument("--name", help="model name (config.json \"name\"; default: the --out name)")
    p.add_argument("--dtype", choices=sorted(TOLERANCES), default="f32",
                   help="weight dtype in the package (default f32)")
    args = p.parse_args(argv)
    try:
        model, config, report = run(args)
    except ImportFailure as e:
        print(f"export.py: {e}", file=sys.stderr)
        return 1
    for note in model.notes:
        print(note)
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    proj = f", projection {model.proj_size}" if model.proj_size else ""
    print(f"wrote {args.out}: {config['num_layers']}x{config['hidden_size']} LSTM{proj}, "
          f"embedding {config['embedding_dim']}, V={model.vocab_size} "
          f"({config['tokenizer']['type']}), model.safetensors {size:,} bytes; self-check: "
          f"max |log-prob diff| {report['max_abs_diff']:.2e} over {report['probe_tokens']} "
          f"probe tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
