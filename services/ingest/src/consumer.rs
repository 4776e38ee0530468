//! The ingest consumer: records of the ingest topic into the Redis job store.
//!
//! Protocol, one batch at a time:
//! 1. **consuming**: read up to `ingest.batch_max` records, or what arrives within
//!    `ingest.batch_linger` after the first;
//! 2. decide each record (job, cancel, or dead letter) and write every job and cancel of the
//!    batch to Redis in one call; transient Redis errors are retried with backoff while
//!    `/readyz` reports not ready, and nothing is committed meanwhile;
//! 3. produce the batch's dead letters and wait until Kafka acknowledged every one (retrying);
//! 4. commit, per partition, the offset after the batch's last record. Every record of the
//!    batch is durable by then, so no offset passes an unfinished record.
//!
//! **draining** (first SIGTERM): stop reading, finish the batch in flight within
//! `ingest.drain_timeout`, commit synchronously, return. A batch cut short by the deadline is
//! not committed and is redelivered to the next owner, where Redis deduplicates it.

use std::time::Duration;

use chrono::Utc;
use rdkafka::{
    TopicPartitionList,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    error::{KafkaError, KafkaResult},
    message::{BorrowedMessage, Message},
    producer::{FutureProducer, FutureRecord},
};
use sked_core::{
    admin::Readiness,
    config::IngestOptions,
    kafka::Context,
    kafka::batch,
    kafka::dlq::{self, Failure, Stage},
    reason::Reason,
    request::{self, Limits},
    runtime::{self, Backoff},
    store::{Applied, Op, Store, calendars::CalendarCache},
    trace,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    decode::{self, Decision},
    metrics::Metrics,
};

/// Settings the consumer loop needs.
pub struct Settings {
    /// Most records per batch.
    pub batch_max: usize,
    /// Wait for more records after the first.
    pub batch_linger: Duration,
    /// Bound on the drain after cancel.
    pub drain_timeout: Duration,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Request limits.
    pub limits: Limits,
    /// Tenants by topic.
    pub tenants: IngestOptions,
}

/// The running consumer.
pub struct IngestConsumer {
    pub(crate) consumer: StreamConsumer<Context>,
    /// The subscribed topics.
    pub(crate) topics: Vec<String>,
    /// Notified by the stall watch: leave and rejoin the group (between batches).
    pub(crate) rejoin: std::sync::Arc<tokio::sync::Notify>,
    pub(crate) producer: FutureProducer,
    pub(crate) store: Store,
    pub(crate) settings: Settings,
    pub(crate) metrics: Metrics,
    pub(crate) readiness: Readiness,
    /// Which calendars requests may attach.
    pub(crate) calendars: CalendarCache,
    /// Submission quotas.
    pub(crate) quotas: crate::quota::Quotas,
}

impl IngestConsumer {
    /// Builds the context for [`StreamConsumer`] creation.
    pub fn context(metrics: &Metrics) -> Context {
        Context::new("ingest", metrics.commit_errors.clone())
    }

    /// Runs until `cancel`, then drains as described in the module docs.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        // Fires `ingest.drain_timeout` after `cancel`: retries give up, the batch is abandoned.
        let hard_stop = runtime::deadline_after(&cancel, self.settings.drain_timeout);
        let mut backoff = Backoff::new(Duration::from_secs(5));
        loop {
            let batch = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                batch = self.next_batch() => batch,
            };
            let batch = match batch {
                Ok(batch) => {
                    self.readiness.set("kafka", true);
                    backoff.reset();
                    batch
                }
                Err(err) => {
                    self.readiness.set("kafka", false);
                    warn!(error = %err, "kafka consume failed, backing off");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            // Between batches only: a batch cut short would lose its place in the partition.
            let rejoin = tokio::select! {
                biased;
                _ = self.rejoin.notified() => true,
                _ = std::future::ready(()) => false,
            };
            if let Some(tpl) = self.process(&batch, &hard_stop).await? {
                self.commit(
                    &tpl,
                    if cancel.is_cancelled() || rejoin {
                        CommitMode::Sync
                    } else {
                        CommitMode::Async
                    },
                );
            }
            if rejoin {
                sked_core::kafka::stall::rejoin(&self.consumer, &self.topics);
            }
        }
        info!("ingest consumer drained");
        Ok(())
    }

