#!/usr/bin/env bash
# The chaos suite at any length: ingest, two schedulers, two workers and a replayer (as
# processes, debug build) against a private broker and Redis, while services are killed -9,
# Redis restarts and the broker pauses; prints the report, exits 1 if anything was lost,
# early or misidentified. See tests/src/chaos/ and docs/reliability.md#chaos.
#
#   scripts/chaos.sh [--seconds S] [--rate JOBS_PER_SEC] [--seed N] [--kill-every S]   (default 120 s, 9/s, 6 s; 0: no kills)
#
# SKED_CHAOS_KEEP=1 keeps the services' logs of a run that passed (a failed run keeps them);
# SKED_CHAOS_LOG sets their RUST_LOG (default warn).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Installs redis-server and tansu when missing (the run starts private ones of its own).
scripts/dev-stack.sh up >/dev/null
cargo build --locked --workspace --bins
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); commit $(git rev-parse --short HEAD)"
target/debug/sked-bench chaos "$@"
