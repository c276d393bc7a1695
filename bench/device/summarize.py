#!/usr/bin/env python3
"""Combines bench/device/run.sh's raw outputs in OUT_DIR into one markdown report (stdout):
per thread count, µs/step at batch 1 and decode tokens/s per batch of the oneDNN engine
(f32, bf16, int8; from engine_tT.md), PyTorch (pytorch_tT.json) and ONNX Runtime
(ort_tT.json), then the ratios engine / ORT f32 and engine / PyTorch f32 per batch.
Missing inputs leave "–" cells and a note; nothing here fails on a partial run.
  python3 bench/device/summarize.py OUT_DIR THREADS... > OUT_DIR/summary.md
Standard library only.
"""
import json
import os
import sys

SHAPE = "char3x512"
ENGINE_SYSTEMS = ("engine f32", "engine bf16", "engine int8",
                  "bare primitive f32", "bare primitive bf16", "bare primitive int8",
                  "reference f32")
AMX = " [ONEDNN_MAX_CPU_ISA set]"  # engine_amx_tT.md: only where that changes the ISA


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def parse_engine_md(text):
    """engine_bench's first table -> ({system: {"step_us_b1": x, "decode": {batch: tok/s}}},
    header line)."""
    systems, header, columns = {}, "", None
    if not text:
        return systems, header
    lines = text.splitlines()
    header = lines[0] if lines else ""
    for line in lines:
        if line.startswith("| shape | system |"):
            columns = cells(line)
            continue
        if columns is None or not line.startswith("|"):
            if columns is not None and systems:
                break  # end of the first table
            continue
        row = cells(line)
        if len(row) != len(columns) or row[0] != SHAPE:
            continue
        r = {"step_us_b1": number(row[2]), "decode": {}}
        for name, value in zip(columns, row):
            if name.startswith("tok/s b"):
                r["decode"][int(name[len("tok/s b"):])] = number(value)
        systems[row[1]] = r
    return systems, header


def from_json(path, label):
    """pytorch_decode.py / ort_decode.py JSON -> ({label: figures}, json or None)."""
    text = read(path)
    if not text:
        return {}, None
    try:
        j = json.loads(text)
        s = j["shapes"][SHAPE]
    except (ValueError, KeyError):
        return {}, None
    return {label: {"step_us_b1": s.get("step_us_b1"),
                    "decode": {int(b): v for b, v in s["decode_tok_s"].items()}}}, j


def fmt(v, f="%.0f"):
    return "–" if v is None or v <= 0 else f % v


def section(out_dir, threads):
    lines = [f"## {threads} threads", ""]
    engine, header = parse_engine_md(read(os.path.join(out_dir, f"engine_t{threads}.md")))
    pt, ptj = from_json(os.path.join(out_dir, f"pytorch_t{threads}.json"), "PyTorch f32")
    ort, ortj = from_json(os.path.join(out_dir, f"ort_t{threads}.json"), "ONNX Runtime f32")
    if header:
        lines += [header, ""]
    if ptj:
        lines.append(f"- PyTorch {ptj.get('torch')}, {ptj.get('threads')} threads")
    else:
        lines.append("- PyTorch: no figures (see pytorch_t%s.err)" % threads)
    if ortj:
        s = ortj["shapes"][SHAPE]
        methods = ", ".join(f"b{b} {m}" for b, m in s.get("decode_method", {}).items())
        lines.append(f"- ONNX Runtime {ortj.get('onnxruntime')} ({', '.join(ortj.get('providers') or [])}),"
                     f" {ortj.get('threads')} intra-op threads, model {s.get('onnx_source')} "
                     f"(exporter torch {ortj.get('torch')}, opset {ortj.get('opset')}), "
                     f"max |ORT - torch| {s.get('max_abs_diff_vs_torch', '–')}; "
                     f"faster call per batch: {methods}")
    else:
        lines.append("- ONNX Runtime: no figures (see ort_t%s.err)" % threads)
    if not engine:
        lines.append("- engine: no figures (see engine_t%s.err)" % threads)
    lines.append("")
    rows = {k: engine[k] for k in ENGINE_SYSTEMS if k in engine}
    amx, amx_header = parse_engine_md(read(os.path.join(out_dir, f"engine_amx_t{threads}.md")))
    for k in ("engine bf16", "engine int8"):
        if k in amx:
            rows[k + AMX] = amx[k]
    if amx_header:
        lines.insert(-1, f"- {AMX.strip()}: {amx_header}")
    rows.update(pt)
    rows.update(ort)
    batches = sorted({b for r in rows.values() for b in r["decode"]})
    if rows:
        lines.append("| system | µs/step b1 | " + " | ".join(f"tok/s b{b}" for b in batches) + " |")
        lines.append("|---|---|" + "---|" * len(batches))
        for name, r in rows.items():
            lines.append(f"| {name} | {fmt(r['step_us_b1'])} | "
                         + " | ".join(fmt(r["decode"].get(b)) for b in batches) + " |")
        lines.append("")
    pairs = [(e, b) for b in ("ONNX Runtime f32", "PyTorch f32")
             for e in ("engine f32", "engine bf16", "engine int8", "engine bf16" + AMX,
                       "engine int8" + AMX) if e in rows and b in rows]
    if pairs:
        lines.append("Ratios of decode tokens/s (> 1: the engine is faster):")
        lines.append("")
        lines.append("| ratio | " + " | ".join(f"b{b}" for b in batches) + " |")
        lines.append("|---|" + "---|" * len(batches))
        for e, b in pairs:
            cells_ = []
            for n in batches:
                x, y = rows[e]["decode"].get(n), rows[b]["decode"].get(n)
                cells_.append(fmt(x / y, "%.2f") if x and y else "–")
            lines.append(f"| {e} / {b} | " + " | ".join(cells_) + " |")
        lines.append("")
    return lines


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: summarize.py OUT_DIR THREADS...")
    out_dir = sys.argv[1]
    lines = [f"# {SHAPE} decode (V=65, E=H=512, 3 layers, head + log_softmax), batch-1 µs/step "
             "and tokens/s per batch", ""]
    system = read(os.path.join(out_dir, "system.txt"))
    if system:
        lines += ["```", system.strip(), "```", ""]
    isa = read(os.path.join(out_dir, "onednn_isa.txt"))
    if isa:
        lines += ["oneDNN (ONEDNN_VERBOSE=1, one tiny engine_bench run):", "", "```", isa.strip(),
                  "```", ""]
    for t in sys.argv[2:]:
        lines += section(out_dir, t)
    serving = read(os.path.join(out_dir, "serving_t2.txt"))
    lines += ["## serving_bench --threads 2", ""]
    lines += ["```", serving.strip(), "```"] if serving else ["no output (see serving_t2.err)"]
    steps = read(os.path.join(out_dir, "steps.log"))
    if steps:
        lines += ["", "## Steps (exit status, seconds)", "", "```", steps.strip(), "```"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
