#!/usr/bin/env bash
# Installs what is missing, builds lstmserve, and runs the whole test suite.
# Usage: tools/test.sh            (as root or a sudoer, on Debian 12)
# Env:   BUILD_DIR (default build), JOBS (default nproc), CTEST_ARGS (extra ctest args)
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
