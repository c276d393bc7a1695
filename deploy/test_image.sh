#!/usr/bin/env bash
# Builds the lstmserve container image (deploy/Dockerfile) with podman and runs
# the image's own server on the demo model, without a container engine:
#   1. a debian:bookworm-slim stand-in: `debootstrap --variant=minbase bookworm`
#      from the Debian mirror this machine's apt sources name, `podman import`ed
#      (the tarball is cached, see --cache);
#   2. `podman build --isolation=chroot --format docker` (the format that keeps
#      HEALTHCHECK), base passed as --build-arg BASE;
#   3. checks the image's config: non-root user, HEALTHCHECK, entrypoint;
#   4. `podman create` + `podman export` + `chroot --userspec=<image user>`
#      (`podman run` does not work on these machines) runs the image's
#      ENTRYPOINT + CMD, with --listen/--metrics-listen moved to free loopback
#      ports; the image's HEALTHCHECK command (port substituted) must say
#      SERVING, the image's lstmctl streams a greedy generation, SIGTERM must
#      make it exit 0.
# Fails (nonzero) on any error. Needs root (debootstrap, chroot, mount).
# Usage: deploy/test_image.sh [--cache DIR] [--refresh-base] [--keep-image]
#   --cache DIR      where the base tarball lives (default /var/tmp/lstmserve-image)
#   --refresh-base   debootstrap again even if the cached tarball exists
#   --keep-image     build with podman's layer cache and keep the image (tag
#                    localhost/lstmserve:test) and the imported base, so a rerun
#                    only rebuilds what changed; default: --layers=false (no
#                    cache used or left behind) and remove both at the end
# Env: DEBIAN_MIRROR overrides the mirror read from /etc/apt/sources*.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cache=/var/tmp/lstmserve-image
refresh=0
keep_image=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache="$2"; shift 2 ;;
    --refresh-base) refresh=1; shift ;;
    --keep-image) keep_image=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "test_image: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

say() { echo "test_image: $*"; }
die() { echo "test_image: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mount)"
for tool in podman debootstrap chroot; do
  command -v "$tool" >/dev/null || die "$tool not found (tools/install_deps.sh installs it)"
done

start_all=$SECONDS
base_image=localhost/lstmserve-base:bookworm-minbase
image=localhost/lstmserve:test
work="$(mktemp -d /var/tmp/lstmserve-image-test.XXXXXX)"
container=""
server_pid=""
mounted=()
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  [ -n "$container" ] && podman rm -f "$container" >/dev/null 2>&1 || true
  if [ "$keep_image" -eq 0 ]; then
    podman rmi -f "$image" "$base_image" >/dev/null 2>&1 || true
  fi
  # --one-file-system: never descend into a mount that is somehow still there.
  rm -rf --one-file-system "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. the base image --------------------------------------------------------
# The first Debian mirror serving the "bookworm" suite in the apt sources
# (one-line .list entries and deb822 .sources paragraphs).
debian_mirror() {
  local files=()
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  awk '
    function check() { if (uris != "" && (" " suites " ") ~ / bookworm /) { split(uris, u, " "); print u[1]; found = 1; exit } uris = ""; suites = "" }
    FNR == 1 { check() }
    /^[ \t]*deb[ \t]/ { line = $0; sub(/\[[^]]*\]/, "", line); n = split(line, w, /[ \t]+/);
                        i = (w[1] == "") ? 2 : 1; if (w[i + 2] == "bookworm") { print w[i + 1]; found = 1; exit } next }
    /^[ \t]*$/ { check(); next }
    /^URIs:/ { uris = $0; sub(/^URIs:[ \t]*/, "", uris) }
    /^Suites:/ { suites = $0; sub(/^Suites:[ \t]*/, "", suites) }
    END { if (!found) check() }
  ' "${files[@]}"
}
mirror="${DEBIAN_MIRROR:-$(debian_mirror)}"
[ -n "$mirror" ] || die "no Debian mirror for bookworm in /etc/apt/sources* (set DEBIAN_MIRROR)"
mkdir -p "$cache"
tarball="$cache/bookworm-minbase-$(printf '%s' "$mirror" | md5sum | cut -c1-8).tar"
t0=$SECONDS
if [ "$refresh" -eq 1 ] || [ ! -s "$tarball" ]; then
  say "debootstrap --variant=minbase bookworm from $mirror"
  mkdir "$work/base"
  debootstrap --variant=minbase bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$work/base/var/cache/apt/archives/"*.deb "$work/base/var/lib/apt/lists/"*
  tar -C "$work/base" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$work/base"
  say "base tarball $tarball ($(du -h "$tarball" | cut -f1)) in $((SECONDS - t0)) s"
else
  say "base tarball $tarball (cached)"
fi
podman import --quiet --change 'CMD ["/bin/bash"]' "$tarball" "$base_image" >/dev/null
say "imported as $base_image ($((SECONDS - t0)) s)"

# ---- 2. build -----------------------------------------------------------------
t0=$SECONDS
say "podman build --isolation=chroot -f deploy/Dockerfile (log: $work/build.log)"
layers=--layers=false
[ "$keep_image" -eq 0 ] || layers=--layers=true
if ! podman build --isolation=chroot --format docker --pull=never "$layers" \
    --build-arg BASE="$base_image" -f deploy/Dockerfile -t "$image" . >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  die "podman build failed"
