#!/usr/bin/env bash
# nginx (grpc_pass, deploy/nginx/lstmserve-grpc.conf) on loopback in front of
# three lstmserve replicas on the demo model, lstmbench through nginx for
# --duration, and during it:
#   even  all replicas up: each replica's share of the finished requests
#         (lstmserve_requests_total, scraped) is within 10% of an even share;
#   (a)   SIGTERM replica 1: it drains and exits 0, and no request fails;
#         then it is restarted;
#   (b)   SIGKILL replica 2 (while 12 long generations also stream through
#         nginx, so some are surely on it): only the calls nginx had on it fail
#         (matched by request ID against nginx's access log), each failure is UNAVAILABLE
#         (no response yet: nginx's 502 as grpc-status 14) or, for a stream
#         already streaming, the INTERNAL "RST_STREAM with error code 2" that
#         nginx's reset becomes (see deploy/README.md); a client connected to
#         replica 2 directly sees only UNAVAILABLE; every call started after
#         the kill succeeds;
#   (c)   restart replica 2: it turns SERVING and gets at least half of an
#         even share of the requests again.
# Prints the numbers and exits nonzero when any check fails.
# Usage: deploy/test_lb.sh --build BUILD_DIR [--duration 60s] [--keep]
#   --keep  keep the work directory (logs, nginx config, request traces)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

build=build
duration=60
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --duration) duration="${2%s}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "test_lb: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ "$duration" =~ ^[0-9]+$ && "$duration" -ge 40 ]] || {
  echo "test_lb: --duration must be whole seconds >= 40 (e.g. 60s)" >&2; exit 2; }

lstmserve="$build/server/lstmserve"
lstmctl="$build/client/lstmctl"
lstmbench="$build/client/lstmbench"
model="$root/models/shakespeare"
for bin in "$lstmserve" "$lstmctl" "$lstmbench"; do
  [ -x "$bin" ] || { echo "test_lb: $bin not built" >&2; exit 2; }
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$nginx_bin" ] || { echo "test_lb: nginx not found (Debian: nginx-light)" >&2; exit 2; }

# Each replica: one engine thread (3 replicas, nginx and lstmbench share the
# machine), a short drain, and a connection age short enough that nginx's
# upstream connections are recycled (GOAWAY) many times during the run.
server_flags=(--model "shakespeare=$model" --threads 1 --request-log none
              --drain-timeout 10s --max-connection-age 5s --max-connection-age-grace 10s)
bench_flags=(--model shakespeare --prompt 'ROMEO:' --max_tokens 48 --timeout 30s)
concurrency=16
fail_timeout=5  # nginx passive health: a failed replica is skipped this long

work="$(mktemp -d /tmp/lstmserve-lb.XXXXXX)"
declare -A pid port metrics_port
nginx_pid=""
bench_pid=""
direct_pid=""
long_pid=""
failures=0
cleanup() {
  local rc=$?
  local p
  for p in "$bench_pid" "$direct_pid" "$long_pid" "${pid[@]}"; do
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
  done
  if [ -n "$nginx_pid" ]; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  if [ "$keep" -eq 1 ]; then echo "test_lb: kept $work"; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "test_lb: $*"; }
die() { echo "test_lb: FAIL: $*" >&2; exit 1; }
check() {  # check ARITHMETIC_CONDITION MESSAGE: prints it, counts a failure, goes on
  if (($1)); then say "ok    $2"; else say "FAIL  $2"; failures=$((failures + 1)); fi
}
now() { date +%s.%N; }
sleep_until() { sleep "$(awk -v t="$1" -v n="$(now)" 'BEGIN { d = t - n; if (d < 0) d = 0; printf "%.3f", d }')"; }

# launch_replica N PORT: starts replica N in the background; PORT 0 picks a
# free port (first start), a restart reuses the port nginx knows.
declare -A log
launch_replica() {
  log[$1]="$work/replica$1.$(date +%s%N).log"
  "$lstmserve" "${server_flags[@]}" --listen "127.0.0.1:$2" --metrics-listen 127.0.0.1:0 \
    >"${log[$1]}" 2>&1 &
  pid[$1]=$!
}
# await_replica N: waits until replica N serves (its start-up line) and its
# readiness says SERVING; reads its ports.
await_replica() {
  local n="$1" t0=$SECONDS line="" h
  while [ -z "$line" ]; do
    kill -0 "${pid[$n]}" 2>/dev/null || { cat "${log[$n]}" >&2; die "replica $n exited at start"; }
    [ $((SECONDS - t0)) -lt 60 ] || die "replica $n not up after 60 s"
    line="$(grep -s -m1 ' on port ' "${log[$n]}" || true)"
    [ -n "$line" ] || sleep 0.1
  done
  port[$n]="$(sed 's/.*) on port \([0-9]*\).*/\1/' <<<"$line")"
  metrics_port[$n]="$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' <<<"$line")"
  [ -n "${metrics_port[$n]}" ] || die "replica $n printed no metrics port: $line"
  h="$("$lstmctl" health --server "127.0.0.1:${port[$n]}" \
    --service lstmserve.v1.LanguageModelService --timeout 5s 2>&1)" || die "replica $n readiness: $h"
  [ "$h" = SERVING ] || die "replica $n readiness is $h"
}

