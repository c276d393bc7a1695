#!/bin/bash
# The serving benchmark as figures: lstmbench (closed loop) against lstmserve over
# 1..256 concurrent streams on a model, once per precision; writes every point's
# lstmbench --json output to OUT/serving.json and draws OUT/throughput_vs_streams.png
# and OUT/itl_vs_streams.png (bench/serving/plot.py).
#
#   bench/serving_figures.sh [--build DIR] [--model DIR] [--out DIR] [--point 3s]
#       [--streams 1,2,4,8,16,32,64,128,256] [--precisions f32,bf16,int8]
#       [--max-tokens 64] [--threads 1] [--repeats 3]
#
# Defaults: --build build, --model models/shakespeare, --out bench/serving.
# The server runs with --max-batch 256 so that every stream is in the batch, and
# --threads 1 by default (on a machine shared with other busy processes a
# preempted OpenMP thread stalls every step: measured 8 vs 1,385 tokens/s at one
# stream). --repeats R runs the whole sweep R times, precisions interleaved
# (a fresh server each time); the figures show the median and the range.
# Needs build/server/lstmserve, build/client/lstmbench and build/client/lstmctl.
# lstmbench runs on the same machine (one thread per stream): on few cores it
# competes with the server. Each point takes about --point plus the requests
# still in flight at its end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build" model="$root/models/shakespeare" out="$root/bench/serving"
point=3s streams=1,2,4,8,16,32,64,128,256 precisions=f32,bf16,int8 max_tokens=64 threads=1
repeats=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --point) point="$2"; shift 2 ;;
    --streams) streams="$2"; shift 2 ;;
    --precisions) precisions="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    *) echo "serving_figures.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for b in server/lstmserve client/lstmbench client/lstmctl; do
  [ -x "$build/$b" ] || { echo "serving_figures.sh: $build/$b not built" >&2; exit 2; }
done
# shellcheck source=bench/server_lib.sh
source "$root/bench/server_lib.sh"
trap stop_server EXIT
mkdir -p "$out"
name="$(basename "$model")"
tmp="$(mktemp -d)"
points="$tmp/points.jsonl"
: >"$points"
for r in $(seq 1 "$repeats"); do
for p in ${precisions//,/ }; do
  start_server "$build" "$tmp/server_$p.log" --model "$name=$model" --precision "$p" \
    --threads "$threads" --max-batch 256 --max-queue 1024
  for n in ${streams//,/ }; do
    # A short warm-up so each point starts with the batch size's primitives built.
    "$build/client/lstmbench" --server "127.0.0.1:$server_port" --model "$name" \
      --concurrency "$n" --channels 8 --max_tokens 8 --duration 0.2s >/dev/null
    j="$("$build/client/lstmbench" --server "127.0.0.1:$server_port" --model "$name" \
      --concurrency "$n" --channels 8 --max_tokens "$max_tokens" --duration "$point" --json)"
    echo "{\"precision\": \"$p\", \"streams\": $n, \"repeat\": $r, \"result\": $j}" >>"$points"
    tps="$(sed -n 's/.*"tokens_per_second": \([0-9.]*\).*/\1/p' <<<"$j")"
    echo "$p $n streams: $tps tokens/s" >&2
  done
  stop_server
done
done
cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
/usr/bin/python3 - "$points" "$out/serving.json" "$name" "$cpu" "$(nproc)" "$point" \
  "$max_tokens" "$threads" "$repeats" <<'PY'
import json, sys, datetime
pts = [json.loads(l) for l in open(sys.argv[1])]
json.dump({"model": sys.argv[3], "machine": f"{sys.argv[4]}, {sys.argv[5]} logical CPUs",
           "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
           "point_duration": sys.argv[6], "max_tokens": int(sys.argv[7]),
           "server_threads": int(sys.argv[8]), "repeats": int(sys.argv[9]),
           "server_max_batch": 256, "points": pts},
          open(sys.argv[2], "w"), indent=1)
PY
/usr/bin/python3 "$root/bench/serving/plot.py" "$out/serving.json" "$out"
rm -rf "$tmp"
echo "wrote $out/serving.json and figures in $out" >&2
