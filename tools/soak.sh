#!/usr/bin/env bash
# Soak test: starts lstmserve on loopback, runs lstmsoak's mixed load
# (generate, score, embed, cancellations, expired deadlines, invalid requests,
# new connections) for the given time, checking every outcome and sampling
# the server's resident memory; then shuts the server down with SIGTERM.
# Fails on any unexpected outcome, on RSS growth >= 5% after warm-up
# (max(10 s, 20% of the run)), if a slot stays busy after the load, or if the
# server does not exit 0.
# Usage: tools/soak.sh --build DIR [--duration 60s] [--model DIR] [--engine onednn|reference]
#                      [--threads N] [--sample-every 5s] [--out DIR]
# Env: SOAK_ENGINE sets the default of --engine (onednn).
# The report (table + JSON summary) goes to stdout and to OUT/soak.txt and
# OUT/soak.json (OUT default: a temp dir, printed); the server log to
# OUT/server.log.
set -euo pipefail
# The body is one block, so bash has read all of it before it runs (editing
# the file during a long soak cannot break the running one).
{
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build=""
duration="60s"
model="$root/models/shakespeare"
engine="${SOAK_ENGINE:-onednn}"
threads=8
sample_every=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --engine) engine="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --sample-every) sample_every="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$build" ] || { echo "soak.sh: --build DIR is required" >&2; exit 2; }
case "$build" in /*) ;; *) build="$root/$build" ;; esac
server_bin="$build/server/lstmserve"
soak_bin="$build/client/lstmsoak"
ctl_bin="$build/client/lstmctl"
for b in "$server_bin" "$soak_bin" "$ctl_bin"; do
  [ -x "$b" ] || { echo "soak.sh: $b not built" >&2; exit 2; }
done
if [ -z "$sample_every" ]; then
  # About 30 samples, at least one every 2 s.
  case "$duration" in
    *h) secs=$(( ${duration%h} * 3600 )) ;;
    *m) secs=$(( ${duration%m} * 60 )) ;;
    *s) secs=${duration%s} ;;
    *) echo "soak.sh: --duration like 60s, 30m or 1h" >&2; exit 2 ;;
  esac
  sample_every="$(( secs / 30 > 2 ? secs / 30 : 2 ))s"
fi
[ -n "$out" ] || out="$(mktemp -d /tmp/lstmserve_soak.XXXXXX)"
mkdir -p "$out"
name="$(basename "$model")"

"$server_bin" --model "$name=$model" --engine "$engine" --listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --request-log none --drain-timeout 10s \
  >"$out/server.log" 2>&1 &
server_pid=$!
cleanup() { kill -9 "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT
port="" metrics_port=""
for _ in $(seq 1 600); do
  if line="$(grep -m1 'serving .* on port' "$out/server.log")"; then
    port="$(sed -n 's/.*model(s) on port \([0-9]*\).*/\1/p' <<<"$line")"
    metrics_port="$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' <<<"$line")"
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$out/server.log" >&2; echo "soak.sh: lstmserve exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "soak.sh: lstmserve did not start" >&2; exit 1; }
healthy=""
for _ in $(seq 1 300); do
  if [ "$("$ctl_bin" health --server "127.0.0.1:$port" --timeout 5s 2>/dev/null)" = "SERVING" ]; then
    healthy=1
    break
  fi
  sleep 0.2
done
[ -n "$healthy" ] || { echo "soak.sh: lstmserve never reported SERVING" >&2; exit 1; }
echo "soak.sh: lstmserve pid $server_pid port $port metrics $metrics_port, model $name ($engine), $duration, $threads threads; output in $out"

status=0
"$soak_bin" --server "127.0.0.1:$port" --model "$name" --server-pid "$server_pid" \
  --metrics-port "${metrics_port:-0}" --duration "$duration" --threads "$threads" \
  --sample-every "$sample_every" --json-out "$out/soak.json" | tee "$out/soak.txt" || status=$?

kill -TERM "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
trap - EXIT
if [ "$server_status" -ne 0 ]; then
  echo "soak.sh: lstmserve exited with $server_status after SIGTERM" >&2
  tail -20 "$out/server.log" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "soak.sh: FAILED (see $out)" >&2
  exit 1
fi
echo "soak.sh: passed"
exit 0
}
