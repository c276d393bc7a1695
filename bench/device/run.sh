#!/bin/bash
# Issue 3's comparison on a borrowed machine, from the repo root:
#
#   OUT=/some/dir bash bench/device/run.sh [TARBALL]     (default dist/device.tar.xz)
#
# Unpacks TARBALL (bench/device/package.sh), records the machine (lscpu, OS,
# glibc, python3's torch / onnxruntime / numpy, oneDNN's ISA and chosen
# implementations), then for char3x512 at each thread count: PyTorch decode
# (bench/pytorch_decode.py), ONNX Runtime decode (bench/ort_decode.py) and
# engine_bench f32, bf16, int8 (reading the PyTorch JSON for its own ratios);
# then serving_bench --threads 2; then OUT/summary.md (bench/device/summarize.py).
# Each step runs under `timeout` within a total budget (BUDGET_S, default 400 s)
# and its failure is logged in OUT/steps.log, not fatal. See README.md here.
#
# Environment: OUT (./device-out), PYTHON (python3: the machine's torch + ORT;
# never run with the kit's LD_LIBRARY_PATH), THREADS ("2 16"), BATCHES
# (1,8,32,64,256), MIN_TIME (0.2), REPS (3), SERVING_DURATION (5s),
# BUDGET_S (400), AMX_ISA (AVX512_CORE_AMX), KIT_GLIBC=1 (use the kit's glibc
# even where the machine's would do), QUICK=1 (threads 2, batches 1,8, min_time 0.02, 1 rep,
# serving 1s: a smoke test of the kit, not a measurement).
set -u
repo="$(cd "$(dirname "$0")/../.." && pwd)"
start=$(date +%s)
tarball="${1:-$repo/dist/device.tar.xz}"
OUT="${OUT:-./device-out}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
python="${PYTHON:-python3}"
if [[ "${QUICK:-0}" == 1 ]]; then
  : "${THREADS:=2}" "${BATCHES:=1,8}" "${MIN_TIME:=0.02}" "${REPS:=1}" "${SERVING_DURATION:=1s}"
fi
threads_list="${THREADS:-2 16}"
batches="${BATCHES:-1,8,32,64,256}"
min_time="${MIN_TIME:-0.2}"
reps="${REPS:-3}"
serving_duration="${SERVING_DURATION:-5s}"
budget="${BUDGET_S:-400}"
amx_isa="${AMX_ISA:-AVX512_CORE_AMX}"  # another value only to test the AMX branch
deadline=$((start + budget))
log="$OUT/steps.log"
: >"$log"

note() { echo "[$(date -u +%T)] $*" | tee -a "$log" >&2; }

# step NAME CAP_S CMD...: runs CMD with stdout to OUT/NAME.<ext> (ext: md/json/
# txt by NAME's suffix, default .out) and stderr to OUT/NAME.err, under a
# timeout of min(CAP_S, time left in the budget); logs status and seconds.
step() {
  local name="$1" cap="$2"
  shift 2
  local left=$((deadline - $(date +%s))) t
  t=$((cap < left ? cap : left))
  if ((t < 5)); then
    note "$name: skipped, budget spent"
    return 1
  fi
  local t0 rc
  t0=$(date +%s)
  timeout -k 5 "$t" "$@" >"$OUT/$name.stdout" 2>"$OUT/$name.err"
  rc=$?
  local how="ok"
  ((rc == 124 || rc == 137)) && how="TIMED OUT after ${t}s"
  ((rc != 0 && rc != 124 && rc != 137)) && how="FAILED"
  note "$name: $how (exit $rc, $(($(date +%s) - t0)) s)"
  ((rc != 0)) && tail -5 "$OUT/$name.err" | sed 's/^/    /' >&2
  return "$rc"
}

