#!/usr/bin/env bash
# Start a throw-away single-node Slurm cluster (munged + slurmctld + slurmd from Debian's packages)
# for r1data's integration tests. No systemd, no cgroups; stop it with scripts/slurm-down.sh.
#
#   scripts/slurm-up.sh [STATE_DIR]        default: $R1DATA_SLURM_STATE or /tmp/r1data-slurm
#   source STATE_DIR/slurm.env             sets SLURM_CONF for sbatch/squeue/scontrol
#
# Everything (config, munge key and socket, spool, pid files, logs) lives in STATE_DIR; nothing is
# written to /etc. Idempotent: daemons already running are left alone. Waits until the node is idle.
# Needs root (slurmd starts jobs as the submitting user; munged guards the key). The packages come
# from scripts/setup.d/50-slurm.sh.
#
# Environment: R1DATA_SLURM_CPUS (CPUs the node advertises; default: the real core layout),
# SLURMCTLD_PORT=6817, SLURMD_PORT=6818, R1DATA_SLURM_EXTRA_CONF (lines appended to slurm.conf),
# R1DATA_SLURM_TIMEOUT=60 (seconds to wait for the node).
set -euo pipefail

STATE="${1:-${R1DATA_SLURM_STATE:-/tmp/r1data-slurm}}"
CTLD_PORT="${SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${SLURMD_PORT:-6818}"
TIMEOUT="${R1DATA_SLURM_TIMEOUT:-60}"
T0=$(date +%s.%N)
log() { echo "[slurm-up] $*" >&2; }
die() { log "error: $*"; exit 1; }
since() { awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$1}"; }

[ "$(id -u)" = 0 ] || die "must run as root (munged and slurmd need it); try: sudo $0 $*"
for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || die "package $p is not installed; run scripts/setup.sh (scripts/setup.d/50-slurm.sh installs Slurm)"
done

mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd -P)"
# munged refuses a socket below a directory that others cannot traverse
d="$STATE"
while [ "$d" != / ]; do
  [ $(( 0$(stat -c %a "$d") & 01 )) != 0 ] || [ "$d" = "$STATE" ] \
    || die "$d is not world-executable (o+x) and munged refuses such socket paths; choose another STATE_DIR"
  d=$(dirname "$d")
done
chmod 755 "$STATE"
mkdir -p "$STATE"/{etc,munge,run,log,spool/slurmctld,spool/slurmd}
chmod 755 "$STATE"/{etc,munge,run,log,spool}
chmod 700 "$STATE"/spool/slurmctld
CONF="$STATE/etc/slurm.conf"
MSOCK="$STATE/munge/munge.socket"
KEY="$STATE/munge/munge.key"
export SLURM_CONF="$CONF"

# alive PIDFILE NAME: the recorded process exists, is no zombie (PID 1 in a container may reap
# late) and is the daemon we expect (pids get reused).
alive() {
  local pid st comm
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ "$comm" == "$2"* ]]
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# the daemons fork at once and may die a moment later (bad config, port taken): wait for a live pid
wait_alive() {
  for _ in $(seq 100); do alive "$1" "$2" && return 0; sleep 0.1; done
  tail -n 20 "$3" >&2 2>/dev/null || true
  die "$2 did not stay up (see $3)"
}

# -- munge ------------------------------------------------------------------------------------
if [ ! -s "$KEY" ]; then
  if command -v mungekey >/dev/null; then mungekey --create --bits=1024 --keyfile="$KEY"
  else dd if=/dev/urandom of="$KEY" bs=1 count=1024 status=none; fi
fi
chown root:root "$KEY"; chmod 600 "$KEY"
if alive "$STATE/munge/munged.pid" munged; then
  log "munged already running"
else
  rm -f "$MSOCK" "$MSOCK.lock" "$STATE/munge/munged.pid"
  /usr/sbin/munged --key-file="$KEY" --socket="$MSOCK" --pid-file="$STATE/munge/munged.pid" \
    --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/munged.seed" </dev/null >>"$STATE/log/munged.stderr" 2>&1 \
    || { cat "$STATE/log/munged.stderr" >&2; die "munged failed to start"; }
  wait_alive "$STATE/munge/munged.pid" munged "$STATE/log/munged.log"
