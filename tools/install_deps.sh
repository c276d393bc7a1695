#!/usr/bin/env bash
# Installs every Debian 12 package lstmserve needs (idempotent).
# Usage: tools/install_deps.sh [extra-list-file ...]
# The list lives in tools/packages-debian.txt (also read by deploy/Dockerfile).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lists=("$here/packages-debian.txt" "$@")
mapfile -t pkgs < <(cat "${lists[@]}" | sed 's/#.*//' | awk 'NF {print $1}')

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#pkgs[@]} packages present"
else
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install_deps: installing Debian's nodejs and npm"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi
# Node.js test clients, pinned by tools/npm/package-lock.json. --ignore-scripts:
# no install script downloads anything (onnxruntime-node ships its CPU library).
npm_dir="$here/npm"
if [ ! -f "$npm_dir/node_modules/.package-lock.json" ] ||
   ! cmp -s "$npm_dir/package-lock.json" "$npm_dir/node_modules/.package-lock.json.src" 2>/dev/null; then
  echo "install_deps: npm ci in tools/npm"
  (cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$npm_dir/package-lock.json" "$npm_dir/node_modules/.package-lock.json.src"
fi