    async fn next_batch(&self) -> KafkaResult<Vec<BorrowedMessage<'_>>> {
        batch::next(
            &self.consumer,
            self.settings.batch_max,
            self.settings.batch_linger,
        )
        .await
    }

    /// Makes a batch durable. Returns the offsets to commit, or `None` when the drain deadline
    /// cut it short (nothing may be committed then).
    async fn process(
        &self,
        batch: &[BorrowedMessage<'_>],
        hard_stop: &CancellationToken,
    ) -> anyhow::Result<Option<TopicPartitionList>> {
        let started = Instant::now();
        let now = Utc::now();
        self.metrics.received.inc_by(batch.len() as u64);
        self.metrics.batch_records.observe(batch.len() as f64);

        let mut ops = Vec::with_capacity(batch.len());
        let mut op_msg = Vec::with_capacity(batch.len());
        let mut rejects: Vec<(usize, request::Error)> = Vec::new();
        for (i, msg) in batch.iter().enumerate() {
            match decode::decide(msg, &self.settings.limits, &self.settings.tenants, now) {
                Decision::Apply(mut op) => {
                    if let Op::Insert { spec, .. } = &mut op {
                        if !spec.calendars.is_empty() {
                            // Redis unreachable: the names cannot be checked, and the store
                            // write below retries until Redis is back; accept rather than
                            // dead-letter a request that may be valid.
                            match self.calendars.for_names(&spec.calendars).await {
                                Ok(known) => {
                                    if let Err(err) = request::check_calendars(spec, &known) {
                                        rejects.push((i, err));
                                        continue;
                                    }
                                }
                                Err(err) => warn!(
                                    error = %err,
                                    sked.job.id = %spec.id,
                                    "cannot load calendars to check the request's names"
                                ),
                            }
                        }
                        spec.traceparent = ingest_span(msg, spec.id.as_str());
                    }
                    ops.push(op);
                    op_msg.push(i);
                }
                Decision::Reject(err) => rejects.push((i, err)),
            }
        }

        // Over quota: to the DLQ (`quota_exceeded`); the rest of the batch goes on.
        let filtered = self.admit(&ops, &op_msg, &mut rejects).await;
        let (admitted, admitted_msg) = match &filtered {
            Some((o, m)) => (o.as_slice(), m.as_slice()),
            None => (ops.as_slice(), op_msg.as_slice()),
        };
        let Some(applied) = self.apply(admitted, hard_stop).await else {
            return Ok(None);
        };
        for (i, result) in applied.into_iter().enumerate() {
            match result {
                Ok(applied) => self.metrics.stored(outcome(&applied), "kafka"),
                Err(err) => rejects.push((admitted_msg[i], err)),
            }
        }
        let written = Utc::now();
        for msg in batch {
            let at = decode::record_time(msg, written);
            let secs = (written - at).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
            self.metrics.ingest_latency_seconds.observe(secs);
        }

        rejects.sort_by_key(|(i, _)| *i);
        if !self
            .dead_letter(batch, &ops, &op_msg, &rejects, hard_stop)
            .await
        {
            return Ok(None);
        }

        let tpl = batch::positions_after(batch)?;
        self.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(Some(tpl))
    }

    /// The ops that pass the quotas, with their message indexes, when some do not (they
    /// become rejects); `None` when every op passes.
    async fn admit(
        &self,
        ops: &[Op],
        op_msg: &[usize],
        rejects: &mut Vec<(usize, request::Error)>,
    ) -> Option<(Vec<Op>, Vec<usize>)> {
        let specs: Vec<(usize, &request::JobSpec)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                Op::Insert { spec, .. } => Some((i, &**spec)),
                Op::Cancel(_) | Op::CancelListed { .. } => None,
            })
            .collect();
        let verdicts = self
            .quotas
            .check(&specs.iter().map(|(_, s)| *s).collect::<Vec<_>>())
            .await;
        let mut refused = vec![false; ops.len()];
        for ((i, _), verdict) in specs.iter().zip(verdicts) {
            if let Some(e) = verdict {
                refused[*i] = true;
                rejects.push((
                    op_msg[*i],
                    request::Error::new(Reason::QuotaExceeded, e.to_string()),
                ));
            }
        }
        if !refused.contains(&true) {
            return None;
        }
        Some(
            ops.iter()
                .zip(op_msg)
                .zip(refused)
                .filter(|(_, refused)| !refused)
                .map(|((op, m), _)| (op.clone(), *m))
                .unzip(),
        )
    }

    /// Writes the ops, retrying transient failures until they succeed or `hard_stop`. An op
    /// that keeps failing for another reason is rejected alone (reason `internal`) so it
    /// cannot block the partition.
    async fn apply(
        &self,
        ops: &[Op],
        hard_stop: &CancellationToken,
    ) -> Option<Vec<Result<Applied, request::Error>>> {
        if ops.is_empty() {
            return Some(Vec::new());
        }
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let mut permanent_failures = 0;
        loop {
            match self.store.apply(ops).await {
                Ok(applied) => {
                    self.readiness.set("redis", true);
                    return Some(applied.into_iter().map(Ok).collect());
                }
                Err(err) if err.is_transient() => {
                    self.readiness.set("redis", false);
                    self.metrics.store_errors.inc();
                    warn!(error = %err, ops = ops.len(), "redis write failed, retrying; nothing committed");
                }
                Err(err) => {
                    self.metrics.store_errors.inc();
                    permanent_failures += 1;
                    warn!(error = %err, ops = ops.len(), "redis write failed");
                    if permanent_failures >= 3 {
                        return self.apply_one_by_one(ops, hard_stop).await;
                    }
                }
            }
            tokio::select! {
                _ = hard_stop.cancelled() => return None,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    async fn apply_one_by_one(
        &self,
        ops: &[Op],
        hard_stop: &CancellationToken,
    ) -> Option<Vec<Result<Applied, request::Error>>> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let single = std::slice::from_ref(op);
            loop {
                match self.store.apply(single).await {
                    Ok(mut a) => {
                        out.push(
                            a.pop()
                                .ok_or_else(|| request::Error::new(Reason::Internal, "no result")),
                        );
                        break;
                    }
                    Err(err) if err.is_transient() => {
                        tokio::select! {
                            _ = hard_stop.cancelled() => return None,
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        }
                    }
                    Err(err) => {
                        out.push(Err(request::Error::new(
                            Reason::Internal,
                            format!("cannot store: {err}"),
                        )));
                        break;
                    }
                }
            }
        }
        Some(out)
    }

    /// Produces one dead letter per rejected record and waits for every ack. Returns false
    /// when `hard_stop` came first.
    async fn dead_letter(
        &self,
        batch: &[BorrowedMessage<'_>],
        ops: &[Op],
        op_msg: &[usize],
        rejects: &[(usize, request::Error)],
        hard_stop: &CancellationToken,
    ) -> bool {
        if rejects.is_empty() {
            return true;
        }
        let now = Utc::now();
        let mut pending: Vec<dlq::Record> = rejects
            .iter()
            .map(|(i, err)| {
                self.metrics.rejected(err.reason);
                let msg = &batch[*i];
                let spec = op_msg
                    .iter()
                    .position(|m| m == i)
                    .and_then(|o| match &ops[o] {
                        Op::Insert { spec, .. } => Some(decode::describe(spec)),
                        Op::Cancel(_) | Op::CancelListed { .. } => None,
                    });
                debug!(
                    messaging.kafka.offset = msg.offset(),
                    reason = %err.reason,
                    error = %err.message,
                    "request rejected to the dlq"
                );
                // The tenant of a request that could not be parsed: its topic's, if any.
                let topic_tenant = self.settings.tenants.tenant_of_topic(msg.topic());
                dlq::record(
                    msg,
                    &Failure {
                        stage: Stage::Ingest,
                        reason: err.reason.into(),
                        message: &err.message,
                        at: now,
                        attempts: 0,
                        job_id: spec.map(|s| s.0),
                        app: spec.map(|s| s.1),
                        tenant: spec.and_then(|s| s.2).or(topic_tenant.as_deref()),
                    },
                )
            })
            .collect();
        let mut backoff = Backoff::new(Duration::from_secs(5));
        loop {
            let sends = pending.iter().map(|r| {
                let mut record: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(&self.settings.dlq_topic).headers(r.headers.clone());
                if let Some(key) = &r.key {
                    record = record.key(key.as_slice());
                }
                if let Some(payload) = &r.payload {
                    record = record.payload(payload.as_slice());
                }
                self.producer.send(record, Duration::from_secs(30))
            });
            let results = futures::future::join_all(sends).await;
            let failed: Vec<dlq::Record> = pending
                .into_iter()
                .zip(results)
                .filter_map(|(record, result)| match result {
                    Ok(_) => None,
                    Err((err, _)) => {
                        self.metrics.dlq_errors.inc();
                        warn!(error = %err, topic = %self.settings.dlq_topic, "dead letter not acknowledged, retrying");
                        Some(record)
                    }
                })
                .collect();
            if failed.is_empty() {
                return true;
            }
            pending = failed;
            tokio::select! {
                _ = hard_stop.cancelled() => return false,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    fn commit(&self, tpl: &TopicPartitionList, mode: CommitMode) {
        if let Err(err) = self.consumer.commit(tpl, mode) {
            self.metrics.commit_errors.inc();
            match err {
                KafkaError::ConsumerCommit(code) => {
                    warn!(error = %code, "offset commit failed; records will be redelivered and deduplicated")
                }
                other => warn!(error = %other, "offset commit failed"),
            }
        }
    }
}

/// Metric label of a store outcome.
pub fn outcome(applied: &Applied) -> &'static str {
    applied.label()
}

/// The `<topic> process` span of an accepted request (child of its `traceparent` header, if
/// any); returns the trace context the job record keeps for the scheduler's fire span: the
/// span's, or the incoming header's when no tracing is exported.
fn ingest_span(msg: &BorrowedMessage<'_>, job_id: &str) -> Option<String> {
    let key = msg.key().and_then(|k| std::str::from_utf8(k).ok());
    let incoming = trace::header(msg.headers());
    let span = trace::process_span(msg.topic(), key, msg.offset(), incoming);
    span.record("sked.job.id", job_id);
    trace::traceparent(&span).or_else(|| incoming.map(str::to_owned))
}
