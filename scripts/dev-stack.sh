#!/usr/bin/env bash
# Makes a standalone Redis, a 3-master Redis Cluster and a Kafka-protocol broker (tansu)
# available on loopback for development and tests. Uses what already answers at the configured
# ports; otherwise installs what is missing (Debian's redis-server and redis-tools, `cargo install
# tansu`) and starts it in the background, with logs and pid files under .dev-stack/.
# Idempotent: safe to run twice.
#
# The cluster nodes keep their state (nodes.conf) under .dev-stack/redis-cluster/<port>/; the
# data is throwaway, so that state is wiped whenever this script starts the nodes itself, and
# the cluster is (re)formed with `redis-cli --cluster create`. Nodes that already answer are
# used as they are (formed first if no slot is assigned yet).
#
#   scripts/dev-stack.sh up|down|status
#
# Environment: SKED_DEV_REDIS_PORT (6379), SKED_DEV_KAFKA_PORT (9092),
# SKED_DEV_REDIS_CLUSTER_PORTS ("7001 7002 7003": at least 3, one master each).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.dev-stack"
REDIS_PORT="${SKED_DEV_REDIS_PORT:-6379}"
KAFKA_PORT="${SKED_DEV_KAFKA_PORT:-9092}"
read -ra CLUSTER_PORTS <<<"${SKED_DEV_REDIS_CLUSTER_PORTS:-7001 7002 7003}"
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

# Installs Debian package $2 unless command $1 is already there.
ensure_command() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null && return 0
  say "installing $pkg (Debian package, for $cmd)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
  command -v "$cmd" >/dev/null || die "$cmd still missing after installing $pkg"
}

# Where the package also starts a system service on 6379 (systemd hosts), that one answers
# and is used as is.
ensure_redis_installed() { ensure_command redis-server redis-server; }

# `redis-cli` (for the cluster) comes with redis-server on Debian, which depends on redis-tools.
ensure_redis_cli_installed() { ensure_command redis-cli redis-tools; }

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
  if port_open "$REDIS_PORT"; then say "redis: the package's service answers on 127.0.0.1:$REDIS_PORT, using it"; return; fi
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

# --- Redis Cluster -------------------------------------------------------------------------

