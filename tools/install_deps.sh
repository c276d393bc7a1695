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
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#pkgs[@]} packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
