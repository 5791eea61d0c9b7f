#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tools/ensure_packages.sh PKG...: makes sure the Debian packages are
# installed. Already installed: returns at once (one dpkg-query). Missing:
# as root, installs only those (apt-get, non-interactive, no recommends);
# without root, prints the apt-get line to run and fails.
#
# Used by ./bazelw and by .ci/run's cmake leg. POLL_DEPS_CACHE (default
# ~/.cache/poll-deps) holds the apt log.
set -euo pipefail

[ $# -gt 0 ] || exit 0
cache="${POLL_DEPS_CACHE:-$HOME/.cache/poll-deps}"
say() { echo "ensure_packages: $*" >&2; }

missing=()
status=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null || true)
for p in "$@"; do
  grep -q "^$p ii" <<<"$status" || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "missing Debian packages and cannot install them (needs root and apt-get)."
  say "install them, then run again:"
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
say "installing ${missing[*]} (apt-get, one time)"
log="$cache/apt-install.log"
mkdir -p "$cache"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  tail -20 "$log" >&2
  say "apt-get failed (full log: $log)"
  exit 1
fi