check_cluster_ports() {
  [ ${#CLUSTER_PORTS[@]} -ge 3 ] || die "SKED_DEV_REDIS_CLUSTER_PORTS needs at least 3 ports (got '${CLUSTER_PORTS[*]}')"
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    [[ $port =~ ^[0-9]+$ ]] || die "SKED_DEV_REDIS_CLUSTER_PORTS: '$port' is not a port"
  done
}

# "127.0.0.1:7001,7002,7003"
cluster_desc() { local IFS=,; echo "127.0.0.1:${CLUSTER_PORTS[*]}"; }

# One field of `CLUSTER INFO` on a node (empty when the node does not answer it).
cluster_field() {
  local port=$1 field=$2
  timeout 5 redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null \
    | tr -d '\r' | sed -n "s/^$field://p" || true
}

# How many of the cluster ports answer.
cluster_ports_open() {
  local port n=0
  for port in "${CLUSTER_PORTS[@]}"; do port_open "$port" && n=$((n + 1)); done
  echo "$n"
}

cluster_logs_tail() {
  local port log
  for port in "${CLUSTER_PORTS[@]}"; do
    log="$STATE/redis-cluster-$port.log"
    [ -f "$log" ] && { printf '==> %s <==\n' "$log" >&2; tail -n 20 "$log" >&2; }
  done
  return 0
}

start_cluster_node() {
  local port=$1 dir="$STATE/redis-cluster/$1"
  rm -rf "$dir" && mkdir -p "$dir"   # throwaway: a stale nodes.conf would make --cluster create fail
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --dir "$dir" --daemonize no >"$STATE/redis-cluster-$port.log" 2>&1 &
  echo $! >"$STATE/redis-cluster-$port.pid"
}

form_cluster() {
  local port out nodes=()
  for port in "${CLUSTER_PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
  if ! out="$(redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes 2>&1)"; then
    printf '%s\n' "$out" >&2
    cluster_logs_tail
    die "redis cluster: --cluster create failed on $(cluster_desc)"
  fi
}

wait_cluster_ok() {
  local port pending
  for _ in $(seq 1 100); do
    pending=0
    for port in "${CLUSTER_PORTS[@]}"; do
      [ "$(cluster_field "$port" cluster_state)" = ok ] || { pending=1; break; }
    done
    [ "$pending" = 0 ] && return 0
    sleep 0.1
  done
  cluster_logs_tail
  die "redis cluster: no cluster_state:ok on all of $(cluster_desc) after 10 s (node $port: cluster_state:$(cluster_field "$port" cluster_state))"
}

start_redis_cluster() {
  check_cluster_ports
  local port open state assigned
  open="$(cluster_ports_open)"
  if [ "$open" = "${#CLUSTER_PORTS[@]}" ]; then
    ensure_redis_cli_installed
    state="$(cluster_field "${CLUSTER_PORTS[0]}" cluster_state)"
    assigned="$(cluster_field "${CLUSTER_PORTS[0]}" cluster_slots_assigned)"
    [ -n "$state" ] || die "redis cluster: 127.0.0.1:${CLUSTER_PORTS[0]} answers but not as a Redis Cluster node"
    if [ "$state" = ok ]; then
      say "redis cluster: already ok on $(cluster_desc), using it as is"
      return
    fi
    if [ "$assigned" = 0 ]; then
      say "redis cluster: nodes answer on $(cluster_desc) but no slot is assigned, forming the cluster"
      form_cluster
    else
      say "redis cluster: nodes answer on $(cluster_desc) (cluster_state:$state), waiting for it"
    fi
    wait_cluster_ok
    say "redis cluster: ok on $(cluster_desc)"
    return
  fi
  [ "$open" = 0 ] || die "redis cluster: only $open of the ports $(cluster_desc) answer; stop them (scripts/dev-stack.sh down) or free them"
  ensure_redis_installed
  ensure_redis_cli_installed
  for port in "${CLUSTER_PORTS[@]}"; do start_cluster_node "$port"; done
  for port in "${CLUSTER_PORTS[@]}"; do
    wait_port "$port" "redis cluster node" "$STATE/redis-cluster-$port.log"
  done
  form_cluster
  wait_cluster_ok
  local pids=()
  for port in "${CLUSTER_PORTS[@]}"; do pids+=("$(cat "$STATE/redis-cluster-$port.pid")"); done
  say "redis cluster: started and formed on $(cluster_desc) (pids ${pids[*]}, logs .dev-stack/redis-cluster-<port>.log)"
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
  cluster_status
  port_open "$KAFKA_PORT" && say "kafka: up on 127.0.0.1:$KAFKA_PORT" || say "kafka: down"
}

cluster_status() {
  local open state
  open="$(cluster_ports_open)"
  if [ "$open" = 0 ]; then say "redis cluster: down"; return; fi
  state="$(command -v redis-cli >/dev/null && cluster_field "${CLUSTER_PORTS[0]}" cluster_state || true)"
  if [ "$open" = "${#CLUSTER_PORTS[@]}" ] && [ "$state" = ok ]; then
    say "redis cluster: up (cluster_state:ok) on $(cluster_desc)"
  else
    say "redis cluster: not ready ($open of ${#CLUSTER_PORTS[@]} nodes answer on $(cluster_desc), cluster_state:${state:-unknown})"
  fi
}

stop_cluster() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do stop_one "redis-cluster-$port"; done
}

mkdir -p "$STATE"
case "${1:-up}" in
  up) "$ROOT/scripts/build-deps.sh"; start_redis; start_tansu; start_redis_cluster ;;
  down) stop_one tansu; stop_cluster; stop_one redis ;;
  status) status ;;
  *) die "usage: scripts/dev-stack.sh up|down|status" ;;
esac
