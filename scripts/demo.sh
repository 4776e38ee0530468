#!/usr/bin/env bash
# sked's main job, locally: Redis and the broker up, topics created, all four services, the
# console and a small app endpoint running, sample requests published over Kafka and REST, and their effect
# shown: a job that runs on time, one that fails once and succeeds on its retry, one that keeps
# failing, lands in the DLQ and is replayed once the app is fixed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dev stack (Redis + Kafka-protocol broker)"
scripts/dev-stack.sh up

step "build"
cargo build --workspace --bins --locked --quiet
BIN=target/debug
RUN="demo$(date +%s)"   # fresh ids, topics and keys each run

# The demo's own ports, key prefix, topics and apps, so it never collides with a real install.
export SKED_HTTP__LISTEN_ADDR=127.0.0.1:18080
export SKED_REPLAYER__LISTEN_ADDR=127.0.0.1:18081
export SKED_REDIS__KEY_PREFIX="sked-$RUN"
export SKED_TOPICS__INGEST=$RUN.ingest SKED_TOPICS__DUE=$RUN.due SKED_TOPICS__RETRY=$RUN.retry SKED_TOPICS__DLQ=$RUN.dlq SKED_TOPICS__AUDIT=$RUN.audit
export SKED_TOPICS__PARTITIONS=3
export SKED_INGEST__GROUP_ID=$RUN-ingest SKED_WORKER__GROUP_ID=$RUN-worker SKED_REPLAYER__GROUP_ID=$RUN-replayer
export SKED_KAFKA__RDKAFKA__SESSION_TIMEOUT_MS=6000
export SKED_APPS__SMS__URL=http://127.0.0.1:18090/sms
export SKED_APPS__FLAKY__URL=http://127.0.0.1:18090/flaky
export SKED_APPS__BROKEN__URL=http://127.0.0.1:18090/broken
export SKED_API_URL=http://127.0.0.1:18080 SKED_REPLAYER_URL=http://127.0.0.1:18081
export SKED_CONSOLE__LISTEN_ADDR=127.0.0.1:18070
export SKED_CONSOLE__API_URL=$SKED_API_URL SKED_CONSOLE__DLQ_API_URL=$SKED_REPLAYER_URL
sked() { "$BIN/sked" "$@"; }

step "auth: a token for the demo (auth is on, as by default)"
# `sked auth new-token` prints the token once and the hash table sked keeps; the services
# read the hashes from a tokens file (a mounted Secret in Kubernetes).
sked auth new-token --name demo --scope admin >.dev-stack/demo-token.txt
SKED_TOKEN=$(sed -n 2p .dev-stack/demo-token.txt | sed 's/^# //')
export SKED_TOKEN
grep -v '^#' .dev-stack/demo-token.txt | sed 's/^\[auth.tokens.demo\]/[demo]/' >.dev-stack/demo-tokens.toml
export SKED_AUTH__TOKENS_FILE=$PWD/.dev-stack/demo-tokens.toml
echo "tokens file .dev-stack/demo-tokens.toml (hashes only); the CLI sends SKED_TOKEN"

step "topics"
sked topics create

PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
start() { # name admin-port
  SKED_ADMIN__LISTEN_ADDR=127.0.0.1:$2 RUST_LOG=info "$BIN/sked-$1" >".dev-stack/demo-$1.log" 2>&1 &
  PIDS+=($!)
  echo "sked-$1 started (admin 127.0.0.1:$2, log .dev-stack/demo-$1.log)"
}
step "start the services and the app endpoint"
touch .dev-stack/demo-broken
python3 scripts/demo-app.py 18090 >.dev-stack/demo-app.log 2>&1 &
PIDS+=($!)
start ingest 19464
start scheduler 19465
start worker 19466
start replayer 19467
start console 19468
for port in 19464 19465 19466 19467 19468; do
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done
curl -s http://127.0.0.1:19464/readyz; echo

