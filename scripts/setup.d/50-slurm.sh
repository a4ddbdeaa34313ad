#!/usr/bin/env bash
# Slurm for the integration tests: munge, slurmctld, slurmd and the client tools from Debian.
# Only installs the packages; `make test` starts a throw-away cluster with scripts/slurm-up.sh and
# stops it with scripts/slurm-down.sh. Idempotent and quick when everything is installed.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"  # log, $SUDO
PKGS=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
log "apt-get install ${missing[*]} (Slurm for the integration tests)"
export DEBIAN_FRONTEND=noninteractive
# The packages' maintainer scripts would start munged/slurmd system-wide (sysvinit scripts when there
# is no systemd); a policy-rc.d that denies every start keeps them quiet. Ours start on demand.
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
rc=0
{ $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/r1data-slurm-apt.log 2>&1 || rc=$?
[ "$made_policy" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
if [ "$rc" != 0 ]; then
  tail -n 30 /tmp/r1data-slurm-apt.log >&2
  log "apt-get failed (full log: /tmp/r1data-slurm-apt.log)"
  exit "$rc"
fi
