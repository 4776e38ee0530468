#!/usr/bin/env bash
# Makes a Redis and a Kafka-protocol broker (tansu) available on loopback for development and
# tests. Uses what already answers at the configured ports; otherwise installs what is missing
# (Debian's redis-server, `cargo install tansu`) and starts it in the background, with logs and
# pid files under .dev-stack/. Idempotent: safe to run twice.
#
#   scripts/dev-stack.sh up|down|status
#
# Environment: SKED_DEV_REDIS_PORT (6379), SKED_DEV_KAFKA_PORT (9092).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.dev-stack"
REDIS_PORT="${SKED_DEV_REDIS_PORT:-6379}"
KAFKA_PORT="${SKED_DEV_KAFKA_PORT:-9092}"
TANSU_VERSION="0.6.0"

say() { printf 'dev-stack: %s\n' "$*"; }
die() { printf 'dev-stack: error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2 log=$3
  for _ in $(seq 1 100); do
    port_open "$port" && return 0
    sleep 0.1
  done
  tail -n 20 "$log" >&2 || true
  die "$name did not open port $port (log: $log)"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi
}

ensure_redis_installed() {
  command -v redis-server >/dev/null && return 0
  say "installing redis-server (Debian package)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # The package starts a system service on 6379; we run our own, so stop it if it is not ours.
  command -v redis-server >/dev/null || die "redis-server still missing after install"
}

# tansu's in-memory storage engine needs its `dynostore` feature, so sked installs its own
# build under a root named after the version and features instead of trusting any `tansu`.
TANSU_ROOT="${SKED_TOOLS_DIR:-$HOME/.cache/sked}/tansu-$TANSU_VERSION-dynostore"

tansu_bin() {
  [ -x "$TANSU_ROOT/bin/tansu" ] && { echo "$TANSU_ROOT/bin/tansu"; return; }
  return 1
}

ensure_tansu_installed() {
  tansu_bin >/dev/null && return 0
  say "installing tansu $TANSU_VERSION with cargo (about 10 minutes on 2 cores, once per machine)"
  cargo install tansu --version "$TANSU_VERSION" --features dynostore --locked --quiet --root "$TANSU_ROOT"
  tansu_bin >/dev/null || die "tansu still missing after cargo install"
}

start_redis() {
  if port_open "$REDIS_PORT"; then say "redis: already answering on 127.0.0.1:$REDIS_PORT, using it"; return; fi
  ensure_redis_installed
  mkdir -p "$STATE/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$STATE/redis" --daemonize no >"$STATE/redis.log" 2>&1 &
  echo $! >"$STATE/redis.pid"
  wait_port "$REDIS_PORT" redis "$STATE/redis.log"
  say "redis: started on 127.0.0.1:$REDIS_PORT (pid $(cat "$STATE/redis.pid"), log .dev-stack/redis.log)"
}

start_tansu() {
  if port_open "$KAFKA_PORT"; then say "kafka: already answering on 127.0.0.1:$KAFKA_PORT, using it"; return; fi
  ensure_tansu_installed
  local bin; bin="$(tansu_bin)"
  "$bin" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine "memory://tansu/" >"$STATE/tansu.log" 2>&1 &
  echo $! >"$STATE/tansu.pid"
  wait_port "$KAFKA_PORT" tansu "$STATE/tansu.log"
  say "kafka: tansu $TANSU_VERSION started on 127.0.0.1:$KAFKA_PORT (pid $(cat "$STATE/tansu.pid"), log .dev-stack/tansu.log)"
}

stop_one() {
  local name=$1 pidfile="$STATE/$1.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")" && say "$name: stopped (pid $(cat "$pidfile"))"
  else
    say "$name: not started by this script"
  fi
  rm -f "$pidfile"
}

status() {
  port_open "$REDIS_PORT" && say "redis: up on 127.0.0.1:$REDIS_PORT" || say "redis: down"
  port_open "$KAFKA_PORT" && say "kafka: up on 127.0.0.1:$KAFKA_PORT" || say "kafka: down"
}

mkdir -p "$STATE"
case "${1:-up}" in
  up) "$ROOT/scripts/build-deps.sh"; start_redis; start_tansu ;;
  down) stop_one tansu; stop_one redis ;;
  status) status ;;
  *) die "usage: scripts/dev-stack.sh up|down|status" ;;
esac