# scrape N: replica N's /metrics.
scrape() {
  exec 3<>"/dev/tcp/127.0.0.1/${metrics_port[$1]}"
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  cat <&3
  exec 3<&-
}
# served N: finished Generate calls with code OK that replica N counted.
served() {
  scrape "$1" | awk '/^lstmserve_requests_total\{/ && /rpc="Generate"/ && /code="OK"/ { s += $NF }
                     END { printf "%d\n", s }'
}
# usage N: "CPU_SECONDS GENERATED_TOKENS RSS_BYTES" of replica N.
usage() {
  scrape "$1" | awk '/^process_cpu_seconds_total/ { c = $NF } /^process_resident_memory_bytes/ { r = $NF }
                     /^lstmserve_generated_tokens_total\{/ { t += $NF } END { printf "%s %d %d\n", c, t, r }'
}

# ---- replicas and nginx ---------------------------------------------------------
t_setup=$SECONDS
for n in 1 2 3; do launch_replica "$n" 0; done
for n in 1 2 3; do await_replica "$n"; done
say "replicas on ports ${port[1]} ${port[2]} ${port[3]} (metrics ${metrics_port[1]} ${metrics_port[2]} ${metrics_port[3]}), up in $((SECONDS - t_setup)) s"

# shellcheck source=deploy/lb_nginx.sh
source "$root/deploy/lb_nginx.sh"
start_lb_nginx "$root/deploy/nginx/lstmserve-grpc.conf" notice
say "nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$lb_port (pid $nginx_pid)"

# ---- load and events ------------------------------------------------------------
"$lstmbench" --server "127.0.0.1:$lb_port" "${bench_flags[@]}" --concurrency "$concurrency" \
  --duration "${duration}s" --request_id_prefix main --requests_out "$work/calls.tsv" \
  >"$work/bench.out" 2>&1 &
bench_pid=$!
t0="$(now)"
at() { awk -v t0="$t0" -v f="$1" -v d="$duration" 'BEGIN { printf "%.3f", t0 + f * d }'; }

# even: all replicas up, from 2 s in to a quarter of the run.
sleep_until "$(awk -v t0="$t0" 'BEGIN { printf "%.3f", t0 + 2 }')"
for n in 1 2 3; do even_a[$n]="$(served "$n")"; done
sleep_until "$(at 0.25)"
for n in 1 2 3; do even_b[$n]="$(served "$n")"; done

# (a) SIGTERM replica 1; restart it once it has exited.
t_term="$(now)"
kill -TERM "${pid[1]}"
rc=0
wait "${pid[1]}" || rc=$?
t_exit="$(now)"
launch_replica 1 "${port[1]}"
await_replica 1
t_back1="$(now)"

# (b) SIGKILL replica 2 while long generations stream through nginx (short
# calls alone may leave no call on it at the kill) and a direct client
# streams long generations from it.
sleep_until "$(at 0.45)"
"$lstmbench" --server "127.0.0.1:$lb_port" --model shakespeare --max_tokens 4000 \
  --concurrency 12 --duration 2s --timeout 30s --request_id_prefix long --requests_out "$work/long.tsv" \
  >"$work/long.out" 2>&1 &
long_pid=$!
"$lstmbench" --server "127.0.0.1:${port[2]}" --model shakespeare --max_tokens 4000 \
  --concurrency 4 --duration 2s --timeout 30s --request_id_prefix direct --requests_out "$work/direct.tsv" \
  >"$work/direct.out" 2>&1 &
direct_pid=$!
sleep 1.5
t_kill_from="$(now)"
kill -KILL "${pid[2]}"
wait "${pid[2]}" 2>/dev/null || true
t_kill="$(now)"  # it died (its sockets closed) between t_kill_from and t_kill
wait "$direct_pid" || true
direct_pid=""
wait "$long_pid" || true
long_pid=""

# (c) restart replica 2; measure its share once nginx tries it again.
launch_replica 2 "${port[2]}"
await_replica 2
t_back2="$(now)"
sleep "$((fail_timeout + 1))"
for n in 1 2 3; do rejoin_a[$n]="$(served "$n")"; done
sleep_until "$(at 0.95)"
for n in 1 2 3; do rejoin_b[$n]="$(served "$n")"; done
read -r cpu3 tokens3 rss3 < <(usage 3)  # replica 3 ran the whole time

bench_rc=0
wait "$bench_pid" || bench_rc=$?
bench_pid=""
[ "$bench_rc" -le 1 ] || { cat "$work/bench.out" >&2; die "lstmbench exited $bench_rc"; }
[ -s "$work/calls.tsv" ] && [ -s "$work/long.tsv" ] || die "lstmbench wrote no request trace"
sed 's/^/  /' "$work/long.out" | head -3
sort -n "$work/calls.tsv" "$work/long.tsv" >"$work/all.tsv"  # every call through nginx

# ---- checks ---------------------------------------------------------------------
sed 's/^/  /' "$work/bench.out"
total_calls="$(wc -l <"$work/all.tsv")"
say "timeline (s after the load started): SIGTERM $(awk -v a="$t0" -v b="$t_term" 'BEGIN{printf "%.1f", b-a}'),\
 replica 1 exited after $(awk -v a="$t_term" -v b="$t_exit" 'BEGIN{printf "%.2f", b-a}') s and served again at\
 $(awk -v a="$t0" -v b="$t_back1" 'BEGIN{printf "%.1f", b-a}'); SIGKILL $(awk -v a="$t0" -v b="$t_kill" 'BEGIN{printf "%.1f", b-a}'),\
 replica 2 served again at $(awk -v a="$t0" -v b="$t_back2" 'BEGIN{printf "%.1f", b-a}')"

# even
read -r even_line even_ok < <(awk -v a1="${even_a[1]}" -v a2="${even_a[2]}" -v a3="${even_a[3]}" \
  -v b1="${even_b[1]}" -v b2="${even_b[2]}" -v b3="${even_b[3]}" 'BEGIN {
    d[1] = b1 - a1; d[2] = b2 - a2; d[3] = b3 - a3; m = (d[1] + d[2] + d[3]) / 3; ok = m > 0
    line = ""
    for (i = 1; i <= 3; i++) {
      dev = m > 0 ? (d[i] - m) / m * 100 : 0
      if (dev > 10 || dev < -10) ok = 0
      line = line sprintf("%s%d(%+.1f%%)", i > 1 ? "/" : "", d[i], dev)
    }
    print line, 1 - ok }')
check "even_ok == 0" "even: requests per replica with all up $even_line (each within 10% of even)"

# (a) SIGTERM
check "rc == 0" "(a) SIGTERM: replica 1 drained and exited with code $rc (want 0)"
read -r a_calls a_failed < <(awk -F'\t' -v from="$t_term" -v to="$t_kill_from" \
  '$2 >= from && $2 < to { n++; if ($3 != "OK") f++ } END { print n + 0, f + 0 }' "$work/all.tsv")
check "a_failed == 0 && a_calls > 0" "(a) SIGTERM: $a_failed of $a_calls calls ending between the SIGTERM and the SIGKILL failed (want 0)"

# (b) SIGKILL: every failed call through nginx.
window=2  # seconds after the kill by which the calls cut by it have ended
awk -F'\t' -v k0="$t_kill_from" -v k="$t_kill" -v w="$window" '$3 != "OK" {
    if ($1 < k && $2 >= k0 && $2 <= k + w) kind = "cut"; else kind = "other"
    print kind "\t" $0 }' "$work/all.tsv" >"$work/failed.tsv"
