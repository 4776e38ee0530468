#!/usr/bin/env bash
# Same-session comparison of two sked-bench builds (say, the commit before a change and the
# change), run in turns: old, new, old, new, ... Each run gets a freshly started private tansu
# on its own port, so no run inherits the records of another (tansu's in-memory storage grows
# with every run and slows it down), nor disturbs the dev stack's broker.
#
#   scripts/bench-compare.sh OLD_BENCH NEW_BENCH ROUNDS <sked-bench arguments...>
#   e.g. scripts/bench-compare.sh /tmp/old/sked-bench target/release/sked-bench 2 ingest --requests 200000
#
# Build each with `cargo build --release --locked -p sked-e2e --bin sked-bench` in its own
# worktree. Redis: each benchmark starts its own private redis-server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -ge 4 ] || { echo "usage: $0 OLD_BENCH NEW_BENCH ROUNDS <sked-bench args...>" >&2; exit 2; }
old=$1 new=$2 rounds=$3
shift 3
for bin in "$old" "$new"; do
  [ -x "$bin" ] || { echo "bench-compare: $bin is not an executable" >&2; exit 2; }
done
scripts/dev-stack.sh up >/dev/null
port=${SKED_BENCH_KAFKA_PORT:-19092}
tansu="${SKED_TOOLS_DIR:-$HOME/.cache/sked}/tansu-0.6.0-dynostore/bin/tansu"
[ -x "$tansu" ] || { echo "bench-compare: no tansu at $tansu (scripts/dev-stack.sh up installs it)" >&2; exit 2; }
log=$(mktemp -d)
pid=
stop_broker() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap stop_broker EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); broker and Redis on this machine"
for round in $(seq 1 "$rounds"); do
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "memory://tansu/" >"$log/tansu-$round-$side.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.1
    done
    echo "== round $round, $side: $bin $*"
    SKED_TEST_KAFKA="127.0.0.1:$port" RUST_LOG="${RUST_LOG:-warn}" "$bin" "$@"
    stop_broker
  done
done
