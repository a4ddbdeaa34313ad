#!/usr/bin/env bash
# Run the test suite as CI does. Extra arguments go to pytest (e.g. -k warc -x).
#
# The integration tests need real tools, brought up here and taken down however pytest ends:
# - a single-node Slurm cluster for tests/test_slurm.py (scripts/slurm-up.sh, state in
#   $R1DATA_SLURM_STATE, default /tmp/r1data-slurm); one already answering there is reused and
#   left running. R1DATA_SLURM=0 skips it (the Slurm tests then skip too).
# - Ray for tests/test_ray.py: the `ray` extra (~240 MB, so not part of `all`) is installed into
#   the venv on first use.
# Here the cluster tests must run: a missing cluster or Ray fails them instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${R1DATA_VENV:-$(pwd)/.venv}
export PATH="$VENV/bin:$PATH"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
log() { echo "[test] $*" >&2; }
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.1f\", $(now)-$1}"; }

if ! "$VENV/bin/python" -c "import ray" 2>/dev/null; then
  mapfile -t ray_req < <("$VENV/bin/python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["ray"]))')
  t0=$(now)
  log "installing ${ray_req[*]} for tests/test_ray.py"
  "$VENV/bin/python" -m pip install -q "${ray_req[@]}"
  log "Ray installed in $(since "$t0") s"
fi
export R1DATA_REQUIRE_RAY=1

if [ "${R1DATA_SLURM:-1}" = 1 ]; then
  export R1DATA_SLURM_STATE=${R1DATA_SLURM_STATE:-/tmp/r1data-slurm}
  export SLURM_CONF="$R1DATA_SLURM_STATE/etc/slurm.conf"
  if [ -f "$SLURM_CONF" ] && scontrol ping 2>/dev/null | grep -q UP; then
    log "reusing the Slurm cluster in $R1DATA_SLURM_STATE (left running)"
  else
    t0=$(now)
    $SUDO env R1DATA_SLURM_STATE="$R1DATA_SLURM_STATE" bash scripts/slurm-up.sh "$R1DATA_SLURM_STATE"
    log "Slurm cluster up in $(since "$t0") s"
    stop_slurm() {
      local t
      t=$(now)
      $SUDO bash scripts/slurm-down.sh "$R1DATA_SLURM_STATE" || true
      log "Slurm cluster stopped in $(since "$t") s (logs: $R1DATA_SLURM_STATE/log)"
    }
    trap stop_slurm EXIT
  fi
  export R1DATA_REQUIRE_SLURM=1
fi

"$VENV/bin/python" -m pytest "$@"
