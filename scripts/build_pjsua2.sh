#!/usr/bin/env bash
# Builds pjproject's pjsua2 Python binding from the tarball carried in third_party/pjproject
# and installs it into a virtualenv:  scripts/build_pjsua2.sh PATH/TO/VENV/bin/python
#
# The built `_pjsua2*.so` + `pjsua2.py` are cached in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/callgauge/pjsua2-<key>/
# where <key> hashes the tarball's SHA-256, config_site.h, this script, the Python version
# and the machine, so every checkout (and CI's fresh clone) reuses one build; a second
# install copies two files. Concurrent installs wait on a lock for the one build.
# Needs (Debian): build-essential swig python3-dev libssl-dev libopus-dev uuid-dev pkg-config.
set -euo pipefail

VENV_PY=${1:?usage: build_pjsua2.sh VENV_PYTHON}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC="$ROOT/third_party/pjproject"
TARBALL="$SRC/pjproject-2.15.1.tar.gz"

(cd "$SRC" && sha256sum --quiet -c pjproject-2.15.1.tar.gz.sha256) || {
  echo "build_pjsua2.sh: checksum mismatch for $TARBALL" >&2; exit 1; }

pyver=$("$VENV_PY" -c 'import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())')
key=$( { cat "$SRC/pjproject-2.15.1.tar.gz.sha256" "$SRC/config_site.h" "$0"; echo "$pyver"; } \
       | sha256sum | cut -c1-16)
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/callgauge"
CACHE="$CACHE_ROOT/pjsua2-$key"
SITE=$("$VENV_PY" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')

install_from_cache() {
  rm -f "$SITE"/_pjsua2*.so "$SITE"/pjsua2.py
  cp "$CACHE"/_pjsua2*.so "$CACHE"/pjsua2.py "$SITE"/
  echo "$key" > "$SITE/pjsua2.callgauge-build"
}

if [[ -f "$SITE/pjsua2.callgauge-build" && $(cat "$SITE/pjsua2.callgauge-build") == "$key" ]]; then
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/pjsua2.lock"
flock 9
if [[ -f "$CACHE/.complete" ]]; then
  install_from_cache
  echo "build_pjsua2.sh: pjsua2 from cache $CACHE" >&2
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/callgauge-pjsua2.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build_pjsua2.sh: building pjsua2 from source (a few minutes; log: $work/build.log)" >&2
tar xzf "$TARBALL" -C "$work"
cd "$work/pjproject-2.15.1"
cp "$SRC/config_site.h" pjlib/include/pj/config_site.h
jobs=$(nproc 2>/dev/null || echo 2)
{
  # Static libraries (no --enable-shared), so _pjsua2.so is self-contained apart from
  # libssl/libcrypto and libopus. Null audio device, no video, no optional media back-ends.
  CFLAGS="-O2 -fPIC" CXXFLAGS="-O2 -fPIC" ./configure \
    --enable-epoll --disable-video --disable-sound --disable-libyuv --disable-libwebrtc \
    --disable-v4l2 --disable-ffmpeg --disable-openh264 --disable-vpx --disable-sdl \
    --disable-android-mediacodec --disable-opencore-amr --disable-silk --disable-bcg729 \
    --disable-lyra --disable-upnp
  make dep
  make -j"$jobs"
  make -C pjsip-apps/src/swig/python PYTHON_EXE="$VENV_PY"
} >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; echo "build_pjsua2.sh: build failed" >&2; exit 1; }

staging="$CACHE.tmp.$$"
rm -rf "$staging"; mkdir -p "$staging"
find pjsip-apps/src/swig/python/build -name '_pjsua2*.so' -exec cp {} "$staging"/ \;
cp pjsip-apps/src/swig/python/pjsua2.py "$staging"/
cp "$SRC/config_site.h" "$staging"/
ls "$staging"/_pjsua2*.so >/dev/null
touch "$staging/.complete"
rm -rf "$CACHE"; mv "$staging" "$CACHE"
install_from_cache
echo "build_pjsua2.sh: pjsua2 built and cached in $CACHE" >&2
