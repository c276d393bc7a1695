#!/bin/bash
# Runs the engine benchmark end to end: PyTorch baseline, then engine_bench
# (oneDNN engine f32/bf16/int8, bare primitive, reference engine), and writes
# a markdown table with ratios.
#
#   bench/run_engine_bench.sh [build-dir] [out.md] [-- extra engine_bench flags]
#
# Environment: THREADS (default 0 = all cores), MIN_TIME (0.3), REPS (3),
# SHAPES (demo,char3x512,word2x650,big4x1024), PYTHON (/usr/bin/python3),
# DEMO_MODEL (default <repo>/models/shakespeare).
# Builds engine_bench in build-dir (default build-bench, Release) if needed.
# Results are only meaningful on an otherwise idle machine; compare ratios
# from the same run.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$repo/build-bench}"
out="${2:-$repo/bench/engine_bench.md}"
shift $(( $# > 2 ? 2 : $# ))
[[ "${1:-}" == "--" ]] && shift
threads="${THREADS:-0}"
min_time="${MIN_TIME:-0.3}"
reps="${REPS:-3}"
shapes="${SHAPES:-demo,char3x512,word2x650,big4x1024}"
python="${PYTHON:-/usr/bin/python3}"
demo="${DEMO_MODEL:-$repo/models/shakespeare}"

if [[ ! -x "$build/bench/engine_bench" ]]; then
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target engine_bench
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "PyTorch baseline..." >&2
"$python" "$repo/bench/pytorch_decode.py" --threads "$threads" --min-time "$min_time" \
  --reps "$reps" --shapes "$shapes" --demo-model "$demo" >"$tmp/pytorch.json"
echo "oneDNN engine..." >&2
"$build/bench/engine_bench" --threads="$threads" --min_time="$min_time" --reps="$reps" \
  --shapes="$shapes" --demo_model="$demo" --pytorch_json="$tmp/pytorch.json" --markdown="$out" "$@"
echo "wrote $out" >&2