other="$(grep -c '^other' "$work/failed.tsv" || true)"
cut_calls="$(grep -c '^cut' "$work/failed.tsv" || true)"
cut_unavailable="$(awk -F'\t' '$1 == "cut" && $4 == "UNAVAILABLE" && $5 == 0' "$work/failed.tsv" | wc -l)"
cut_reset="$(awk -F'\t' '$1 == "cut" && $4 == "INTERNAL" && $5 > 0 &&
  $7 ~ /RST_STREAM with error code 2/' "$work/failed.tsv" | wc -l)"
tab="$(printf '\t')"
# nginx's view, matched by request ID (lstmbench sends x-request-id, nginx
# logs it): the calls it sent to replica 2 (on any attempt) that did not end
# with grpc-status 0. Log line: id end duration addr[, addr...] status trailer header.
awk -v b="127.0.0.1:${port[2]}" '{
    addr = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", addr); sub(/ [^ ]+ [^ ]+ [^ ]+$/, "", addr)
    m = split(addr, a, /, | : /); on = 0
    for (i = 1; i <= m; i++) if (a[i] == b) on = 1
    if (on && $(NF - 1) != "0" && $NF != "0") print $1 "\t" $0 }' \
  "$work/nginx-access.log" | LC_ALL=C sort -t "$tab" -k1,1 >"$work/nginx-failed.tsv"
