# Shell helpers shared by scripts/setup.sh and scripts/setup.d/*.sh (source it; it defines, runs nothing).
#   log MSG            one line on stderr, prefixed [setup]
#   apt_install PKG... install the Debian packages that are missing (quiet; nothing when all are there)
# $SUDO is "sudo" unless we already are root.
SUDO=${SUDO-}
if [ -z "$SUDO" ] && [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
log() { echo "[setup] $*" >&2; }
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
