#!/usr/bin/env bash
# The OpenID Connect provider of the console's sign-in tests (tests/oidc: panva's
# `oidc-provider` from the npm registry, run by Node.js). Installs Node.js and npm from
# Debian's packages when missing, then the locked packages (`npm ci`) when tests/oidc has none
# or its lock file changed. Run by scripts/test.sh; quick and silent when all is there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'oidc-deps: %s\n' "$*"; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  scripts/apt-install.sh oidc-deps nodejs npm
fi

major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || { say "Node.js $(node --version) is too old: oidc-provider 8 needs 18 or later" >&2; exit 1; }

dir=tests/oidc
stamp=$dir/node_modules/.sked-lock.sha256
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
say "installing $dir's packages (npm ci)"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "$want" > "$stamp"
