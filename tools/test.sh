#!/usr/bin/env bash
# Installs what is missing, builds lstmserve, and runs the whole test suite:
#   1. the Release build and every GoogleTest/ctest suite + the Python tool tests;
#   2. the hardening and deployment stages, each its own script with a duration
#      flag (CI runs them short; run them longer by hand):
#        demo      tools/demo_test.sh       tools/demo.sh (the README's quick start): both
#                                           demo models must answer
#        sanitize  tools/sanitize.sh        ASan+UBSan suite, TSan scheduler/server tests
#        fuzz      tools/fuzz.sh            every libFuzzer target for FUZZ_SECONDS (30)
#        soak      tools/soak.sh            mixed load for SOAK_DURATION (60s)
#        lb        deploy/test_lb.sh        nginx + 3 replicas under load, SIGTERM/SIGKILL/restart
#        image     deploy/test_image.sh     builds the container image with podman, runs it
#      image is not in the default list: test_image.sh depends on the podman set-up
#      of the machine; run it with STAGES="image" (deploy/README.md). lb takes ~1 min.
# Usage: tools/test.sh            (as root or a sudoer, on Debian 12)
# Env:   BUILD_DIR (default build), JOBS (default nproc), CTEST_ARGS (extra ctest args),
#        STAGES (default "demo sanitize fuzz soak lb"; "" runs only step 1),
#        FUZZ_SECONDS (30), SOAK_DURATION (60s)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools/install_deps.sh
build="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$jobs"
# Python tools: export round-trip through the plain-Python safetensors writer.
/usr/bin/python3 tools/tools_test.py
ctest --test-dir "$build" --output-on-failure -j"$jobs" ${CTEST_ARGS:-}

stage_script() {
  case "$1" in
    demo) echo "tools/demo_test.sh --build $build" ;;
    sanitize) echo "tools/sanitize.sh" ;;
    fuzz) echo "tools/fuzz.sh --seconds ${FUZZ_SECONDS:-30}" ;;
    soak) echo "tools/soak.sh --build $build --duration ${SOAK_DURATION:-60s}" ;;
    lb) echo "deploy/test_lb.sh --build $build" ;;
    image) echo "deploy/test_image.sh" ;;
    *) echo "tools/test.sh: unknown stage '$1'" >&2; return 2 ;;
  esac
}
for stage in ${STAGES-demo sanitize fuzz soak lb}; do
  cmd="$(stage_script "$stage")"
  script="${cmd%% *}"
  if [ ! -f "$script" ]; then
    echo "tools/test.sh: stage $stage: $script does not exist yet, skipped"
    continue
  fi
  echo "=== stage $stage: $cmd"
  start=$SECONDS
  bash $cmd
  echo "=== stage $stage passed in $((SECONDS - start)) s"
done
echo "tools/test.sh: all passed"
