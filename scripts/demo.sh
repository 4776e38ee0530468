#!/usr/bin/env bash
# sked's main job, locally: Redis and the broker up, topics created, the ingest service
# running, sample requests published over Kafka and REST, and their effect shown.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dev stack (Redis + Kafka-protocol broker)"
scripts/dev-stack.sh up

step "build"
cargo build --workspace --bins --locked --quiet
BIN=target/debug

# The demo's own ports, key prefix and topics, so it never collides with a real install.
export SKED_HTTP__LISTEN_ADDR=127.0.0.1:18080
export SKED_ADMIN__LISTEN_ADDR=127.0.0.1:19464
export SKED_REDIS__KEY_PREFIX=sked-demo
export SKED_TOPICS__INGEST=demo.ingest SKED_TOPICS__DUE=demo.due SKED_TOPICS__RETRY=demo.retry SKED_TOPICS__DLQ=demo.dlq
export SKED_TOPICS__PARTITIONS=3
export SKED_INGEST__GROUP_ID=sked-demo-ingest
export SKED_KAFKA__RDKAFKA__SESSION_TIMEOUT_MS=6000
export SKED_API_URL=http://127.0.0.1:18080
sked() { "$BIN/sked" "$@"; }

step "topics"
sked topics create

step "start sked-ingest (log: .dev-stack/demo-ingest.log)"
RUST_LOG=info "$BIN/sked-ingest" >.dev-stack/demo-ingest.log 2>&1 &
INGEST_PID=$!
trap 'kill $INGEST_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs http://127.0.0.1:19464/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
curl -s http://127.0.0.1:19464/readyz; echo

step "start sked-scheduler (log: .dev-stack/demo-scheduler.log)"
SKED_ADMIN__LISTEN_ADDR=127.0.0.1:19465 RUST_LOG=info "$BIN/sked-scheduler" >.dev-stack/demo-scheduler.log 2>&1 &
SCHEDULER_PID=$!
trap 'kill $INGEST_PID $SCHEDULER_PID 2>/dev/null || true' EXIT

step "publish over Kafka: an Infinite-Scheduler request, a weekday cron in Asia/Dhaka, a typo"
sked job publish --key sms-job-1 --file scripts/samples/infinite-scheduler.json
sked job publish --file scripts/samples/native-cron.json --key demo-standup
sked job publish --file scripts/samples/bad-typo.json --key demo-typo

step "submit over REST: in 15 minutes, then the same request again"
sked job submit --app sms --delay 15m --id demo-reminder --payload '{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}'
sked job submit --app sms --delay 15m --id demo-reminder --payload '{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}'

step "what ingest stored"
for _ in $(seq 1 50); do sked job get demo-standup >/dev/null 2>&1 && break; sleep 0.1; done
for id in demo-sms-1 demo-standup demo-reminder; do
  echo "--- $id"
  sked job get "$id"
done
echo "--- demo-typo (rejected, so not stored)"
sked job get demo-typo || echo "(exit $?: not found, as expected)"

step "what was dead-lettered, and why (ingest metrics)"
for _ in $(seq 1 50); do
  curl -s http://127.0.0.1:19464/metrics | grep -q '^sked_ingest_rejected_records_total' && break
  sleep 0.1
done
curl -s http://127.0.0.1:19464/metrics | grep -E '^sked_ingest_(rejected|stored)_records_total' || true

step "a job due in 3 seconds: the scheduler fires it onto demo.due"
sked job submit --app sms --delay 3s --payload '{"text":"on time"}' --id "demo-soon-$(date +%s)" | tee .dev-stack/demo-soon.txt
SOON_ID=$(awk '{print $3}' .dev-stack/demo-soon.txt | tr -d ',')
sked job get "$SOON_ID" | grep -E '^(state|next due)'
sleep 3.5
sked job get "$SOON_ID" | grep -E '^state'
curl -s http://127.0.0.1:19465/metrics | grep -E '^sked_scheduler_(fired_total|early_fires_total|fire_lateness_seconds_(count|sum))' || true

step "cancel the REST job"
sked job cancel demo-reminder
sked job get demo-reminder | head -3

step "stop the services with SIGTERM (they drain, commit and flush)"
kill -TERM $INGEST_PID $SCHEDULER_PID
wait $INGEST_PID $SCHEDULER_PID || true
trap - EXIT
tail -n 3 .dev-stack/demo-ingest.log
echo
echo "Done. Executing fired jobs (the worker) is the next milestone; see README."
