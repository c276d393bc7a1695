#!/bin/bash
# The whole depth study: train the sweep, export the best model per depth,
# measure serving cost, draw the figures, print the table.
#
#   bench/depth/run.sh [--budget short|medium|long] [--build DIR] [--run DIR] [--text FILE]
#
# short (default): 40 optimizer steps of 16x64 chars per run, 3 learning rates x
#   4 depths, 2 runs at a time with one torch thread each (what fitted a shared
#   2-core machine; see RESULTS.md). long: 4000 steps of 32x64 chars (8.2 epochs),
#   validation on the whole held-out split. medium: 160 steps of 32x64 chars
#   (0.33 epoch), the same validation as short.
# Figures go to bench/depth/ only with --figures (default: RUN).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
budget=short build="$root/build" run="$root/bench/depth/out"
text="$root/../shared/data/tinyshakespeare.txt" figures=""
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) budget="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --run) run="$2"; shift 2 ;;
    --text) text="$2"; shift 2 ;;
    --figures) figures="$2"; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
figures="${figures:-$run}"
py=/usr/bin/python3
study="$root/bench/depth/study.py"
mkdir -p "$run"
"$py" "$study" train --budget "$budget" --run "$run" --text "$text"
"$py" "$study" export --run "$run"
TEXT="$text" nice -n 10 "$root/bench/depth/serve_bench.sh" "$run" "$build"
"$py" "$study" plot --run "$run" --figures "$figures"
"$py" "$study" table --run "$run"
