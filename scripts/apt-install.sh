#!/usr/bin/env bash
# Installs Debian packages with apt-get, as root or through sudo, without recommends; the
# shared step of scripts/build-deps.sh, browser-deps.sh and oidc-deps.sh.
#
#   scripts/apt-install.sh WHO PACKAGE...     (WHO prefixes its messages, e.g. build-deps)
set -euo pipefail
who=$1
shift
say() { printf '%s: %s\n' "$who" "$*"; }
if ! command -v apt-get >/dev/null; then
  say "missing: $* (Debian names); install them and run again" >&2
  exit 1
fi
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root to install: $*" >&2; exit 1
  fi
}
say "installing $* (Debian packages)"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