fi
build_s=$((SECONDS - t0))
say "built $image in $build_s s ($(podman image inspect --format '{{.Size}}' "$image" |
  awk '{printf "%.0f MB", $1 / 1e6}'))"

# ---- 3. the image's configuration ----------------------------------------------
inspect() { podman image inspect --format "$1" "$image"; }
user="$(inspect '{{.Config.User}}')"
[ -n "$user" ] || die "image has no USER (runs as root)"
uid="${user%%:*}"
gid="${user#*:}"
[ "$gid" != "$user" ] || gid="$uid"
[[ "$uid" =~ ^[0-9]+$ && "$uid" != 0 ]] || die "image USER '$user' is not a numeric non-root uid"
mapfile -t entrypoint < <(inspect '{{range .Config.Entrypoint}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t cmd < <(inspect '{{range .Config.Cmd}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t healthcheck < <(inspect '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' | sed '/^$/d')
[ "${#entrypoint[@]}" -gt 0 ] || die "image has no ENTRYPOINT"
[ "${healthcheck[0]:-}" = "CMD" ] && [ "${#healthcheck[@]}" -gt 1 ] ||
  die "image has no exec-form HEALTHCHECK (got: ${healthcheck[*]:-none})"
say "image: USER $user, ENTRYPOINT ${entrypoint[*]}, CMD ${cmd[*]}, HEALTHCHECK ${healthcheck[*]:1}"

# ---- 4. run the image's own server ---------------------------------------------
t0=$SECONDS
container="lstmserve-test-$$"
# (podman logs an error about systemd healthcheck timers here; there is no
# systemd on these machines and nothing runs the container, so it is kept
# out of the output unless a command fails.)
podman create --name "$container" "$image" >/dev/null 2>"$work/podman.log" ||
  { cat "$work/podman.log" >&2; die "podman create failed"; }
mkdir "$work/rootfs"
podman export "$container" | tar -C "$work/rootfs" --numeric-owner -xf -
podman rm "$container" >/dev/null 2>>"$work/podman.log" ||
  { cat "$work/podman.log" >&2; die "podman rm failed"; }
container=""
rootfs="$work/rootfs"
for dir in proc dev; do mkdir -p "$rootfs/$dir"; done
mount -t proc proc "$rootfs/proc" && mounted+=("$rootfs/proc")
mount --bind /dev "$rootfs/dev" && mounted+=("$rootfs/dev")
in_image() { chroot --userspec="$uid:$gid" "$rootfs" "$@"; }
say "exported the container's filesystem ($(du -sh "$rootfs" 2>/dev/null | cut -f1)) in $((SECONDS - t0)) s"

# ENTRYPOINT + CMD as the image runs them; absl flags keep the last value, so
# appended --listen/--metrics-listen move the ports to free loopback ones.
t0=$SECONDS
# (chroot execs the server: $! is the server's pid.)
chroot --userspec="$uid:$gid" "$rootfs" "${entrypoint[@]}" "${cmd[@]}" \
  --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 >"$work/server.log" 2>&1 &
server_pid=$!
port=""
while [ -z "$port" ]; do
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "the server exited"; }
  [ $((SECONDS - t0)) -lt 120 ] || { cat "$work/server.log" >&2; die "no port after 120 s"; }
  port="$(sed -n 's/.*) on port \([0-9]*\).*/\1/p' "$work/server.log" | head -1)"
  sleep 0.2
done
say "the image's server is up on port $port after $((SECONDS - t0)) s (as uid $uid)"

# The image's HEALTHCHECK command, with the port it names replaced.
check=()
for word in "${healthcheck[@]:1}"; do check+=("${word//:50051/:$port}"); done
health="$(in_image "${check[@]}")" || die "HEALTHCHECK '${check[*]}' failed: $health"
[ "$health" = "SERVING" ] || die "HEALTHCHECK said '$health', want SERVING"
say "HEALTHCHECK ${check[*]}: $health"
lstmctl=(in_image /usr/local/bin/lstmctl --server "127.0.0.1:$port" --timeout 30s)
"${lstmctl[@]}" models | tee "$work/models.txt" | sed 's/^/  /'
grep -q '^shakespeare: 2 layers x 384 hidden' "$work/models.txt" || die "demo model not listed"
text="$("${lstmctl[@]}" generate --model shakespeare --prompt 'ROMEO:' --max_tokens 48 \
  --temperature 0 2>"$work/usage.txt")" || { cat "$work/usage.txt" >&2; die "generate failed"; }
grep -q 'FINISH_REASON_LENGTH; prompt 6 tokens, generated 48' "$work/usage.txt" ||
  die "unexpected usage: $(cat "$work/usage.txt")"
[ -n "${text//[[:space:]]/}" ] || die "empty generation"
say "generate (greedy, 48 tokens): $(printf '%s' "$text" | tr '\n' ' ')"

kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[ "$rc" -eq 0 ] || { cat "$work/server.log" >&2; die "server exit code $rc after SIGTERM, want 0"; }
grep -q 'lstmserve: stopped' "$work/server.log" || die "no 'stopped' line after SIGTERM"
say "SIGTERM: exit code 0"
say "PASS in $((SECONDS - start_all)) s (image build $build_s s)"
