# Sourced by deploy/test_lb.sh and deploy/repro_drain_race.sh: starts nginx
# on a free loopback port in front of the three replicas, with the project's
# proxy policy (or a candidate to compare).
#
# start_lb_nginx PROXY_CONF ERROR_LOG_LEVEL
#   Needs: $work, ${port[1..3]}, $fail_timeout, $nginx_bin, $lstmctl, die().
#   Sets:  $nginx_pid, $lb_port. Writes $work/nginx.conf and, in $work,
#          nginx-error.log and nginx-access.log (one line per call: the
#          client's x-request-id, end time, duration, replica(s) tried, HTTP
#          status, grpc-status trailer/header).
start_lb_nginx() {
  local proxy_conf="$1" level="$2" user_line="" candidate attempt
  mkdir -p "$work/nginx"
  [ "$(id -u)" -ne 0 ] || user_line="user $(id -un) $(id -gn);"  # workers stay this user
  lb_port=""
  for attempt in 1 2 3 4 5 6 7 8; do
    candidate=$((20000 + RANDOM % 40000))
    cat >"$work/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx-error.log $level;
events { worker_connections 1024; }
http {
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  log_format calls '\$http_x_request_id \$msec \$request_time \$upstream_addr \$status '
                   '\$upstream_trailer_grpc_status \$upstream_http_grpc_status';
  access_log $work/nginx-access.log calls;
  upstream lstmserve {
    server 127.0.0.1:${port[1]} max_fails=1 fail_timeout=${fail_timeout}s;
    server 127.0.0.1:${port[2]} max_fails=1 fail_timeout=${fail_timeout}s;
    server 127.0.0.1:${port[3]} max_fails=1 fail_timeout=${fail_timeout}s;
    keepalive 32;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:$candidate http2;
    include $proxy_conf;
  }
}
CONF
    "$nginx_bin" -p "$work/nginx" -e "$work/nginx-error.log" -c "$work/nginx.conf" \
      -g 'daemon off;' 2>>"$work/nginx-error.log" &
    nginx_pid=$!
    for _ in $(seq 50); do
      kill -0 "$nginx_pid" 2>/dev/null || break
      if "$lstmctl" health --server "127.0.0.1:$candidate" --timeout 1s >/dev/null 2>&1; then
        lb_port=$candidate
        return 0
      fi
      sleep 0.1
    done
    kill -TERM "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=""
    grep -q 'Address already in use' "$work/nginx-error.log" ||
      { cat "$work/nginx-error.log" >&2; die "nginx did not start"; }
  done
  die "no free port for nginx after 8 tries"
}
