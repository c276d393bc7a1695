#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang-14 (-fsanitize=fuzzer,
# address,undefined; only the sources they exercise, see LSTMSERVE_FUZZ in
# CMakeLists.txt) and runs each for a given time, starting from its committed
# seed corpus and regressions. The committed corpus is only read: new inputs
# go to <build>/fuzz-out/<target>/new/. Fails if any target crashes, leaks,
# times out or breaks an invariant, and prints the reproducer.
# Usage: tools/fuzz.sh [--seconds N] [--build DIR] [--jobs J] [target ...]
#   --seconds N  fuzzing time per target (default 30)
#   --build DIR  build directory (default build-fuzz)
#   --jobs J     build parallelism, and how many targets fuzz at once (default:
#                the number of CPUs; each target still gets N seconds)
#   target       model_config_fuzzer safetensors_fuzzer tokenizer_fuzzer
#                generate_request_fuzzer stop_matcher_fuzzer openai_json_fuzzer
#                (default: all)
# A crash file becomes a regression test by committing it under
# tests/fuzz/regressions/<target>/ (ctest replays it in the ordinary build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

all_targets=(model_config_fuzzer safetensors_fuzzer tokenizer_fuzzer generate_request_fuzzer
  stop_matcher_fuzzer openai_json_fuzzer)
seconds=30
build=build-fuzz
jobs="$(nproc)"
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    -*) echo "tools/fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  case " ${all_targets[*]} " in
    *" $t "*) ;;
    *) echo "tools/fuzz.sh: unknown target $t (known: ${all_targets[*]})" >&2; exit 2 ;;
  esac
done

# Largest input per target: room above the biggest seed without slowing the
# search (a request needs > 4096 bytes to reach the prompt-length limit).
max_len() {
  case "$1" in
    model_config_fuzzer) echo 8192 ;;
    safetensors_fuzzer) echo 4096 ;;
    tokenizer_fuzzer) echo 1024 ;;
    generate_request_fuzzer) echo 8192 ;;
    stop_matcher_fuzzer) echo 1024 ;;
    openai_json_fuzzer) echo 8192 ;;
  esac
}

CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLSTMSERVE_FUZZ=ON -DLSTMSERVE_BUILD_TESTS=OFF -DLSTMSERVE_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

out="$build/fuzz-out"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Runs one target; its log is $out/<target>/log.
fuzz_one() {
  local t="$1" dir="$out/$1"
  rm -rf "$dir"
  mkdir -p "$dir/new" "$dir/artifacts"
  local corpora=("$dir/new" "tests/fuzz/corpus/$t")
  [ -d "tests/fuzz/regressions/$t" ] && corpora+=("tests/fuzz/regressions/$t")
  local dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=("-dict=tests/fuzz/dict/$t.dict")
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
    -rss_limit_mb=2048 -timeout=10 -use_value_profile=1 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "${dict[@]}" "${corpora[@]}" >"$dir/log" 2>&1 &&
    echo 0 >"$dir/status" || echo $? >"$dir/status"
}

echo "tools/fuzz.sh: ${targets[*]}, ${seconds} s each, $jobs at a time; logs in $out/<target>/log"
mkdir -p "$out"
running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
failed=()
for t in "${targets[@]}"; do
  status=$(cat "$out/$t/status")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$out/$t/log" | tail -n 1 || true)
  new=$(find "$out/$t/new" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    echo "  $t: ok, ${execs:-?} executions, ${cov:-cov: ?} edges, $new new inputs"
  else
    failed+=("$t")
    echo "  $t: FAILED (exit $status); last lines of $out/$t/log:"
    tail -n 40 "$out/$t/log" | sed 's/^/    /'
    for a in "$out/$t/artifacts"/*; do
      [ -f "$a" ] || continue
      echo "  reproducer: $a"
      echo "    rerun:  $build/tests/fuzz/$t $a"
      echo "    keep:   cp $a tests/fuzz/regressions/$t/  (then fix the bug)"
    done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "tools/fuzz.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "tools/fuzz.sh: all ${#targets[@]} targets ran ${seconds} s without a failure"
