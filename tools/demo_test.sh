#!/usr/bin/env bash
# Runs the README's first quick-start command, tools/demo.sh, with DEMO_EXIT=1
# on a free loopback port and fails unless both shipped demo models are listed
# and each finished its sample with at least one generated token:
# models/shakespeare (characters) and models/shakespeare-bpe (SentencePiece).
# Usage: tools/demo_test.sh [--build DIR]   (default build; as tools/demo.sh:
# installs missing Debian packages, so root or a sudoer)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    *) echo "demo_test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
die() { echo "demo_test.sh: $*" >&2; exit 1; }

port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
rc=0
DEMO_EXIT=1 LISTEN="127.0.0.1:$port" BUILD_DIR="$build" tools/demo.sh >"$out" 2>&1 || rc=$?
cat "$out"
[ "$rc" -eq 0 ] || die "tools/demo.sh exited $rc"
grep -q '^shakespeare: .*vocabulary 65 (char)' "$out" || die "shakespeare not listed"
grep -q '^shakespeare-bpe: .*vocabulary 2000 (sentencepiece)' "$out" ||
  die "shakespeare-bpe not listed"
# lstmctl's summary line (stderr), one per finished sample: demo.sh asks
# shakespeare, then shakespeare-bpe.
n="$(grep -o '\[FINISH_REASON_[A-Z_]*; prompt [0-9]* tokens, generated [1-9]' "$out" | wc -l)"
[ "$n" -eq 2 ] || die "expected 2 finished samples with tokens, got $n"
echo "demo_test.sh: both demo models answered (port $port)"
