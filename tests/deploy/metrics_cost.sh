#!/usr/bin/env bash
# What recording metrics costs: two lstmserve processes on loopback serving
# the same model, one with metrics (--metrics-listen, scraped every second
# during the runs, as Prometheus would) and one with --metrics=false; both
# with --request-log none. lstmbench runs alternate between them (on, off,
# on, off, ...) REPEATS times; prints every run and the medians.
# A benchmark, not a test: run it on an otherwise idle machine.
# Usage: tests/deploy/metrics_cost.sh BUILD_DIR [MODEL_DIR]
# Env: PROMPT, ENGINE (onednn), THREADS (1), REPEATS (5), DURATION (10s), CONCURRENCY (64),
#      MAX_TOKENS (128)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:?usage: metrics_cost.sh BUILD_DIR [MODEL_DIR]}" && pwd)"
model="${2:-$root/tests/models/golden/l3_e17_h37_f16}"
engine="${ENGINE:-onednn}" threads="${THREADS:-1}" repeats="${REPEATS:-5}"
duration="${DURATION:-10s}" concurrency="${CONCURRENCY:-64}" max_tokens="${MAX_TOKENS:-128}"
# A prompt the model can encode: PROMPT, or the first 3 symbols of a char vocabulary.
prompt="${PROMPT:-$(/usr/bin/python3 -c 'import json,sys
t=json.load(open(sys.argv[1]+"/config.json")).get("tokenizer",{})
print("".join(t.get("vocab",[])[:3]) if t.get("type")=="char" else "The ")' "$model")}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

start() {  # start NAME FLAGS... -> sets port_NAME, pid_NAME
  local name="$1"; shift
  "$build/server/lstmserve" --model "m=$model" --engine "$engine" --threads "$threads" \
    --listen 127.0.0.1:0 --request-log none "$@" > "$work/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
  for _ in $(seq 300); do grep -qs "serving" "$work/$name.log" && break; sleep 0.1; done
  eval "port_$name=$(sed -n 's/.* on port \([0-9]*\) with.*/\1/p' "$work/$name.log")"
}
start on --metrics-listen 127.0.0.1:0
start off --metrics=false
metrics_port="$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' "$work/on.log")"
# Scrape once a second throughout, like Prometheus.
( while sleep 1; do /usr/bin/python3 -c 'import sys,urllib.request;urllib.request.urlopen(sys.argv[1],timeout=5).read()' \
    "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null || true; done ) &
pids+=($!)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run PORT PID -> "tokens/s server-CPU-ms-per-1000-tokens" (CPU time is less
# disturbed than throughput by the client sharing the cores).
run() {
  local before after
  before="$(cpu_ticks "$2")"
  "$build/client/lstmbench" --server "127.0.0.1:$1" --model m --prompt "$prompt" \
    --max_tokens "$max_tokens" --concurrency "$concurrency" --duration "$duration" --json \
    > "$work/bench.json"
  after="$(cpu_ticks "$2")"
  /usr/bin/python3 - "$work/bench.json" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cpu_ms = (float(sys.argv[3]) - float(sys.argv[2])) / float(sys.argv[4]) * 1e3
tokens = r["tokens_per_second"] * r["seconds"]
print("%.1f %.3f" % (r["tokens_per_second"], cpu_ms / tokens * 1e3 if tokens else 0))
PY
}
run "$port_on" "$pid_on" > /dev/null  # warm both up
run "$port_off" "$pid_off" > /dev/null
on=() off=()
for i in $(seq "$repeats"); do
  on+=("$(run "$port_on" "$pid_on")")
  off+=("$(run "$port_off" "$pid_off")")
  echo "round $i: metrics on ${on[-1]}, off ${off[-1]}  (tok/s, server CPU ms per 1000 tokens)"
done
/usr/bin/python3 - "$(printf '%s;' "${on[@]}")" "$(printf '%s;' "${off[@]}")" <<'PY'
import statistics, sys
def parse(s):
    rows = [list(map(float, x.split())) for x in s.split(";") if x.strip()]
    return [r[0] for r in rows], [r[1] for r in rows]
on_tps, on_cpu = parse(sys.argv[1])
off_tps, off_cpu = parse(sys.argv[2])
m_on, m_off = statistics.median(on_tps), statistics.median(off_tps)
print("median tokens/s: metrics on %.1f, off %.1f, on/off = %.4f (%+.2f%%)"
      % (m_on, m_off, m_on / m_off, 100 * (m_on / m_off - 1)))
print("median of paired on/off throughput ratios: %.4f"
      % statistics.median(a / b for a, b in zip(on_tps, off_tps)))
c_on, c_off = statistics.median(on_cpu), statistics.median(off_cpu)
print("median server CPU per 1000 tokens: on %.2f ms, off %.2f ms (%+.2f%%)"
      % (c_on, c_off, 100 * (c_on / c_off - 1)))
PY
