#!/usr/bin/env bash
# Drives the race between a draining replica's GOAWAY and nginx's pooled
# upstream connections as hard as it can, for deploy/test_lb.sh check (a):
# nginx (deploy/nginx/lstmserve-grpc.conf, upstream keepalive) in front of
# three lstmserve replicas, lstmbench sending many short generations through
# nginx, and --cycles times: SIGTERM one replica (in turn), wait for its exit,
# restart it on its port, wait until it serves and nginx uses it again.
# Counts the calls that failed (want 0) by status and message, and the
# upstream-related lines of nginx's error log (level info).
# Usage: deploy/repro_drain_race.sh --build BUILD_DIR [--cycles 30]
#          [--proxy-conf FILE] [--max-tokens 4] [--concurrency 24] [--cycle-seconds 9] [--keep]
#   --proxy-conf  a proxy policy to include instead of
#                 deploy/nginx/lstmserve-grpc.conf (to compare candidates)
#   --keep        keep the work directory (logs, request trace)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

build=build
cycles=30
proxy_conf="$root/deploy/nginx/lstmserve-grpc.conf"
max_tokens=4
concurrency=24
cycle_seconds=9
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --cycles) cycles="$2"; shift 2 ;;
    --proxy-conf) proxy_conf="$(realpath "$2")"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --cycle-seconds) cycle_seconds="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "repro: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
lstmserve="$build/server/lstmserve"
lstmctl="$build/client/lstmctl"
lstmbench="$build/client/lstmbench"
for bin in "$lstmserve" "$lstmctl" "$lstmbench"; do
  [ -x "$bin" ] || { echo "repro: $bin not built" >&2; exit 2; }
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

# As in test_lb.sh, but nginx takes a replica back 1 s after a failed connect
# (instead of 5 s) so that the cycles follow each other quickly.
server_flags=(--model "shakespeare=$root/models/shakespeare" --threads 1 --request-log none
              --drain-timeout 10s --max-connection-age 5s --max-connection-age-grace 10s)
fail_timeout=1

work="$(mktemp -d /tmp/lstmserve-race.XXXXXX)"
declare -A pid port log
nginx_pid=""
bench_pid=""
cleanup() {
  local rc=$? p
  for p in "$bench_pid" "${pid[@]}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done
  [ -z "$nginx_pid" ] || kill -TERM "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$keep" -eq 1 ]; then echo "repro: kept $work"; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "repro: FAIL: $*" >&2; exit 1; }

launch() {  # launch N PORT (0: a free port)
  log[$1]="$work/replica$1.$(date +%s%N).log"
  "$lstmserve" "${server_flags[@]}" --listen "127.0.0.1:$2" >"${log[$1]}" 2>&1 &
  pid[$1]=$!
}
await() {  # await N: up (start-up line) and readiness SERVING
  local n="$1" t0=$SECONDS line=""
  while [ -z "$line" ]; do
    kill -0 "${pid[$n]}" 2>/dev/null || { cat "${log[$n]}" >&2; die "replica $n exited at start"; }
    [ $((SECONDS - t0)) -lt 60 ] || die "replica $n not up after 60 s"
    line="$(grep -s -m1 ' on port ' "${log[$n]}" || true)"
    [ -n "$line" ] || sleep 0.05
  done
  port[$n]="$(sed 's/.*) on port \([0-9]*\).*/\1/' <<<"$line")"
  [ "$("$lstmctl" health --server "127.0.0.1:${port[$n]}" \
      --service lstmserve.v1.LanguageModelService --timeout 5s 2>&1)" = SERVING ] ||
    die "replica $n not SERVING"
}

for n in 1 2 3; do launch "$n" 0; done
for n in 1 2 3; do await "$n"; done
# shellcheck source=deploy/lb_nginx.sh
source "$root/deploy/lb_nginx.sh"
start_lb_nginx "$proxy_conf" info
echo "repro: nginx on 127.0.0.1:$lb_port with $(basename "$proxy_conf"); $cycles cycles," \
  "$concurrency streams x $max_tokens tokens"

# Each cycle: lstmbench through nginx for --cycle-seconds (9: longer than a
# drain, which waits out the 5 s connection age); 1.5 s in (nginx's pool to the
# replica is full), SIGTERM the replica, wait for its exit, restart it.
for c in $(seq "$cycles"); do
  n=$(( (c - 1) % 3 + 1 ))
  "$lstmbench" --server "127.0.0.1:$lb_port" --model shakespeare --prompt 'ROMEO:' \
    --max_tokens "$max_tokens" --timeout 30s --concurrency "$concurrency" --duration "${cycle_seconds}s" \
    --requests_out "$work/calls.$c.tsv" >"$work/bench.$c.out" 2>&1 &
  bench_pid=$!
  sleep 1.5
  t_term="$(date +%s.%N)"
  kill -TERM "${pid[$n]}"
  rc=0
  wait "${pid[$n]}" || rc=$?
  [ "$rc" -eq 0 ] || die "cycle $c: replica $n exited with $rc"
  echo "$t_term $(date +%s.%N)" >>"$work/drains"
  launch "$n" "${port[$n]}"
  await "$n"
  rc=0
  wait "$bench_pid" || rc=$?
  bench_pid=""
  [ "$rc" -le 1 ] && [ -s "$work/calls.$c.tsv" ] ||
    { cat "$work/bench.$c.out" >&2; die "cycle $c: lstmbench exited $rc"; }
  f="$(awk -F'\t' '$3 != "OK"' "$work/calls.$c.tsv" | wc -l)"
  [ "$f" -eq 0 ] || echo "repro: cycle $c (replica $n): $f failed"
  sleep "$fail_timeout"  # nginx takes the restarted replica back
done
cat "$work"/calls.*.tsv >"$work/calls.tsv"
read -r calls failed < <(awk -F'\t' '{ n++; if ($3 != "OK") f++ } END { print n + 0, f + 0 }' \
  "$work/calls.tsv")
echo "repro: $failed of $calls calls failed during $cycles SIGTERM cycles; drain (SIGTERM to exit)" \
  "$(awk '{ d = $2 - $1; s += d; if (NR == 1 || d < lo) lo = d; if (d > hi) hi = d }
          END { printf "min %.2f / mean %.2f / max %.2f s", lo, s / NR, hi }' "$work/drains")"
awk -F'\t' '$3 != "OK" { print $3 ": " $6 }' "$work/calls.tsv" | sort | uniq -c | sed 's/^/  /'
echo "repro: nginx error log (upstream lines, by kind):"
grep -E '\[(error|warn|info)\]' "$work/nginx-error.log" |
  sed -E 's/^[0-9\/: ]+//; s/ [0-9]+#[0-9]+: \*[0-9]+ / /; s/, client:.*//; s/\([0-9]+: /(/' |
  grep -v -E 'client (closed|sent|prematurely)' | sort | uniq -c | sort -rn | head -20 | sed 's/^/  /'
[ "$failed" -eq 0 ] || { keep=1; exit 1; }
