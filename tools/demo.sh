#!/usr/bin/env bash
# Installs what is missing, builds lstmserve, and runs it on the shipped demo
# model (models/shakespeare): generates Shakespeare-like text offline.
# Usage: tools/demo.sh            (as root or a sudoer, on Debian 12)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools/install_deps.sh
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLSTMSERVE_BUILD_TESTS=OFF
cmake --build "$build" -j"$(nproc)" --target lstmgen
"$build"/tools/lstmgen --model models/shakespeare --prompt $'ROMEO:\n' --max_tokens 500 \
  --temperature 0.8 --seed 7