# The kit: bin/ and lib/ (LD_LIBRARY_PATH for its binaries only: python3's
# torch must keep its own libstdc++ and OpenMP).
kit="$(mktemp -d)"
trap 'rm -rf "$kit"' EXIT
if ! tar -xf "$tarball" -C "$kit" 2>"$OUT/unpack.err"; then
  # No xz binary: Python's tarfile reads .tar.xz itself.
  "$python" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
    "$tarball" "$kit" 2>>"$OUT/unpack.err" || { note "cannot unpack $tarball"; exit 1; }
fi
note "unpacked $tarball ($(du -b "$tarball" | cut -f1) bytes)"
cp "$kit/MANIFEST" "$OUT/kit-MANIFEST.txt" 2>/dev/null
# The machine's glibc if the binaries start with it, else the kit's (its
# loader run directly; KIT_GLIBC=1 forces that, to test it).
kitenv=(env LD_LIBRARY_PATH="$kit/lib")
loader="the machine's glibc"
if [[ "${KIT_GLIBC:-0}" == 1 ]] ||
    ! "${kitenv[@]}" "$kit/bin/engine_bench" --version >/dev/null 2>"$OUT/loader.err"; then
  kitenv=("$kit/glibc/ld-linux-x86-64.so.2" --library-path "$kit/lib:$kit/glibc")
  loader="the kit's glibc ($(ls "$kit/glibc" | tr '\n' ' '))"
  "${kitenv[@]}" "$kit/bin/engine_bench" --version >/dev/null 2>>"$OUT/loader.err" ||
    note "the kit's binaries start neither way (see loader.err)"
fi
note "kit binaries run with $loader"
engine_bench=("${kitenv[@]}" "$kit/bin/engine_bench")

# 1. The machine.
{
  echo "date: $(date -u +%FT%TZ)"
  echo "kernel: $(uname -srm)"
  echo "os: $( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null)"
  echo "glibc: $(ldd --version 2>/dev/null | head -1); kit binaries run with $loader"
  echo "nproc: $(nproc)"
  lscpu | grep -E '^(Model name|Architecture|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|NUMA node\(s\)|L2 cache|L3 cache|CPU max MHz)' 
  echo "ISA flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(amx|avx512_bf16|avx512_vnni|avx512f$|avx_vnni)' | sort | tr '\n' ' ')"
  echo "python3: $("$python" --version 2>&1) at $(command -v "$python")"
  "$python" - <<'EOF' 2>&1
import importlib
for m in ("torch", "onnxruntime", "numpy"):
    try:
        mod = importlib.import_module(m)
        extra = ""
        if m == "torch":
            extra = " (mkldnn %s, threads %d)" % (mod.backends.mkldnn.is_available(),
                                                  mod.get_num_threads())
        if m == "onnxruntime":
            extra = " providers %s" % mod.get_available_providers()
        print("%s %s%s" % (m, mod.__version__, extra))
    except Exception as e:
        print("%s: not importable (%s)" % (m, e))
EOF
} >"$OUT/system.txt" 2>&1
cat "$OUT/system.txt" >&2

# 2. oneDNN: the ISA it dispatches to and the implementations it picks, by
# default and with AMX asked for (ONEDNN_MAX_CPU_ISA enables ISAs that a
# library version supports only on request; Debian 12's oneDNN is v2.6).
probe() {  # probe NAME [VAR=VALUE...]
  local name="$1"
  shift
  step "$name" 60 env ONEDNN_VERBOSE=1 DNNL_VERBOSE=1 "$@" "${engine_bench[@]}" \
    --shapes=char3x512 --precisions=f32,bf16,int8 --batches=1,64 --threads=2 --min_time=0 \
    --reps=1 --prompt=16 --reference_max_batch=0
  # oneDNN's own ISA line comes at its first primitive, before any crash.
  probe_isa="$(grep -m1 -oE '(onednn|dnnl)_verbose,([^,]*,)?info,cpu,isa:.*' "$OUT/$name.stdout" 2>/dev/null)"
  {
    echo "== $name ${*:-(default environment)}"
    grep -m1 -o 'oneDNN ISA: [a-z0-9_]*' "$OUT/$name.stdout"
    grep -E '^(onednn|dnnl)_verbose,(info|[^,]*,info)' "$OUT/$name.stdout" | sort -u | head -12
    echo "primitives executed (count, kind, implementation):"
    awk -F, '{for (i = 1; i < NF; ++i) if ($i == "exec") {print $(i+2) "," $(i+3); break}}' \
      "$OUT/$name.stdout" | sort | uniq -c | sort -rn
    echo
  } >>"$OUT/onednn_isa.txt" 2>/dev/null
  xz -f "$OUT/$name.stdout" 2>/dev/null
}
: >"$OUT/onednn_isa.txt"
probe_isa=""
probe onednn_verbose
isa_default="$probe_isa"
probe_isa=""
probe onednn_verbose_amx ONEDNN_MAX_CPU_ISA="$amx_isa" DNNL_MAX_CPU_ISA="$amx_isa"
isa_amx="$probe_isa"
cat "$OUT/onednn_isa.txt" >&2

