#!/usr/bin/env bash
# Benchmarks, built in release mode, against the local broker and a private Redis.
#
#   scripts/bench.sh ingest [--requests N] [--rate PER_SEC] [--partitions P] [--encrypt on|off]
#   scripts/bench.sh scheduler [--seconds S] [--herd N] [--drain N] [--drain-kind once|cron] [--partitions P]
#   scripts/bench.sh worker [--requests N] [--seconds S] [--partitions P]
#   scripts/bench.sh operate [--requests N]   (listing, stats, bulk cancel, bytes per job)
#   scripts/bench.sh console [--requests N]   (the console's server time per page)
#   scripts/bench.sh rest [--requests N] [--set auth.enabled=false]   (POST /v1/jobs, auth on or off)
#   scripts/bench.sh failover [--herd N] [--kill-after-ms MS] [--set key=value]   (2 scheduler replicas, one killed -9 mid-herd)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/dev-stack.sh up >/dev/null
cargo build --release --locked -p sked-e2e --bin sked-bench
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); broker and Redis on this machine"
RUST_LOG="${RUST_LOG:-warn}" target/release/sked-bench "$@"
