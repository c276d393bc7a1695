#!/usr/bin/env bash
# Installs what is missing, builds lstmserve, starts one server on both shipped
# demo models (models/shakespeare: characters; models/shakespeare-bpe:
# SentencePiece subwords), streams a sample from each with lstmctl, and keeps
# serving until Ctrl-C (SIGINT drains and exits 0). Exits nonzero if the server
# does not start or either model does not answer.
# Usage: tools/demo.sh            (as root or a sudoer, on Debian 12)
# Env:   LISTEN (default 127.0.0.1:50051), DEMO_EXIT=1 to stop after the sample query.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools/install_deps.sh
build="${BUILD_DIR:-build}"
listen="${LISTEN:-127.0.0.1:50051}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)" --target lstmserve lstmctl lstmgen

log="$build/lstmserve-demo.log"
echo "demo: starting lstmserve on $listen (server log: $log)"
"$build"/server/lstmserve --model shakespeare=models/shakespeare \
  --model shakespeare-bpe=models/shakespeare-bpe --listen "$listen" 2>"$log" &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server' EXIT
for _ in $(seq 1 100); do
  if "$build"/client/lstmctl health --server "$listen" >/dev/null 2>&1; then break; fi
  kill -0 $server 2>/dev/null || { echo "demo: lstmserve exited" >&2; exit 1; }
  sleep 0.2
done
"$build"/client/lstmctl health --server "$listen"
"$build"/client/lstmctl models --server "$listen"
# A sample from each model: max_tokens counts the model's tokens (characters for
# shakespeare, SentencePiece pieces of ~2.8 characters for shakespeare-bpe).
sample() {
  echo
  echo "--- lstmctl generate --model $1 --prompt 'ROMEO:' --max_tokens $2 --temperature 0.8 --seed 7"
  "$build"/client/lstmctl generate --server "$listen" --model "$1" --prompt $'ROMEO:\n' \
    --max_tokens "$2" --temperature 0.8 --seed 7
}
sample shakespeare 400
sample shakespeare-bpe 150
cat <<TXT

lstmserve is serving models/shakespeare (characters) and models/shakespeare-bpe
(subwords) on $listen. Try, from another terminal:
  $build/client/lstmctl generate --server $listen --model shakespeare --prompt 'JULIET:' --max_tokens 300
  $build/client/lstmctl generate --server $listen --model shakespeare-bpe --prompt 'JULIET:' --max_tokens 100
  $build/client/lstmctl score    --server $listen --model shakespeare --text 'To be, or not to be'
  $build/client/lstmctl embed    --server $listen --model shakespeare --text 'Good morrow'
  $build/client/lstmctl models   --server $listen
  $build/client/lstmbench        --server $listen --model shakespeare --concurrency 16 --duration 10s
Offline, without a server: $build/tools/lstmgen --model models/shakespeare --prompt 'KING:'
Server log (one JSON line per request): $log
Press Ctrl-C to stop the server.
TXT
if [ "${DEMO_EXIT:-0}" = "1" ]; then exit 0; fi
wait $server
