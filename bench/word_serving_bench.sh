#!/bin/bash
# Serving a word-level 2x650, V = 10,000 model (random weights) at 1 and 64
# streams, in one sitting: the engine alone (engine_bench, batch 1 and 64
# decode), the engine inside an in-process server (serving_bench: engine
# alone vs served in one process), and a separate lstmserve process under
# lstmbench (closed loop, sampled text). Prints the raw outputs; the table
# in bench/RESULTS.md is copied from them.
#
#   bench/word_serving_bench.sh [build-dir]      (default build/)
#
# Environment: DURATION (10s per served measurement), MAX_TOKENS (128),
# THREADS (engine compute threads everywhere; 0 = all cores, the default).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$repo/build}"
duration="${DURATION:-10s}"
max_tokens="${MAX_TOKENS:-128}"
threads="${THREADS:-0}"
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== machine"; nproc; lscpu | grep -m1 'Model name' || true; uptime
echo "== engine_bench (engine alone, f32)"
"$build/bench/engine_bench" --shapes=word2x650 --precisions=f32 --batches=1,64 --reps=3 \
  --threads="$threads" \
  --min_time=1
for streams in 1 64; do
  echo "== serving_bench --streams $streams (engine alone vs in-process server)"
  "$build/bench/serving_bench" --word --vocab 10000 --embedding 650 --hidden 650 --layers 2 \
    --streams "$streams" --max_tokens "$max_tokens" --prompt_tokens 16 --duration "$duration" \
    --threads "$threads"
done

echo "== lstmserve + lstmbench (separate processes)"
/usr/bin/python3 "$repo/bench/word_model_package.py" --out "$tmp/word2x650"
"$build/server/lstmserve" --model "word2x650=$tmp/word2x650" --listen 127.0.0.1:0 \
  --request_log none --threads "$threads" 2>"$tmp/server.log" &
server_pid=$!
port=""
for _ in $(seq 600); do
  port="$(sed -n 's/.*serving .* on port \([0-9]*\).*/\1/p' "$tmp/server.log")"
  [[ -n "$port" ]] && break
  sleep 0.2
done
[[ -n "$port" ]] || { cat "$tmp/server.log"; exit 1; }
for streams in 1 64; do
  echo "-- lstmbench --concurrency $streams"
  "$build/client/lstmbench" --server "127.0.0.1:$port" --model word2x650 \
    --prompt 'w2 w3 w4 w5' --max_tokens "$max_tokens" --concurrency "$streams" \
    --channels 4 --duration "$duration"
done
