#!/bin/bash
# Serving cost of the depth-study models (bench/depth/study.py export wrote
# RUN/models/L{1..4}): per model and precision (f32, int8)
#   - engine step time at batch 1 and 64 and prefill speed (bench/engine_bench),
#   - time to first token of a 512-char prompt (lstmbench, 1 stream, max_tokens 1),
#   - generated tokens/s and inter-token latency at 64 streams (lstmbench).
# On a machine shared with busy processes wall-clock figures measure the
# contention as much as the model, so the CPU time is recorded too: engine
# step and prefill on the process's CPU clock (engine_bench --clock=cpu,
# --threads=1) and the server process's CPU seconds (utime+stime from
# /proc/PID/stat) per served prompt and per generated token.
# Writes RUN/serve.json (rows per depth and precision) and RUN/engine_L*.json.
#
#   bench/depth/serve_bench.sh [RUN (bench/depth/out)] [BUILD (build)]
# Environment: TEXT (the corpus; the prompt is its first 512 held-out chars),
# POINT (lstmbench duration per point, default 5s), THREADS (server and engine
# threads, default 1: on a shared machine a preempted OpenMP thread stalls every
# step; 0 = all cores), MIN_TIME (engine_bench seconds per timed run, default 0.1).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
run="${1:-$root/bench/depth/out}"
build="${2:-$root/build}"
text="${TEXT:-$root/../shared/data/tinyshakespeare.txt}"
point="${POINT:-5s}"
threads="${THREADS:-1}"
min_time="${MIN_TIME:-0.1}"
for b in server/lstmserve client/lstmbench client/lstmctl bench/engine_bench; do
  [ -x "$build/$b" ] || { echo "serve_bench.sh: $build/$b not built" >&2; exit 2; }
done
# shellcheck source=bench/server_lib.sh
source "$root/bench/server_lib.sh"
trap stop_server EXIT
prompt="$(/usr/bin/python3 -c '
import sys
t = open(sys.argv[1], encoding="utf-8").read()
v = len(t) - int(len(t) * 0.1)
sys.stdout.write(t[v:v + 512])' "$text")"
hz="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
rows="$run/serve_rows.jsonl"
: >"$rows"
for dir in "$run"/models/L*; do
  L="${dir##*/L}"
  echo "== $L layers ($dir)" >&2
  "$build/bench/engine_bench" --demo_model="$dir" --shapes=demo --precisions=f32,int8 \
    --batches=1,64 --threads="$threads" --min_time="$min_time" --reference_max_batch=0 \
    --json="$run/engine_L$L.json" \
    >/dev/null
  "$build/bench/engine_bench" --demo_model="$dir" --shapes=demo --precisions=f32,int8 \
    --batches=1,64 --threads=1 --clock=cpu --min_time="$min_time" --reference_max_batch=0 \
    --json="$run/engine_cpu_L$L.json" >/dev/null
  for q in f32 int8; do
    start_server "$build" "$run/server_L${L}_$q.log" --model "depth$L=$dir" --precision "$q" \
      --threads "$threads" --max-batch 64
    bench=("$build/client/lstmbench" --server "127.0.0.1:$server_port" --model "depth$L" --json)
    "${bench[@]}" --concurrency 64 --max_tokens 8 --duration 0.5s >/dev/null  # warm-up
    c0="$(cpu_ticks)"
    ttft="$("${bench[@]}" --prompt "$prompt" --max_tokens 1 --concurrency 1 --duration "$point")"
    c1="$(cpu_ticks)"
    tput="$("${bench[@]}" --concurrency 64 --channels 8 --max_tokens 64 --duration "$point")"
    c2="$(cpu_ticks)"
    stop_server
    echo "{\"layers\": $L, \"quant\": \"$q\", \"ttft_512\": $ttft, \"streams_64\": $tput," \
      "\"cpu_ticks_ttft\": $(( c1 - c0 )), \"cpu_ticks_64\": $(( c2 - c1 )), \"hz\": $hz}" >>"$rows"
  done
done
/usr/bin/python3 - "$run" "$rows" <<'PY'
import glob, json, os, sys, datetime, platform, subprocess
run, rows = sys.argv[1], sys.argv[2]
out = []
for line in open(rows):
    r = json.loads(line)
    eng = json.load(open(os.path.join(run, f"engine_L{r['layers']}.json")))["demo"]
    e = eng["systems"][f"engine {r['quant']}"]
    ec = json.load(open(os.path.join(run, f"engine_cpu_L{r['layers']}.json")))["demo"]["systems"][
        f"engine {r['quant']}"]
    t, s64 = r["ttft_512"], r["streams_64"]
    cfg = json.load(open(os.path.join(run, "models", f"L{r['layers']}", "config.json")))
    out.append({"layers": r["layers"], "hidden_size": cfg["hidden_size"], "quant": r["quant"],
                "step_us_b1": round(e["step_us_b1"], 1),
                "step_us_b64": round(64e6 / e["decode_tok_s"]["64"], 1),
                "engine_prefill_tok_s": round(e["prefill_tok_s"]),
                "ttft_512_ms_p50": r["ttft_512"]["ttft"]["p50_ms"],
                "tokens_per_s_64": r["streams_64"]["tokens_per_second"],
                "itl_64_ms_p50": r["streams_64"]["inter_token"]["p50_ms"],
                "itl_64_ms_p99": r["streams_64"]["inter_token"]["p99_ms"],
                "cpu_step_us_b1": round(ec["step_us_b1"], 1),
                "cpu_step_us_b64": round(64e6 / ec["decode_tok_s"]["64"], 1),
                "cpu_prefill_512_ms": round(512e3 / ec["prefill_tok_s"], 2),
                "server_cpu_ms_per_512_prompt": round(
                    1e3 * r["cpu_ticks_ttft"] / r["hz"] / max(t["requests"], 1), 2),
                "tokens_per_server_cpu_s_64": round(
                    s64["tokens_per_second"] * s64["seconds"] / max(r["cpu_ticks_64"] / r["hz"],
                                                                    1e-9)),
                "errors": {**t["errors"], **s64["errors"]}})
lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines()
              if l.startswith("Model name")), platform.processor())
json.dump({"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
           "machine": f"{model}, {os.cpu_count()} logical CPUs", "rows": out},
          open(os.path.join(run, "serve.json"), "w"), indent=1)
for r in out:
    print(r)
PY
