#!/usr/bin/env bash
# The sanitizer stage of tools/test.sh (issue 7), with GCC's sanitizers:
#   asan  builds <prefix>-asan with AddressSanitizer + UndefinedBehaviorSanitizer
#         (LeakSanitizer included) and runs the WHOLE ctest suite under it;
#   tsan  builds <prefix>-tsan with ThreadSanitizer and runs the server-layer
#         tests (tests/server: the scheduler, the gRPC service, reactors,
#         metrics, lifecycle) under it, after tsan_selftest has shown that
#         TSan sees absl::Mutex and still reports a real race.
# Any sanitizer report fails the stage: it fails its test (UBSan does not
# recover, TSan and ASan halt) and every report is also written to
# <build>/sanitizer-logs/, which must stay empty; that also catches reports
# from processes a test starts in the background (tests/deploy). Suppressions
# (third-party code only, each explained) are in tools/sanitizers/.
# Usage: tools/sanitize.sh [--build-prefix DIR] [--only asan|tsan] [--jobs N]
#   --build-prefix  build directories are DIR-asan and DIR-tsan (default: build)
#   --only          run one half
#   --jobs          build and ctest parallelism (default: nproc)
# Env: CTEST_ARGS (extra ctest arguments for both halves).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

prefix=build
only=""
jobs="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --build-prefix) prefix="${2:?--build-prefix needs a directory}"; shift 2 ;;
    --only) only="${2:?--only needs asan or tsan}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "tools/sanitize.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$only" in
  ""|asan|tsan) ;;
  *) echo "tools/sanitize.sh: --only takes asan or tsan, not '$only'" >&2; exit 2 ;;
esac
case "$prefix" in /*) ;; *) prefix="$root/$prefix" ;; esac
supp="$root/tools/sanitizers"

# configure BUILD_DIR SANITIZERS: GCC, optimized enough for the numeric tests
# and debuggable (-O1 -g; assertions stay on), no benchmarks.
configure() {
  cmake -S . -B "$1" -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DLSTMSERVE_SANITIZE="$2" \
    -DLSTMSERVE_BUILD_BENCH=OFF -DLSTMSERVE_BUILD_TESTS=ON >/dev/null
}

# check_logs DIR NAME: fails if any sanitizer wrote a report into DIR.
check_logs() {
  local reports
  reports="$(find "$1" -type f 2>/dev/null | sort)"
  if [ -n "$reports" ]; then
    echo "tools/sanitize.sh: $2 reported errors:"
    for f in $reports; do echo "--- $f"; cat "$f"; done
    return 1
  fi
}

run_asan() {
  local build="$prefix-asan"
  local logs="$build/sanitizer-logs"
  echo "=== sanitize/asan: build ${build#"$root"/} (ASan + UBSan), whole suite"
  configure "$build" "address,undefined"
  cmake --build "$build" -j"$jobs"
  rm -rf "$logs" && mkdir -p "$logs"
  local status=0
  # detect_stack_use_after_return: also catch use of a returned frame.
  # check_initialization_order/strict_init_order: static-init-order bugs.
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:strict_string_checks=1:log_path=$logs/asan:log_exe_name=1" \
  LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:report_error_type=1:suppressions=$supp/ubsan.supp:log_path=$logs/ubsan:log_exe_name=1" \
    ctest --test-dir "$build" --output-on-failure -j"$jobs" ${CTEST_ARGS:-} || status=$?
  check_logs "$logs" "ASan/UBSan" || status=1
  return "$status"
}

run_tsan() {
  local build="$prefix-tsan"
  local logs="$build/sanitizer-logs"
  echo "=== sanitize/tsan: build ${build#"$root"/} (TSan), server tests only"
  configure "$build" "thread"
  local targets=(tsan_selftest)
  for src in tests/server/*_test.cc; do targets+=("$(basename "$src" .cc)"); done
  cmake --build "$build" -j"$jobs" --target "${targets[@]}"
  rm -rf "$logs" && mkdir -p "$logs"
  local tsan_options="halt_on_error=1:suppressions=$supp/tsan.supp:print_suppressions=0"

  # The shim works: absl::Mutex handoffs are clean, an unguarded counter is not.
  TSAN_OPTIONS="$tsan_options" "$build/tsan_selftest" guarded
  local out
  if out="$(TSAN_OPTIONS="$tsan_options" "$build/tsan_selftest" racy 2>&1)" ||
     ! grep -q "WARNING: ThreadSanitizer: data race" <<<"$out"; then
    echo "$out"
    echo "tools/sanitize.sh: TSan did not report the deliberate race in tsan_selftest racy"
    return 1
  fi
  echo "tsan_selftest: guarded clean, deliberate race reported"

  local status=0
  # OMP_NUM_THREADS=1: the server tests run the reference engine, whose Eigen
  # GEMMs would otherwise fork OpenMP teams; libgomp is not instrumented, so
  # TSan cannot see its barriers and would report Eigen's own partitioned
  # writes. One OpenMP thread keeps that inside the scheduler thread and
  # changes nothing about lstmserve's threads (README in tools/sanitizers/).
  # The tests that drive gRPC with raw sockets, generic stubs and synchronous
  # readers cut mid-stream (GarbageBytesTest, MalformedMessageTest,
  # FaultsTest) surface one
  # hand-over inside uninstrumented gRPC after another under TSan (allocated
  # in libgrpc++, used in its header templates), not races in lstmserve. They
  # run under ASan+UBSan and in the plain build; the other server tests run
  # here. The list is checked: a renamed fixture fails this stage rather than
  # silently running under TSan.
  local skipped=(GarbageBytesTest MalformedMessageTest FaultsTest)
  local name
  for name in "${skipped[@]}"; do
    if ! ctest --test-dir "$build" -N -R "^$name[.]" | grep -q "Total Tests: [1-9]"; then
      echo "tools/sanitize.sh: no test named $name.* left to skip under TSan; update the list"
      return 1
    fi
  done
  OMP_NUM_THREADS=1 TSAN_OPTIONS="$tsan_options:log_path=$logs/tsan:log_exe_name=1" \
    ctest --test-dir "$build" --output-on-failure -j"$jobs" -L '^server$' \
      -E "^($(IFS='|'; echo "${skipped[*]}"))[.]" ${CTEST_ARGS:-} ||
    status=$?
  check_logs "$logs" "TSan" || status=1
  return "$status"
}

start=$SECONDS
status=0
if [ "$only" != tsan ]; then
  run_asan || status=1
  echo "=== sanitize/asan done at $((SECONDS - start)) s"
fi
if [ "$only" != asan ]; then
  run_tsan || status=1
  echo "=== sanitize/tsan done at $((SECONDS - start)) s"
fi
if [ "$status" -ne 0 ]; then
  echo "tools/sanitize.sh: FAILED"
  exit 1
fi
echo "tools/sanitize.sh: passed in $((SECONDS - start)) s"
