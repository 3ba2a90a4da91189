#!/usr/bin/env bash
# Install Debian's Chromium (/usr/bin/chromium) for the browser test (naia_backfill_tests/integration/ui).
# Idempotent and quiet: does nothing when /usr/bin/chromium is already there; runs `apt-get update` only when the
# package lists do not offer chromium or the install fails on a stale list. Never downloads a browser build of
# its own (no `playwright install`): Playwright for Python (the dev extra) drives this Chromium through
# executable_path. Needs root (CI and the development machines run as root) or sudo.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
PACKAGES=(chromium fonts-liberation)
APT_OPTIONS=(-y -q -o Dpkg::Use-Pty=0 --no-install-recommends)
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

candidate() {
  apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ {print $2}'
}

updated=0
if [ -z "$(candidate)" ] || [ "$(candidate)" = "(none)" ]; then
  $SUDO apt-get update -qq
  updated=1
fi
if ! $SUDO apt-get install "${APT_OPTIONS[@]}" "${PACKAGES[@]}" >"$LOG" 2>&1; then
  if [ "$updated" -eq 1 ]; then
    cat "$LOG" >&2
    exit 1
  fi
  # A list older than the mirror's files answers 404: refresh once and try again.
  $SUDO apt-get update -qq
  if ! $SUDO apt-get install "${APT_OPTIONS[@]}" "${PACKAGES[@]}" >"$LOG" 2>&1; then
    cat "$LOG" >&2
    exit 1
  fi
fi
echo "installed: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium MISSING')"
