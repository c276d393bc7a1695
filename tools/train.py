#!/usr/bin/python3
"""Trains a char-level (or, with --sentencepiece, subword) stacked-LSTM language model.

The last --val-fraction of the text is held out for validation. Training uses
truncated back-propagation through time over --batch-size parallel streams of
the training text, carrying the LSTM state from one --seq-len chunk to the
next (the char-rnn recipe). After every epoch the validation loss (nats/char)
is printed and a resumable checkpoint is written to OUT/checkpoint.pt; the
best model so far goes to OUT/best.pt. Export a package with tools/export.py.

With --sentencepiece MODEL (tools/train_sentencepiece.py) the text is cut at the same character
position, each side encoded with that model, and the validation loss is reported both per piece
and per character (total nats / held-out characters covered by the predicted pieces).

Run with Debian's interpreter: /usr/bin/python3 tools/train.py --help
"""
import argparse
import json
import math
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstm_lm import LstmLM  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, help="UTF-8 training text")
    p.add_argument("--out", required=True, help="directory for checkpoints")
    p.add_argument("--embedding-dim", type=int, default=64)
    p.add_argument("--hidden-size", type=int, default=512)
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--seq-len", type=int, default=128, help="BPTT length (default 128)")
    p.add_argument("--batch-size", type=int, default=64, help="parallel streams (default 64)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--lr-final", type=float, default=1e-4,
                   help="learning rate reached at the last epoch (cosine schedule)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--max-minutes", type=float, default=0,
                   help="stop after this much training time (0 = no limit)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--sentencepiece", default=None,
                   help="SentencePiece model file: train on its piece ids instead of characters")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--max-steps", type=int, default=0,
                   help="stop after this many optimizer steps; the cosine schedule then spans "
                        "these steps instead of --epochs (0 = train --epochs epochs)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="every this many steps, evaluate on the first --eval-chars held-out "
                        "chars and add a point to the curve (0 = only after each epoch)")
    p.add_argument("--eval-chars", type=int, default=16384,
                   help="held-out chars used by the --eval-every points (default 16384)")
    p.add_argument("--val-chars", type=int, default=0,
                   help="validate on only the first this many held-out chars (pieces with "
                        "--sentencepiece; 0 = all)")
    p.add_argument("--curve-json", default="",
                   help="write the training curve (steps, train/validation loss, seconds) and "
                        "the final full validation loss to this JSON file")
    return p.parse_args(argv)


