#!/usr/bin/env bash
# Install Debian's Chromium for the browser-driven OAuth tests (tests/browser.py drives it with
# Playwright's Python API through executable_path=/usr/bin/chromium).
#
#   scripts/install-browser.sh        # idempotent: does nothing when chromium is already there
#
# Why not `playwright install chromium`: that downloads a browser build from Microsoft's CDN,
# which is not reachable here; Debian's package comes from the apt mirror. Playwright's Python
# package drives any recent Chromium through the DevTools protocol.
# Runs apt-get update only when the package lists don't know chromium yet (or are older than a
# week). Needs root (or sudo) the first time.
set -euo pipefail

log() { echo "[install-browser] $*" >&2; }
die() { echo "[install-browser] error: $*" >&2; exit 1; }

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

chromium_ok() {
    [[ -x $CHROMIUM ]] && "$CHROMIUM" --version >/dev/null 2>&1
}

if chromium_ok; then
    log "$("$CHROMIUM" --version 2>/dev/null) already installed at $CHROMIUM"
    exit 0
fi

command -v apt-get >/dev/null ||
    die "apt-get not found: install Chromium with your package manager and point CHROMIUM (and
  GATEHOUSE_CHROMIUM for the tests) at it"

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and no sudo: run as root to install chromium"
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

# apt-get update only if the package lists don't have a chromium candidate or are stale.
lists_fresh() {
    local stamp=/var/lib/apt/lists
    [[ -n $(find "$stamp" -maxdepth 1 -name '*Packages*' -mtime -7 -print -quit 2>/dev/null) ]] || return 1
    local candidate
    candidate=$(apt-cache policy chromium 2>/dev/null | sed -n 's/^ *Candidate: //p')
    [[ -n $candidate && $candidate != "(none)" ]]
}

if lists_fresh; then
    log "apt package lists are recent and know chromium; skipping apt-get update"
else
    log "apt-get update"
    "${SUDO[@]}" apt-get update -q
fi

log "apt-get install chromium (this pulls ~100 MB of packages the first time)"
"${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium fonts-liberation

chromium_ok || die "chromium was installed but '$CHROMIUM --version' fails"
log "installed $("$CHROMIUM" --version 2>/dev/null)"
