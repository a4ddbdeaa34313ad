#!/usr/bin/env bash
# Stop the cluster started by scripts/slurm-up.sh: cancel its jobs, shut the daemons down and stop
# munged. Only processes recorded in STATE_DIR's pid files are signalled (by PID), plus slurmstepd
# processes whose working directory is STATE_DIR's spool (started by our slurmd). Idempotent.
#
#   scripts/slurm-down.sh [STATE_DIR] [--purge]    --purge also deletes STATE_DIR
set -uo pipefail

STATE="" PURGE=0
for a in "$@"; do
  case "$a" in --purge) PURGE=1 ;; *) STATE="$a" ;; esac
done
STATE="${STATE:-${R1DATA_SLURM_STATE:-/tmp/r1data-slurm}}"
log() { echo "[slurm-down] $*" >&2; }
[ -d "$STATE" ] || { log "no $STATE: nothing to stop"; exit 0; }
STATE="$(cd "$STATE" && pwd -P)"
export SLURM_CONF="$STATE/etc/slurm.conf"

alive() {  # alive PID NAME (see slurm-up.sh)
  local st comm
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] || return 1
  comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
  [[ "$comm" == "$2"* ]]
}
pid_of() { cat "$1" 2>/dev/null || true; }
stop_pid() {  # stop_pid PID NAME [GRACE]: SIGTERM, then SIGKILL after GRACE seconds
  local pid="$1" name="$2" grace="${3:-10}"
  alive "$pid" "$name" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $(( grace * 10 ))); do alive "$pid" "$name" || return 0; sleep 0.1; done
  log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

CTLD=$(pid_of "$STATE/run/slurmctld.pid")
SLURMD=$(pid_of "$STATE/run/slurmd.pid")
MUNGED=$(pid_of "$STATE/munge/munged.pid")

if alive "$CTLD" slurmctld && scontrol ping >/dev/null 2>&1; then
  jobs=$(squeue -h -o %F 2>/dev/null | sort -u | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 100); do
      [ -z "$(squeue -h -t PD,R,CG,S,CF -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  scontrol shutdown >/dev/null 2>&1 || true   # slurmctld stops itself and every slurmd
fi
for _ in $(seq 50); do
  alive "$CTLD" slurmctld || alive "$SLURMD" slurmd || break
  sleep 0.1
done
stop_pid "$SLURMD" slurmd
stop_pid "$CTLD" slurmctld
for p in /proc/[0-9]*; do
  [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
  case "$(readlink "$p/cwd" 2>/dev/null)" in "$STATE"/*) ;; *) continue ;; esac
  log "stopping leftover slurmstepd (pid ${p#/proc/})"
  stop_pid "${p#/proc/}" slurmstepd 5
done
stop_pid "$MUNGED" munged
rm -f "$STATE/munge/munge.socket" "$STATE/munge/munge.socket.lock"

if [ "$PURGE" = 1 ]; then
  rm -rf "$STATE"
  log "stopped; removed $STATE"
else
  log "stopped; logs kept in $STATE/log"
fi
