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

# Without recommends (printing, desktop extras), but with a font, so pages and screenshots
# have text (about 100 MB).
"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" browser-deps "${missing[@]}" fonts-dejavu-core
for bin in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$bin" ] || { say "$bin still missing after apt-get install" >&2; exit 1; }
done
