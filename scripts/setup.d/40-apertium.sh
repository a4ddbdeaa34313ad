#!/usr/bin/env bash
# Augmentation tools from Debian: Apertium English<->Spanish (back-translation, GPL: called as a
# program, never linked) and the WordNet 3.0 database (synonym replacement, read from
# /usr/share/wordnet). Idempotent: apt_install skips packages that are already installed.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"  # log, apt_install, $SUDO
apt_install apertium apertium-eng-spa wordnet-base
# A broken install (modes missing) should fail setup here, not a test an hour later.
# (Capture first: with pipefail, `apertium -l | grep -q` can fail on SIGPIPE.)
modes=$(apertium -l 2>&1 || true)
if ! grep -qE "^[[:space:]]*eng-spa[[:space:]]*$" <<<"$modes" || ! grep -qE "^[[:space:]]*spa-eng[[:space:]]*$" <<<"$modes"; then
  log "apertium is installed but the modes eng-spa/spa-eng are missing (apertium -l: $(tr '\n' ' ' <<<"$modes"))"
  exit 1
fi