def load_text(path, val_fraction):
    """(vocab, train ids, validation ids, chars per id or None) of a char model."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    vocab = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    n_val = int(len(ids) * val_fraction)
    return vocab, ids[: len(ids) - n_val], ids[len(ids) - n_val:], None


def piece_chars(sp):
    """[V] float: characters each piece stands for (a byte-fallback piece counts 1/byte)."""
    out = []
    for i in range(sp.get_piece_size()):
        if sp.is_byte(i):
            out.append(1.0)
        elif sp.is_control(i) or sp.is_unknown(i):
            out.append(0.0)
        else:
            out.append(float(len(sp.id_to_piece(i).replace("\u2581", " "))))
    return torch.tensor(out, dtype=torch.float64)


def load_pieces(path, val_fraction, model_path):
    """Like load_text, over SentencePiece ids: the text is cut at the same character position."""
    import sentencepiece as spm
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(model_path, "rb") as f:
        proto = f.read()
    sp = spm.SentencePieceProcessor(model_proto=proto)
    cut = len(text) - int(len(text) * val_fraction)
    train_ids = torch.tensor(sp.encode(text[:cut]), dtype=torch.long)
    val_ids = torch.tensor(sp.encode(text[cut:]), dtype=torch.long)
    vocab = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    return vocab, train_ids, val_ids, (piece_chars(sp), proto)


def streams(ids, batch):
    """[T, batch]: the text cut into `batch` contiguous streams."""
    t = len(ids) // batch
    return ids[: t * batch].view(batch, t).t().contiguous()


@torch.no_grad()
def evaluate(model, ids, batch=16, seq_len=256, chars_per_id=None):
    """Mean negative log-likelihood (nats/token) of `ids`, state carried; with chars_per_id
    also nats/char: (nats/token, nats/char or None)."""
    model.eval()
    data = streams(ids, batch)
    state, total, count, chars = None, 0.0, 0, 0.0
    for s in range(0, data.size(0) - 1, seq_len):
        x = data[s: s + seq_len]
        y = data[s + 1: s + 1 + seq_len]
        x = x[: y.size(0)]
        logits, state = model(x, state)
        total += nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        count += y.numel()
        if chars_per_id is not None:
            chars += chars_per_id[y.reshape(-1)].sum().item()
    model.train()
    return total / count, (total / chars if chars_per_id is not None else None)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        torch.set_num_threads(os.cpu_count())
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    if args.sentencepiece:
        vocab, train_ids, val_ids, (chars_per_id, sp_proto) = load_pieces(
            args.text, args.val_fraction, args.sentencepiece)
    else:
        (vocab, train_ids, val_ids, _), chars_per_id, sp_proto = (
            load_text(args.text, args.val_fraction), None, None)
    corpus_units = len(train_ids) + len(val_ids)
    if args.val_chars:
        val_ids = val_ids[: args.val_chars]
    unit = "pieces" if sp_proto else "chars"
    print(f"corpus {args.text}: {corpus_units:,} {unit}, vocab {len(vocab)}, "
          f"train {len(train_ids):,}, validation {len(val_ids):,}", flush=True)

    model = LstmLM(len(vocab), args.embedding_dim, args.hidden_size, args.num_layers,
                   args.dropout)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    start_epoch, best_val, history, train_seconds = 0, math.inf, [], 0.0
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        if ck["vocab"] != vocab:
            sys.exit("checkpoint vocabulary differs from this corpus")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, best_val = ck["epoch"], ck["best_val"]
        history, train_seconds = ck["history"], ck["train_seconds"]
        torch.set_rng_state(ck["rng"])
        print(f"resumed from {ckpt_path} after epoch {start_epoch}", flush=True)
    print(f"model: {args.num_layers}x{args.hidden_size} LSTM, embedding {args.embedding_dim}, "
          f"{params:,} parameters", flush=True)

    data = streams(train_ids, args.batch_size)
    steps_per_epoch = (data.size(0) - 1) // args.seq_len
    total_steps = steps_per_epoch * args.epochs
    epochs = args.epochs
    if args.max_steps:
        if args.resume:
            sys.exit("--max-steps does not combine with --resume")
        total_steps = args.max_steps
        epochs = math.ceil(args.max_steps / steps_per_epoch)
    curve, done = [], 0
    for epoch in range(start_epoch, epochs):
        t0, state, run_loss = time.time(), None, 0.0
        # A random shift per epoch so chunk boundaries move.
        shift = int(torch.randint(0, args.seq_len, (1,)))
        for step in range(steps_per_epoch):
            g = epoch * steps_per_epoch + step
            if args.max_steps and g >= args.max_steps:
                break
            lr = args.lr_final + 0.5 * (args.lr - args.lr_final) * (
                1 + math.cos(math.pi * g / total_steps))
            for group in opt.param_groups:
                group["lr"] = lr
            s = shift + step * args.seq_len
            x = data[s: s + args.seq_len]
            y = data[s + 1: s + 1 + args.seq_len]
            if y.size(0) < x.size(0):
                break
            if state is not None:
                state = tuple(t.detach() for t in state)
            logits, state = model(x, state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            run_loss = loss.item() if step == 0 else 0.98 * run_loss + 0.02 * loss.item()
            done = g + 1
            if args.eval_every and done % args.eval_every == 0:
                el = train_seconds + time.time() - t0
                t_eval = time.time()
                v, _ = evaluate(model, val_ids[: args.eval_chars])
                t0 += time.time() - t_eval  # evaluation is not training time
                curve.append({"step": done, "chars": done * args.seq_len * args.batch_size,
                              "train_loss": round(run_loss, 4), "val_loss_subset": round(v, 4),
                              "seconds": round(el, 1)})
            if step % 20 == 0 or step == steps_per_epoch - 1:
                el = time.time() - t0
                rate = (step + 1) * args.seq_len * args.batch_size / max(el, 1e-9)
                sys.stderr.write(f"\repoch {epoch + 1}/{epochs} step {step + 1}/"
                                 f"{steps_per_epoch} loss {run_loss:.3f} lr {lr:.2e} "
                                 f"{rate:,.0f} chars/s ")
                sys.stderr.flush()
        sys.stderr.write("\n")
        epoch_seconds = time.time() - t0
        train_seconds += epoch_seconds
        val, val_char = evaluate(model, val_ids, chars_per_id=chars_per_id)
        history.append({"epoch": epoch + 1, "train_loss": round(run_loss, 4),
                        "val_loss": round(val, 4), "seconds": round(epoch_seconds, 1)})
        if val_char is not None:
            history[-1]["val_loss_per_char"] = round(val_char, 4)
            print(f"epoch {epoch + 1}: train {run_loss:.4f}  validation {val:.4f} nats/piece "
                  f"= {val_char:.4f} nats/char  ({epoch_seconds:.0f} s)", flush=True)
        else:
            print(f"epoch {epoch + 1}: train {run_loss:.4f}  validation {val:.4f} nats/char  "
                  f"({epoch_seconds:.0f} s)", flush=True)
        meta = {"vocab": vocab, "args": vars(args), "epoch": epoch + 1, "history": history,
                "train_seconds": train_seconds, "corpus": os.path.basename(args.text),
                "corpus_chars": corpus_units}
        if sp_proto is not None:
            # Stored as a uint8 tensor so that torch.load(weights_only=True) reads it.
            meta["tokenizer"] = "sentencepiece"
            meta["sentencepiece_model"] = torch.tensor(list(sp_proto), dtype=torch.uint8)
            meta["corpus_pieces"] = meta["corpus_chars"]
            with open(args.text, encoding="utf-8") as f:
                meta["corpus_chars"] = len(f.read())
            meta["val_loss_per_char"] = val_char
        if val < best_val:
            best_val = val
            torch.save({**meta, "model": model.state_dict(), "val_loss": val},
                       os.path.join(args.out, "best.pt"))
        torch.save({**meta, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "best_val": best_val, "rng": torch.get_rng_state()}, ckpt_path)
        if args.max_steps and done >= args.max_steps:
            break
        if args.max_minutes and train_seconds > args.max_minutes * 60:
            print(f"stopping: --max-minutes {args.max_minutes} reached", flush=True)
            break
    if args.curve_json:
        with open(args.curve_json, "w") as f:
            json.dump({"args": vars(args), "parameters": params, "steps": done,
                       "train_seconds": round(train_seconds, 1),
                       "val_loss": history[-1]["val_loss"] if history else None,
                       "best_val_loss": round(best_val, 4), "curve": curve,
                       "history": history}, f, indent=1)
    print(json.dumps({"best_val_loss": round(best_val, 4), "train_seconds": round(train_seconds)}))


if __name__ == "__main__":
    main()
