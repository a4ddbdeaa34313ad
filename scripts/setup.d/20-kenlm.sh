#!/usr/bin/env bash
# KenLM's estimation tools (lmplz, build_binary) for `r1data models build-kenlm`. Debian has no
# package for them, so they are built from the kenlm sdist on PyPI (the same sources as the Python
# module) and installed into $R1DATA_VENV/bin. Querying uses the prebuilt `ufal.kenlm` wheel from
# the `quality` extra, so nothing else is compiled. Idempotent: when both tools are installed and
# run, this script does nothing (~0.1 s).
set -euo pipefail
ROOT=${R1DATA_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
VENV=${R1DATA_VENV:-$ROOT/.venv}
KENLM_VERSION=0.3.0
source "$(dirname "$0")/../lib.sh"  # log, apt_install, $SUDO

installed() {
  # Both print their usage (build_binary exits non-zero doing so); a missing shared library makes
  # them fail to start at all. Output is captured first: with pipefail, `| grep -q` can SIGPIPE.
  [ -x "$VENV/bin/lmplz" ] && [ -x "$VENV/bin/build_binary" ] || return 1
  local a b
  a=$("$VENV/bin/lmplz" --help 2>&1 || true)
  b=$("$VENV/bin/build_binary" 2>&1 || true)
  grep -q "discount_fallback" <<<"$a" && grep -q "trie" <<<"$b"
}
if installed; then
  exit 0
fi

apt_install g++ make cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev \
  libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev

BUILD=${R1DATA_BUILD:-$ROOT/build}/kenlm-$KENLM_VERSION
mkdir -p "$BUILD"
if [ ! -f "$BUILD/src/CMakeLists.txt" ]; then
  log "fetching the kenlm $KENLM_VERSION sdist"
  rm -rf "$BUILD/dl" "$BUILD/src"
  "$VENV/bin/python" -m pip download -q --no-deps --no-binary kenlm -d "$BUILD/dl" "kenlm==$KENLM_VERSION"
  mkdir -p "$BUILD/src"
  tar -xzf "$BUILD"/dl/kenlm-*.tar.gz -C "$BUILD/src" --strip-components=1
fi
log "building lmplz and build_binary (kenlm $KENLM_VERSION, ~1 min on 2 cores)"
# KENLM_MAX_ORDER=6 is KenLM's default and matches the prebuilt query module.
cmake -S "$BUILD/src" -B "$BUILD/cmake" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 -DCOMPILE_TESTS=OFF >"$BUILD/cmake.log" 2>&1 \
  || { tail -30 "$BUILD/cmake.log" >&2; exit 1; }
make -C "$BUILD/cmake" -j"$(nproc)" lmplz build_binary >"$BUILD/make.log" 2>&1 \
  || { tail -30 "$BUILD/make.log" >&2; exit 1; }
install -m 0755 "$BUILD/cmake/bin/lmplz" "$BUILD/cmake/bin/build_binary" "$VENV/bin/"
installed || { log "lmplz/build_binary were built but do not run; see $BUILD/make.log"; exit 1; }
log "installed $VENV/bin/lmplz and $VENV/bin/build_binary"
