#!/usr/bin/env bash
# The whole test suite: starts Redis and the Kafka-protocol broker when they are not already
# running (installing them on a fresh machine), installs the browser of the console's tests
# (Debian's chromium and chromium-driver) and the OpenID Connect provider of their sign-in test
# (tests/oidc, from the npm registry), builds the workspace once, runs every test.
#
#   scripts/test.sh [extra nextest/cargo-test filter arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/build-deps.sh
scripts/dev-stack.sh up
scripts/browser-deps.sh
scripts/oidc-deps.sh

# One cargo invocation, so dependencies are built once: two invocations (bins, then tests)
# unify features differently (dev-dependencies turn on more of chrono, regex, reqwest, redis)
# and rebuilt about 60 crates a second time.
echo "test: building the workspace (binaries and tests)"
cargo build --workspace --bins --tests --locked

echo "test: deployment files (chart, compose, config keys)"
scripts/check-deploy.sh

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  echo "test: cargo-nextest not found, using cargo test"
  cargo test --workspace --locked --no-fail-fast "$@" -- --test-threads 6
fi