step "publish over Kafka: an Infinite-Scheduler request, a weekday cron in Asia/Dhaka, a typo"
sed "s/demo-sms-1/$RUN-is/g" scripts/samples/infinite-scheduler.json >.dev-stack/demo-is.json
sked job publish --key "$RUN-is" --file .dev-stack/demo-is.json
sed "s/demo-standup/$RUN-standup/" scripts/samples/native-cron.json >.dev-stack/demo-cron.json
sked job publish --key "$RUN-standup" --file .dev-stack/demo-cron.json
sked job publish --key demo-typo --file scripts/samples/bad-typo.json
for _ in $(seq 1 50); do sked job get "$RUN-standup" >/dev/null 2>&1 && break; sleep 0.1; done
sked job get "$RUN-is"
sked job get "$RUN-standup"

step "submit over REST: three jobs due in 2 seconds"
sked job submit --app sms --delay 2s --id "$RUN-ok" --payload '{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}'
printf '{"id":"%s","app":"flaky","delay":"2s","payload":{"try":"again"},"retry":{"max_attempts":3,"initial":"1s"}}' "$RUN-flaky" \
  | sked job submit -
printf '{"id":"%s","app":"broken","delay":"2s","payload":{"will":"fail"},"retry":{"max_attempts":2,"initial":"1s"}}' "$RUN-broken" \
  | sked job submit -
echo "(the same request again is a duplicate)"
sked job submit --app sms --delay 2s --id "$RUN-ok" --payload '{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}'

step "wait for them to run (on time, a retry after 1 s, two attempts then the DLQ)"
sleep 6
for id in "$RUN-ok" "$RUN-flaky" "$RUN-broken"; do
  echo "--- $id"
  sked job get "$id" | grep -E '^(state|run|payload)'
done
echo "--- what the app saw"
cat .dev-stack/demo-app.log

step "the DLQ: the rejected typo (stage ingest) and the broken job (stage execute)"
sked dlq ls
sked dlq stats

step "fix the app, then replay the broken job's dead letter"
rm -f .dev-stack/demo-broken
sked dlq replay --job-id "$RUN-broken" --yes
sleep 3
sked job get "$RUN-broken" | grep -E '^(state|run)'
tail -n 1 .dev-stack/demo-app.log

step "operate: list, describe, pause, trigger, resume the cron"
sked job ls --app sms
sked job describe "$RUN-standup" --next 3
sked job pause "$RUN-standup" --note "demo: holiday"
sked job ls --state paused
sked job trigger "$RUN-standup" --key "$RUN-trigger"
sked job resume "$RUN-standup"
sked job describe "$RUN-standup" --next 1 --history 3 | grep -E '^(state|counters|paused)|trigger' || true
sked stats

step "bulk: five more jobs with a label, a dry run, then cancel all matching"
for i in 1 2 3 4 5; do
  printf '{"id":"%s-bulk-%s","app":"sms","delay":"1h","labels":{"batch":"%s"}}' "$RUN" "$i" "$RUN" | sked job submit - >/dev/null
done
sked ops create --action cancel --selector "label=batch=$RUN" --dry-run --wait
sked ops create --action cancel --selector "label=batch=$RUN" --yes --wait
sked job ls --state cancelled --label "batch=$RUN"
sked ops ls

step "the console: sign in with the demo token, list the demo's cancelled jobs"
echo "open http://127.0.0.1:18070 and sign in with the token in .dev-stack/demo-token.txt"
jar=.dev-stack/demo-console.cookies
curl -s -o /dev/null -c "$jar" --data-urlencode "token=$SKED_TOKEN" -d next=/ http://127.0.0.1:18070/login
curl -s -b "$jar" "http://127.0.0.1:18070/jobs?state=cancelled&label=batch%3D$RUN" \
  | grep -o "data-job=\"[^\"]*\"" | sed 's/^/console lists /'
rm -f "$jar"

step "metrics (excerpt)"
curl -s http://127.0.0.1:19465/metrics | grep -E '^sked_scheduler_(fired_total|early_fires_total)' || true
curl -s http://127.0.0.1:19466/metrics | grep -E '^sked_worker_executions_total' || true

step "stop the services with SIGTERM (they drain, commit and flush)"
kill -TERM "${PIDS[@]}"
wait "${PIDS[@]}" 2>/dev/null || true
trap - EXIT
echo "Done."
