#!/usr/bin/env bash
# The browser the console's tests drive: Debian's `chromium` and `chromium-driver`
# (/usr/bin/chromium, /usr/bin/chromedriver), installed with apt-get (as root, or through
# sudo) when missing. Run by scripts/test.sh; quick and silent when both are there.
set -euo pipefail

say() { printf 'browser-deps: %s\n' "$*"; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  say "missing: ${missing[*]} (Debian names); install them and run again" >&2
  exit 1
fi
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root to install: ${missing[*]}" >&2; exit 1
  fi
}
say "installing ${missing[*]} (Debian packages, about 100 MB)"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# Without recommends (printing, desktop extras), but with a font, so pages and screenshots
# have text.
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" fonts-dejavu-core >/dev/null
for bin in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$bin" ] || { say "$bin still missing after apt-get install" >&2; exit 1; }
done
