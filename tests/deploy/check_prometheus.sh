#!/usr/bin/env bash
# Checks deploy/prometheus against a live server, with Debian's Prometheus:
#   1. promtool check rules / check config on deploy/prometheus;
#   2. a real lstmserve (golden fixture model, reference engine) on loopback:
#      promtool check metrics on a live scrape of /metrics;
#   3. a real Prometheus on 127.0.0.1 (temporary storage, generated config
#      scraping lstmserve every 1 s, deploy's rules loaded) while lstmbench
#      runs: the generated-token rate and the recording rule read back
#      through the HTTP query API, and Prometheus's last sample of
#      lstmserve_generated_tokens_total equals the server's own count.
# Usage: tests/deploy/check_prometheus.sh BUILD_DIR
# Exit 0: passed; 77: skipped (no promtool/prometheus: tools/install_deps.sh
# installs them); anything else: failed. Loopback only; every wait bounded.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:?usage: check_prometheus.sh BUILD_DIR}" && pwd)"
for tool in promtool prometheus; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool not installed (Debian package 'prometheus'; run tools/install_deps.sh)"
    exit 77
  fi
done
lstmserve="$build/server/lstmserve"
lstmbench="$build/client/lstmbench"
for b in "$lstmserve" "$lstmbench"; do [ -x "$b" ] || { echo "FAIL: $b not built"; exit 1; }; done

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

# HTTP GET on loopback (python3 is in tools/packages-debian.txt; no curl needed).
get() { /usr/bin/python3 -c 'import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())' "$1"; }
# PromQL instant query -> the first sample's value, or empty.
query() {
  /usr/bin/python3 - "$prom" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = "http://%s/api/v1/query?query=%s" % (sys.argv[1], urllib.parse.quote(sys.argv[2]))
try:
    r = json.load(urllib.request.urlopen(url, timeout=5))
except Exception:
    sys.exit(0)
res = r.get("data", {}).get("result", [])
if r.get("status") == "success" and res:
    print(res[0]["value"][1])
PY
}
free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

echo "== promtool check rules/config"
promtool check rules "$root/deploy/prometheus/rules.yml"
promtool check config "$root/deploy/prometheus/prometheus.yml"

echo "== lstmserve on loopback"
"$lstmserve" --model golden="$root/tests/models/golden/l1_h13" --engine reference \
  --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --request-log "$work/requests.jsonl" \
  > "$work/lstmserve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "metrics on port" "$work/lstmserve.log" && break; sleep 0.1; done
grpc_port="$(sed -n 's/.* on port \([0-9]*\) with.*/\1/p' "$work/lstmserve.log")"
metrics_port="$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' "$work/lstmserve.log")"
[ -n "$grpc_port" ] && [ -n "$metrics_port" ] || fail "lstmserve did not start"
metrics="127.0.0.1:$metrics_port"

echo "== promtool check metrics (live scrape of $metrics)"
get "http://$metrics/metrics" > "$work/scrape.txt"
promtool check metrics < "$work/scrape.txt" || fail "promtool check metrics"
grep -q '^lstmserve_model_info{.*model="golden"' "$work/scrape.txt" || fail "no model info"

echo "== Prometheus on loopback"
prom="127.0.0.1:$(free_port)"
cat > "$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $root/deploy/prometheus/rules.yml
scrape_configs:
  - job_name: lstmserve
    static_configs:
      - targets: ["$metrics"]
YML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="$prom" > "$work/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do get "http://$prom/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
get "http://$prom/-/ready" >/dev/null 2>&1 || fail "Prometheus not ready after 30 s"

echo "== load: lstmbench for 8 s"
"$lstmbench" --server "127.0.0.1:$grpc_port" --model golden --prompt "abc" --max_tokens 64 \
  --concurrency 4 --duration 8s --timeout 60s > "$work/lstmbench.log" 2>&1 &
bench=$!
pids+=($bench)
rate=""
for _ in $(seq 60); do
  rate="$(query 'sum(rate(lstmserve_generated_tokens_total{job="lstmserve"}[5s]))')"
  if [ -n "$rate" ] && /usr/bin/python3 -c "import sys;sys.exit(0 if float('$rate')>0 else 1)"; then break; fi
  rate=""
  sleep 0.5
done
[ -n "$rate" ] || fail "Prometheus never saw generated tokens"
echo "generated-token rate via Prometheus: $rate tokens/s"
wait "$bench" || fail "lstmbench failed"
cat "$work/lstmbench.log"

recorded=""
for _ in $(seq 30); do
  recorded="$(query 'lstmserve:generated_tokens:rate1m{model="golden"}')"
  [ -n "$recorded" ] && break
  sleep 0.5
done
[ -n "$recorded" ] || fail "recording rule lstmserve:generated_tokens:rate1m has no value"
echo "recording rule lstmserve:generated_tokens:rate1m: $recorded"

# Idle now: the server's total and Prometheus's latest sample must agree.
server_total="$(get "http://$metrics/metrics" | sed -n 's/^lstmserve_generated_tokens_total{model="golden"} //p')"
seen=""
for _ in $(seq 40); do
  seen="$(query 'lstmserve_generated_tokens_total{model="golden"}')"
  [ "$seen" = "$server_total" ] && break
  sleep 0.25
done
[ "$seen" = "$server_total" ] || fail "Prometheus has $seen generated tokens, the server $server_total"
echo "generated tokens: server $server_total = Prometheus $seen"
[ -s "$work/requests.jsonl" ] || fail "empty request log"

echo "== every Grafana dashboard query is valid PromQL and the token panel has data"
/usr/bin/python3 - "$prom" "$root/deploy/grafana/lstmserve-dashboard.json" <<'PY' || fail "dashboard queries"
import json, sys, urllib.parse, urllib.request
prom, path = sys.argv[1], sys.argv[2]
bad = 0
for panel in json.load(open(path))["panels"]:
    for t in panel["targets"]:
        expr = (t["expr"].replace("$__rate_interval", "30s").replace("$job", "lstmserve")
                .replace("$model", ".*"))
        url = "http://%s/api/v1/query?query=%s" % (prom, urllib.parse.quote(expr))
        try:
            r = json.load(urllib.request.urlopen(url, timeout=5))
        except Exception as e:
            r = {"status": "error", "error": str(e)}
        if r.get("status") != "success":
            print("bad query in %r: %s: %s" % (panel["title"], expr, r.get("error")))
            bad += 1
        elif panel["title"] == "Generated tokens/s" and t["refId"] == "A" and not r["data"]["result"]:
            print("no data for", expr)
            bad += 1
sys.exit(1 if bad else 0)
PY
echo "PASS"
