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
log() { echo "[setup] $*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export SUDO

# System packages every part needs; parts add theirs in scripts/setup.d/.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
export -f apt_install log
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
