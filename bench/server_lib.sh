# Sourced by the benchmark scripts: starts lstmserve on loopback and waits until
# it reports SERVING.
#   start_server BUILD LOGFILE [lstmserve flags...]   sets $server_pid and $server_port
#   stop_server
# The caller installs `trap stop_server EXIT`.
start_server() {
  local build="$1" log="$2"
  shift 2
  "$build/server/lstmserve" --listen 127.0.0.1:0 --request-log none --drain-timeout 1s "$@" \
    >"$log" 2>&1 &
  server_pid=$!
  server_port=""
  local line
  for _ in $(seq 1 600); do
    if line="$(grep -m1 'serving .* on port' "$log")"; then
      server_port="$(sed -n 's/.*model(s) on port \([0-9]*\).*/\1/p' <<<"$line")"
      break
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; echo "lstmserve exited" >&2; return 1; }
    sleep 0.1
  done
  [ -n "$server_port" ] || { echo "lstmserve did not start (see $log)" >&2; return 1; }
  for _ in $(seq 1 300); do
    if [ "$("$build/client/lstmctl" health --server "127.0.0.1:$server_port" --timeout 5s \
          2>/dev/null)" = "SERVING" ]; then
      return 0
    fi
    sleep 0.2
  done
  echo "lstmserve never reported SERVING (see $log)" >&2
  return 1
}

stop_server() {
  if [ -n "${server_pid:-}" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
