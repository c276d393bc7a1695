#!/usr/bin/env bash
# Chunked prefill, measured (server/README.md "A long prompt must not stall
# everyone else"): lstmserve serves the demo model; lstmbench runs 32 greedy
# streams of 256 tokens, alone and with one 4,000-character Score every
# second, for each --prefill_chunk_tokens value given, REPEATS times,
# interleaved so that every configuration sees the same machine.
# Usage: bench/chunked_prefill.sh [BUILD_DIR] [CHUNKS...]
#   default: build 0 256   (0 = whole prompts at once, the old behaviour)
# Env: REPEATS (3), DURATION (15s), STREAMS (32), SERVER_ARGS (extra flags),
#      SCORE_CHARS (4000), SCORE_INTERVAL (1s).
# Prints one line per run: chunk, load, tokens/s, inter-token p50/p99/p99.9,
# longest message gap, request latency p90, score latency p50/max.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
shift || true
chunks=("$@")
[ ${#chunks[@]} -gt 0 ] || chunks=(0 256)
repeats="${REPEATS:-3}"
duration="${DURATION:-15s}"
streams="${STREAMS:-32}"
port=$((52000 + RANDOM % 2000))

summarize() {
  "${PYTHON:-python3}" -c '
import json, sys
r = json.loads(sys.stdin.read())
it, gap, lat, sc = r["inter_token"], r["message_gap"], r["latency"], r["score"]
print("%8.0f tok/s  itl p50 %6.2f p99 %6.2f p99.9 %7.2f  max gap %7.2f ms  latency p90 %7.1f ms  score p50 %7.1f max %7.1f ms  errors %s" % (
    r["tokens_per_second"], it["p50_ms"], it["p99_ms"], it["p999_ms"], gap["max_ms"],
    lat["p90_ms"], sc["p50_ms"], sc["max_ms"], r["errors"]))'
}

for rep in $(seq "$repeats"); do
  for chunk in "${chunks[@]}"; do
    "$build/server/lstmserve" --model "shakespeare=$root/models/shakespeare" \
      --listen "127.0.0.1:$port" --request_log "" --prefill_chunk_tokens "$chunk" \
      ${SERVER_ARGS:-} 2>/dev/null &
    server=$!
    for _ in $(seq 100); do
      "$build/client/lstmctl" --server "127.0.0.1:$port" health >/dev/null 2>&1 && break
      sleep 0.2
    done
    for load in alone score; do
      extra=()
      [ "$load" = score ] &&
        extra=(--score_chars "${SCORE_CHARS:-4000}" --score_interval "${SCORE_INTERVAL:-1s}")
      printf 'rep %d chunk %4s %-5s ' "$rep" "$chunk" "$load"
      "$build/client/lstmbench" --server "127.0.0.1:$port" --model shakespeare \
        --concurrency "$streams" --max_tokens 256 --temperature 0 --duration "$duration" \
        --json "${extra[@]}" | summarize
    done
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  done
done