fi
for _ in $(seq 50); do munge -n -S "$MSOCK" >/dev/null 2>&1 && break; sleep 0.1; done
munge -n -S "$MSOCK" | unmunge -S "$MSOCK" >/dev/null || die "munge self-test failed (see $STATE/log/munged.log)"

# -- slurm.conf (rewritten unless slurmctld already runs with it) ------------------------------
NODE="$(hostname -s)"
if ! alive "$STATE/run/slurmctld.pid" slurmctld || [ ! -s "$CONF" ]; then
  HW="$(/usr/sbin/slurmd -C | head -n 1)"   # NodeName=x CPUs=2 Boards=1 ... RealMemory=24105
  MEM="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")"
  if [ -n "${R1DATA_SLURM_CPUS:-}" ]; then NODEHW="CPUs=$R1DATA_SLURM_CPUS"
  else NODEHW="$(sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//' <<<"$HW")"; fi
  cat > "$CONF" <<EOF
# written by r1data scripts/slurm-up.sh on $(date -u +%FT%TZ): a single-node test cluster
ClusterName=r1data
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MSOCK
StateSaveLocation=$STATE/spool/slurmctld
SlurmdSpoolDir=$STATE/spool/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
MailProg=/bin/true
# containers have no usable cgroups: track processes by parent pid, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# no slurmdbd, so no sacct; finished jobs stay visible to squeue/scontrol for MinJobAge seconds
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
MinJobAge=300
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# schedule at once on submit and completion (the default batches events for up to 3 s)
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# believe this file over the detected hardware, and never keep the node drained
SlurmdParameters=config_overrides
ReturnToService=2
NodeName=$NODE NodeAddr=127.0.0.1 $NODEHW RealMemory=${MEM:-1} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
${R1DATA_SLURM_EXTRA_CONF:-}
EOF
  chmod 644 "$CONF"
fi
echo "export SLURM_CONF=$CONF" > "$STATE/slurm.env"

# -- slurmctld, then slurmd --------------------------------------------------------------------
if alive "$STATE/run/slurmctld.pid" slurmctld; then
  log "slurmctld already running"
else
  port_busy "$CTLD_PORT" && die "port $CTLD_PORT is taken (another slurmctld?); set SLURMCTLD_PORT"
  rm -f "$STATE/run/slurmctld.pid"
  /usr/sbin/slurmctld -f "$CONF" </dev/null >>"$STATE/log/slurmctld.stderr" 2>&1 \
    || { cat "$STATE/log/slurmctld.stderr" >&2; die "slurmctld failed to start"; }
  wait_alive "$STATE/run/slurmctld.pid" slurmctld "$STATE/log/slurmctld.log"
fi
for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.1; done
scontrol ping >/dev/null 2>&1 || { tail -n 20 "$STATE/log/slurmctld.log" >&2; die "slurmctld does not answer"; }
if alive "$STATE/run/slurmd.pid" slurmd; then
  log "slurmd already running"
else
  port_busy "$SLURMD_PORT" && die "port $SLURMD_PORT is taken (another slurmd?); set SLURMD_PORT"
  rm -f "$STATE/run/slurmd.pid"
  /usr/sbin/slurmd -f "$CONF" -N "$NODE" </dev/null >>"$STATE/log/slurmd.stderr" 2>&1 \
    || { cat "$STATE/log/slurmd.stderr" >&2; die "slurmd failed to start"; }
  wait_alive "$STATE/run/slurmd.pid" slurmd "$STATE/log/slurmd.log"
fi

# -- wait for the node -------------------------------------------------------------------------
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  state="$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1 || true)"
  case "$state" in idle|mixed|allocated|completing) break ;; esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    die "node $NODE is not idle after ${TIMEOUT}s (state: '${state:-no answer}')"
  fi
  sleep 0.3
done
log "Slurm is up in $(since "$T0") s: node $NODE ($state), config $CONF; logs in $STATE/log"
log "use it: source $STATE/slurm.env; stop it: scripts/slurm-down.sh $STATE"
