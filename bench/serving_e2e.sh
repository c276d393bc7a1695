#!/bin/bash
# End to end against the engine (issue 15's "64 streams >= 0.75x the engine's
# batch-64 throughput, default threads, client on the same machine"), in one
# sitting, interleaved: the engine alone (serving_bench --engine_only, default
# threads) and lstmserve (default threads) driven by lstmbench (a separate
# process, STREAMS greedy streams of 256 tokens), once per OpenMP wait policy.
#
#   bench/serving_e2e.sh PACKAGE [REPEATS] [DURATION]     (default 3 10s)
# Env: BUILD (build), STREAMS (64), POLICIES ("default passive": OMP_WAIT_POLICY
# for the engine and the server; "default" leaves it unset; "spinN" sets
# GOMP_SPINCOUNT=N instead), INTERVALS ("1":
# the server's --stream_interval values to serve with, each against the same
# engine run), PYTHON (python3; standard library only).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pkg="$1" reps="${2:-3}" dur="${3:-10s}"
build="${BUILD:-$root/build}" streams="${STREAMS:-64}"
for rep in $(seq "$reps"); do
  for policy in ${POLICIES:-default passive}; do
    # The policy reaches the engine and the server, never the client.
    case "$policy" in
      default) omp=() ;;
      spin*) omp=("GOMP_SPINCOUNT=${policy#spin}") ;;  # libgomp: spin this long, then sleep
      *) omp=("OMP_WAIT_POLICY=$policy") ;;
    esac
    engine="$(env "${omp[@]}" "$build/bench/serving_bench" --package "$pkg" --streams "$streams" --engine_only \
      --duration "$dur" | awk '/engine alone/ {print $5}')"
    for interval in ${INTERVALS:-1}; do
      port=$((20000 + RANDOM % 20000))
      env "${omp[@]}" "$build/server/lstmserve" --model "m=$pkg" --listen "127.0.0.1:$port" --request_log "" \
        --stream_interval "$interval" >/dev/null 2>&1 &
      pid=$!
      for _ in $(seq 100); do
        "$build/client/lstmctl" --server "127.0.0.1:$port" health >/dev/null 2>&1 && break
        sleep 0.1
    done
    served="$("$build/client/lstmbench" --server "127.0.0.1:$port" --model m \
      --concurrency "$streams" --max_tokens 256 --temperature 0 --duration "$dur" --json)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    ENGINE="$engine" "${PYTHON:-python3}" -c '
import json, os, sys
r = json.loads(sys.stdin.read()); e = float(os.environ["ENGINE"]); s = r["tokens_per_second"]
print("rep %s %-8s interval %3s  engine %8.0f tok/s  served %8.0f tok/s  served/engine %.2f  itl p50 %.2f p99 %.2f ms  message gap p50 %.2f ms"
      % (sys.argv[1], sys.argv[2], sys.argv[3], e, s, s / e, r["inter_token"]["p50_ms"],
         r["inter_token"]["p99_ms"], r["message_gap"]["p50_ms"]))' \
      "$rep" "$policy" "$interval" <<<"$served"
    done
  done
done
