#!/usr/bin/env bash
# Set up r1data on a fresh Debian/Ubuntu machine: system packages, a virtualenv in .venv with r1data
# and all its extras, and the tools built from source (scripts/setup.d/*.sh, run in order).
# Idempotent: a second run only redoes what changed (pyproject.toml, the setup scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${R1DATA_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
export R1DATA_VENV=$VENV R1DATA_ROOT=$ROOT
# log, apt_install, $SUDO; the scripts in setup.d source the same file
source scripts/lib.sh
export SUDO
apt_install libmagic1 zstd

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  $PY -m venv "$VENV"
fi
stamp="$VENV/.r1data-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing r1data[all] into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The CPU build of torch from this machine's disk; an open range would pull a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[all]"
  echo "$want" > "$stamp"
fi

for part in scripts/setup.d/*.sh; do
  [ -e "$part" ] || continue
  bash "$part"
done
log "ready: $VENV/bin/r1data"