# 3. Per thread count: PyTorch, ONNX Runtime, then the engine (which reads
# PyTorch's JSON for its own ratio table).
for t in $threads_list; do
  step "pytorch_t$t" 60 "$python" "$repo/bench/pytorch_decode.py" --shapes char3x512 \
    --batches "$batches" --threads "$t" --min-time "$min_time" --reps "$reps"
  mv "$OUT/pytorch_t$t.stdout" "$OUT/pytorch_t$t.json" 2>/dev/null
  step "ort_t$t" 90 "$python" "$repo/bench/ort_decode.py" --shapes char3x512 \
    --batches "$batches" --threads "$t" --min-time "$min_time" --reps "$reps" \
    --onnx-dir "$kit/exported" --fallback-onnx "$kit/onnx"
  mv "$OUT/ort_t$t.stdout" "$OUT/ort_t$t.json" 2>/dev/null
  step "engine_t$t" 100 "${engine_bench[@]}" --shapes=char3x512 --precisions=f32,bf16,int8 \
    --batches="$batches" --threads="$t" --min_time="$min_time" --reps="$reps" \
    --pytorch_json="$OUT/pytorch_t$t.json" --markdown="$OUT/engine_t$t.md"
  rm -f "$OUT/engine_t$t.stdout"  # the same tables as engine_t$t.md
done

# 4. Served vs engine throughput; 2 engine threads leave cores to gRPC and the
# in-process client.
step serving_t2 60 "${kitenv[@]}" "$kit/bin/serving_bench" --threads 2 \
  --duration "$serving_duration" --embedding 512
mv "$OUT/serving_t2.stdout" "$OUT/serving_t2.txt" 2>/dev/null

# 5. Only if asking for AMX changed oneDNN's ISA: the engine's bf16 and int8
# again with AMX enabled (after everything else, within what budget is left).
if [[ -n "$isa_amx" && "$isa_amx" != "$isa_default" ]]; then
  note "ONEDNN_MAX_CPU_ISA=$amx_isa changes the ISA (${isa_amx##*isa:}): engine bf16/int8 again"
  for t in $threads_list; do
    step "engine_amx_t$t" 60 env ONEDNN_MAX_CPU_ISA="$amx_isa" DNNL_MAX_CPU_ISA="$amx_isa" \
      "${engine_bench[@]}" --shapes=char3x512 --precisions=bf16,int8 --batches="$batches" \
      --threads="$t" --min_time="$min_time" --reps="$reps" --reference_max_batch=0 \
      --markdown="$OUT/engine_amx_t$t.md"
    rm -f "$OUT/engine_amx_t$t.stdout"
  done
fi

# 6. One report.
note "total $(($(date +%s) - start)) s"
timeout 30 "$python" "$repo/bench/device/summarize.py" "$OUT" $threads_list >"$OUT/summary.md" \
  2>"$OUT/summary.err" || note "summary: FAILED (see summary.err)"
find "$OUT" -maxdepth 1 -type f -empty -delete  # stderr of quiet steps, ...
echo "wrote $OUT/summary.md" >&2
