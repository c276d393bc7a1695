#!/bin/bash
# Packs the benchmark binaries and every shared library they load, except
# glibc's own, into one .tar.xz that runs on another x86-64 Linux with its own
# glibc if that is as new as this machine's, else with the copy in glibc/
# (see README.md here):
#
#   bench/device/package.sh BUILD_DIR OUT_TARBALL      e.g. build dist/device.tar.xz
#
# Tarball layout: bin/ (engine_bench, serving_bench, lstmserve, lstmbench, lstmctl),
# lib/ (libstdc++, libgcc_s, libgomp, libdnnl, gRPC, protobuf, Abseil, ...),
# glibc/ (this machine's loader, libc, libm: only for run.sh's fallback where the
# borrowed machine's glibc is older than the one the kit was built against),
# onnx/char3x512.onnx (bench/ort_decode.py's fallback model, weights rounded to
# 16 values so that it compresses; made with PYTHON, default /usr/bin/python3;
# left out if that has no torch) and MANIFEST (build commit, ldd, sizes, the
# newest GLIBC symbol version the files need).
# xz, not zstd: Python's tarfile can unpack .tar.xz where no xz binary is.
# Checks that the bundle resolves every library from lib/ or glibc with a
# cleared environment, and prints the compressed size.
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR OUT_TARBALL" >&2
  exit 2
fi
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$1" && pwd)"
out="$2"
python="${PYTHON:-/usr/bin/python3}"
# glibc's libraries: not in lib/ (the borrowed machine's own are used), only in glibc/.
glibc_re='^(libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl|libnsl|libBrokenLocale|libnss_[a-z]+|libthread_db|ld-linux-x86-64|linux-vdso)\.so'

required=(bench/engine_bench bench/serving_bench)
optional=(server/lstmserve client/lstmbench client/lstmctl)
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
for b in "${required[@]}"; do
  [[ -x "$build/$b" ]] || { echo "missing $build/$b (build targets engine_bench serving_bench)" >&2; exit 1; }
  cp "$build/$b" "$stage/bin/"
done
for b in "${optional[@]}"; do
  if [[ -x "$build/$b" ]]; then cp "$build/$b" "$stage/bin/"; else echo "note: no $b, left out" >&2; fi
done

# Every library ldd resolves (transitively), copied under its soname.
ldd "$stage"/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
  while read -r soname path; do
    if [[ "$soname" =~ $glibc_re ]]; then continue; fi
    cp -L "$path" "$stage/lib/$soname"
  done
# glibc's, for the fallback only (run.sh uses the machine's own when it can).
mkdir -p "$stage/glibc"
ldd "$stage"/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3} $1 ~ /^\/.*ld-linux/ {print "ld-linux-x86-64.so.2", $1}' |
  sort -u | while read -r soname path; do
    if [[ "$soname" =~ $glibc_re ]]; then cp -L "$path" "$stage/glibc/$soname"; fi
  done
if ldd "$stage"/bin/* | grep -q 'not found'; then
  ldd "$stage"/bin/* | grep 'not found' >&2
  exit 1
fi

# Check: with only lib/ on the path and a cleared environment, every library
# resolves to lib/ or to glibc.
bad="$(env -i LD_LIBRARY_PATH="$stage/lib" ldd "$stage"/bin/* "$stage"/lib/* |
  awk -v lib="$stage/lib/" -v re="$glibc_re" '
    $2 == "=>" && ($3 == "not" || (index($3, lib) != 1 && $1 !~ re)) {print}' | sort -u)"
if [[ -n "$bad" ]]; then
  echo "libraries resolved outside the bundle:" >&2
  echo "$bad" >&2
  exit 1
fi

if "$python" -c 'import torch' 2>/dev/null; then
  "$python" "$repo/bench/ort_decode.py" --export-only --shapes char3x512 --weight-levels 16 \
    --onnx-dir "$stage/onnx" 2>"$stage/export.log" || { cat "$stage/export.log" >&2; exit 1; }
  rm "$stage/export.log"
else
  echo "note: $python has no torch; no fallback ONNX model in the bundle" >&2
fi

glibc_max="$(objdump -T "$stage"/bin/* "$stage"/lib/* 2>/dev/null |
  grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
{
  echo "lstmserve device benchmark kit"
  echo "made: $(date -u +%FT%TZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
  echo "source commit: $(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "build dir: $build (engine_bench built $(date -u -r "$build/bench/engine_bench" +%FT%TZ))"
  echo "newest glibc symbol version needed: $glibc_max"
  echo
  (cd "$stage" && du -ab bin lib glibc onnx 2>/dev/null | sort -k2)
  echo
  ldd "$stage"/bin/* | sed "s|$stage/||"
} >"$stage/MANIFEST"

mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - MANIFEST bin lib glibc $( [[ -d "$stage/onnx" ]] && echo onnx ) |
  xz -T0 -6 >"$out"
echo "$out: $(du -b "$out" | cut -f1) bytes compressed" \
  "($(du -sb "$stage" | cut -f1) bytes unpacked); glibc needed: $glibc_max" >&2
