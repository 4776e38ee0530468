#!/usr/bin/env bash
# Offline checks of the deployment files: Helm chart (lint, render, values schema, Kubernetes
# schemas), docker-compose.yml, the SKED_* variables and rendered config against the real
# configuration keys, the Dockerfile's health probe, docs and dashboard consistency.
# No cluster, no Docker engine, no network beyond the package registries (first run only).
#
#   scripts/check-deploy.sh [pytest arguments]
#
# Tools: a venv under .dev-stack/venv with the pinned packages of tests/chart/requirements.txt
# (helm-python-sdk bundles Helm's Go SDK as a shared library, so no helm binary is needed),
# Debian's docker-compose (installed with apt-get when missing), rustc (for the probe).
# Exits non-zero on any failure; never skips a check because a tool is missing.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.dev-stack/venv
REQS=tests/chart/requirements.txt
STAMP="$VENV/.requirements.sha256"

python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    python="$candidate"
    break
  fi
done
if [ -z "$python" ]; then
  echo "check-deploy: Python >= 3.11 not found, installing Debian's python3" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
  python=python3
fi

want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "check-deploy: creating $VENV with $REQS"
  mkdir -p .dev-stack
  "$python" -m venv "$VENV" || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    "$python" -m venv "$VENV"
  }
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
  echo "$want" > "$STAMP"
fi

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "check-deploy: installing Debian's docker-compose (validates compose files without an engine)"
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq docker-compose >/dev/null
fi

if ! command -v rustc >/dev/null 2>&1; then
  echo "check-deploy: rustc not found (needed to build the image's health probe)" >&2
  exit 1
fi

echo "check-deploy: $("$VENV/bin/python" -c 'import helm_python as h; print("helm SDK", h.helm_sdk_version())'), $(docker-compose version --short 2>/dev/null | head -1 | sed 's/^/docker-compose /')"
exec "$VENV/bin/python" -m pytest tests/chart -p no:cacheprovider -q "$@"