awk -F'\t' '$1 == "cut" { print $8 "\t" $0 }' "$work/failed.tsv" | LC_ALL=C sort -t "$tab" -k1,1 >"$work/cut.tsv"
on_killed="$(wc -l <"$work/nginx-failed.tsv")"
only_client="$(LC_ALL=C join -t "$tab" -v 1 "$work/cut.tsv" "$work/nginx-failed.tsv")"
only_nginx="$(LC_ALL=C join -t "$tab" -v 2 "$work/cut.tsv" "$work/nginx-failed.tsv")"
say "(b) SIGKILL: nginx had $on_killed unfinished calls on replica 2; the client saw $cut_calls fail\
 ($cut_unavailable UNAVAILABLE before any response, $cut_reset INTERNAL 'RST_STREAM with error code 2' mid-stream)"
check "other == 0" "(b) SIGKILL: calls failed in the whole run other than those in flight at the kill: $other (want 0)"
check "cut_calls >= 1 && cut_calls == on_killed && ${#only_client} == 0 && ${#only_nginx} == 0" \
  "(b) SIGKILL: the failed calls ($cut_calls) are the ones nginx had on replica 2 ($on_killed), by request ID, at least 1"
[ -z "$only_client" ] || { say "  failed at the client, not unfinished on replica 2 in nginx's log:"; echo "$only_client" | sed 's/^/    /'; }
[ -z "$only_nginx" ] || { say "  unfinished on replica 2 in nginx's log, not failed at the client:"; echo "$only_nginx" | sed 's/^/    /'; }
check "cut_calls == cut_unavailable + cut_reset" "(b) SIGKILL: each failure is UNAVAILABLE before the first response or nginx's mid-stream reset"
read -r after_calls after_failed < <(awk -F'\t' -v k="$t_kill" \
  '$1 > k { n++; if ($3 != "OK") f++ } END { print n + 0, f + 0 }' "$work/all.tsv")
check "after_failed == 0 && after_calls > 0" "(b) SIGKILL: $after_failed of $after_calls calls started after the kill failed (want 0)"
# The direct client: streams that had output when the replica died, and every failure.
read -r direct_cut direct_failed direct_unavailable < <(awk -F'\t' '$3 != "OK" {
    f++; if ($3 == "UNAVAILABLE") u++; if ($4 > 0) c++ } END { print c + 0, f + 0, u + 0 }' \
  "$work/direct.tsv")
check "direct_cut >= 1 && direct_failed == direct_unavailable" "(b) SIGKILL, direct client:\
 $direct_cut streams cut mid-stream; $direct_unavailable of its $direct_failed failures UNAVAILABLE (want all)"

# (c) restart
read -r rejoin_line rejoin_ok < <(awk -v a1="${rejoin_a[1]}" -v a2="${rejoin_a[2]}" -v a3="${rejoin_a[3]}" \
  -v b1="${rejoin_b[1]}" -v b2="${rejoin_b[2]}" -v b3="${rejoin_b[3]}" 'BEGIN {
    d[1] = b1 - a1; d[2] = b2 - a2; d[3] = b3 - a3; m = (d[1] + d[2] + d[3]) / 3
    line = ""
    for (i = 1; i <= 3; i++) line = line sprintf("%s%d(%+.1f%%)", i > 1 ? "/" : "", d[i], m > 0 ? (d[i] - m) / m * 100 : 0)
    rc = 1; if (m > 0 && d[2] >= 0.5 * m) rc = 0
    print line, rc }')
check "rejoin_ok == 0" "(c) restart: requests per replica after replica 2 rejoined $rejoin_line (replica 2 >= half of even)"

say "replica 3 (never restarted): $tokens3 tokens generated with $cpu3 s of its CPU =\
 $(awk -v t="$tokens3" -v c="$cpu3" 'BEGIN { r = 0; if (c > 0) r = t / c; printf "%.0f", r }') tokens per CPU-second; RSS\
 $(awk -v r="$rss3" 'BEGIN { printf "%.0f", r / 1048576 }') MiB"
say "$total_calls calls through nginx, $(awk -F'\t' '$3 != "OK"' "$work/all.tsv" | wc -l) failed"
if [ "$failures" -ne 0 ]; then
  say "failed calls (kind, start, end, code, messages, tokens, message):"
  head -20 "$work/failed.tsv" | sed 's/^/  /'
  keep=1
  die "$failures check(s) failed"
fi
say "PASS in $((SECONDS - t_setup)) s"
