#!/bin/bash
# Issue 15's serving goals on the borrowed machine, pinned to TWO of its cores
# (`taskset`), so that the server, its OpenMP team and the client share two
# cores as on the 2-vCPU development VM, but without that VM's neighbours
# and steal time. Everything runs from the device kit (package.sh, with
# lstmserve, lstmbench and lstmctl) through small wrappers laid out like a
# build tree, so the repository's own bench scripts run unchanged:
#   1. bench/serving_e2e.sh: 64 streams end to end vs the engine at batch 64,
#      default threads, --stream_interval 1 and 4 (REPEATS, DURATION);
#   2. 256 streams, inter-token p99 / p50 (demo model, --max_batch 256);
#   3. bench/chunked_prefill.sh: a 4,000-character Score every second among
#      32 streams, chunks 0, 64 and 256: the longest gap between messages.
# Usage (device call, from the repo root; the kit and the random 3x512
# package are git-ignored, so the call carries them):
#   carry: ["dist/device.tar.xz", "dist/char3x512"]
#   OUT=$OUT bash bench/device/serving_goals.sh dist/device.tar.xz dist/char3x512
# Env: SECTIONS ("1 2 3"), POLICIES ("default", see serving_e2e.sh), INTERVALS ("1 4"), CPUS (cpu0 and a CPU that is not its SMT sibling), REPEATS (3), DURATION (8s), QUICK=1 (1 repeat of 2s: checks the
# script). Writes $OUT/serving_goals.txt (and prints it).
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
tarball="$1" pkg="$(cd "$2" && pwd)"
OUT="${OUT:-$repo/device-out}"
mkdir -p "$OUT"
# Two CPUs that are not SMT siblings: cpu0 and the first CPU outside its
# sibling list (the VM's two vCPUs are two cores' worth of time).
pick_cpus() {
  local sib c
  sib="$(cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list 2>/dev/null || echo 0)"
  for c in $(seq 1 $(($(nproc) - 1))); do
    if ! python3 -c 'import sys
def ids(s):
    out = set()
    for part in s.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out
sys.exit(0 if int(sys.argv[2]) in ids(sys.argv[1]) else 1)' "$sib" "$c"; then
      echo "0,$c"; return
    fi
  done
  echo 0,1
}
cpus="${CPUS:-$(pick_cpus)}" reps="${REPEATS:-3}" dur="${DURATION:-8s}"
if [ "${QUICK:-0}" = 1 ]; then reps=1 dur=2s; fi
report="$OUT/serving_goals.txt"
: >"$report"
say() { echo "$*" | tee -a "$report"; }

kit="$(mktemp -d)"
tar -xf "$tarball" -C "$kit" 2>/dev/null ||
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$tarball" "$kit"
shim="$(mktemp -d)"
for b in server/lstmserve client/lstmbench client/lstmctl bench/serving_bench bench/engine_bench; do
  mkdir -p "$shim/$(dirname "$b")"
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/lib exec %s/bin/%s "$@"\n' "$kit" "$kit" "$(basename "$b")" \
    >"$shim/$b"
  chmod +x "$shim/$b"
done
say "# issue 15 serving goals, $(date -u +%FT%TZ), pinned to CPUs $cpus of $(nproc --all)"
say "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
say "# cpu0 siblings: $(cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list 2>/dev/null)"
say "# repeats $reps, duration $dur; kit: $(head -1 "$kit/MANIFEST" 2>/dev/null)"

sections="${SECTIONS:-1 2 3}"
if [[ " $sections " == *" 1 "* ]]; then
say "## 1. 64 streams end to end vs the engine at batch 64 (default threads)"
BUILD="$shim" POLICIES="${POLICIES:-default}" INTERVALS="${INTERVALS:-1 4}" timeout "${E2E_TIMEOUT:-300}" \
  taskset -c "$cpus" bash "$repo/bench/serving_e2e.sh" "$pkg" "$reps" "$dur" 2>&1 | tee -a "$report"

fi
if [[ " $sections " == *" 2 "* ]]; then
say "## 2. 256 streams, demo model, default threads"
port=$((30000 + RANDOM % 20000))
taskset -c "$cpus" "$shim/server/lstmserve" --model "shakespeare=$repo/models/shakespeare" \
  --listen "127.0.0.1:$port" --request_log "" --max_batch 256 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
  "$shim/client/lstmctl" --server "127.0.0.1:$port" health >/dev/null 2>&1 && break
  sleep 0.1
done
for rep in $(seq "$reps"); do
  taskset -c "$cpus" "$shim/client/lstmbench" --server "127.0.0.1:$port" --model shakespeare \
    --concurrency 256 --max_tokens 256 --temperature 0 --duration "$dur" --json |
    python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); it = r["inter_token"]
print("rep %s  %6.0f tok/s  itl p50 %.2f p99 %.2f ms  p99/p50 %.2f  longest gap %.1f ms  errors %s" % (
    sys.argv[1], r["tokens_per_second"], it["p50_ms"], it["p99_ms"], it["p99_ms"] / it["p50_ms"],
    r["message_gap"]["max_ms"], r["errors"]))' "$rep" 2>&1 | tee -a "$report"
done
kill "$pid"; wait "$pid" 2>/dev/null

fi
if [[ " $sections " == *" 3 "* ]]; then
say "## 3. chunked prefill: 32 streams, a 4,000-char Score every second"
REPEATS="$reps" DURATION="${CHUNK_DURATION:-$dur}" timeout 300 \
  taskset -c "$cpus" bash "$repo/bench/chunked_prefill.sh" "$shim" 0 64 256 2>&1 | tee -a "$report"
fi
say "# done $(date -u +%T)"
rm -rf "$kit" "$shim"
