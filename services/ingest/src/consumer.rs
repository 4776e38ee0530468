//! The ingest consumer: records of the ingest topic into the Redis job store.
//!
//! The shared batch pipeline ([`sked_core::kafka::pipeline`]) consumes, delivers the dead
//! letters, commits and drains; [`Processor`] is step 2. Protocol, one batch at a time:
//! 1. **consuming**: read up to `ingest.batch_max` records, or what arrives within
//!    `ingest.batch_linger` after the first;
//! 2. decide each record (job, cancel, or dead letter) and write every job and cancel of the
//!    batch to Redis in one call; transient Redis errors are retried with backoff while
//!    `/readyz` reports not ready, and nothing is committed meanwhile;
//! 3. produce the batch's dead letters and wait for Kafka's answers: a letter too large for
//!    the producer or the broker is cut to fit, one that cannot be written at any size is
//!    dropped and counted ([`dlq::Sender`]); one that Kafka does not acknowledge for another
//!    reason is parked ([`dlq::Backlog`]) and retried with backoff between batches, holding
//!    back the commit of its own partition only;
//! 4. commit, per partition, the offset after the batch's last record, or for a partition
//!    with a parked letter the offset of that letter's record (its later position is committed
//!    once the letter is acknowledged). No offset passes an unfinished record, and one bad
//!    record never stops the other partitions. With [`dlq::MAX_PARKED`] letters parked the
//!    loop stops reading until one is acknowledged.
//!
//! **draining** (first SIGTERM): stop reading, finish the batch in flight within
//! `ingest.drain_timeout`, try the parked letters once more, commit synchronously, return. A
//! batch cut short by the deadline is not committed and is redelivered to the next owner,
//! where Redis deduplicates it; so are the records of letters still parked.

use std::time::Duration;

use chrono::Utc;
use rdkafka::{
    consumer::StreamConsumer,
    message::{BorrowedMessage, Message},
};
use sked_core::{
    backoff::Backoff,
    config::IngestOptions,
    kafka::Context,
    kafka::dlq::{self, Failure, Origin, Stage},
    kafka::pipeline::{BatchSettings, Batches, Process},
    readiness::Readiness,
    reason::Reason,
    request::{self, Limits},
    store::{Applied, Op, Store, calendars::CalendarCache},
    trace,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

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
    /// Produces dead letters to `topics.dlq`.
    pub(crate) dlq: dlq::Sender,
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
        let Self {
            consumer,
            topics,
            rejoin,
            dlq,
            store,
            settings,
            metrics,
            readiness,
            calendars,
            quotas,
        } = self;
        let pipeline = Batches {
            consumer,
            topics,
            rejoin,
            dlq,
            readiness: readiness.clone(),
            settings: BatchSettings {
                max: settings.batch_max,
                linger: settings.batch_linger,
                drain_timeout: settings.drain_timeout,
            },
            commit_errors: metrics.commit_errors.clone(),
            parked: metrics.dlq_parked.clone(),
            name: "ingest",
        };
        let processor = Processor {
            store,
            settings,
            metrics,
            readiness,
            calendars,
            quotas,
        };
        pipeline.run(&processor, cancel).await
    }
}

/// What ingest does with a batch: steps 2 and 3 of the module docs (the pipeline does the
/// rest).
struct Processor {
    store: Store,
    settings: Settings,
    metrics: Metrics,
    readiness: Readiness,
    calendars: CalendarCache,
    quotas: crate::quota::Quotas,
}

impl Process for Processor {
    fn process(
        &self,
        batch: &[BorrowedMessage<'_>],
        hard_stop: &CancellationToken,
    ) -> impl Future<Output = anyhow::Result<Option<Vec<(Origin, dlq::Record)>>>> + Send {
        self.decide_and_store(batch, hard_stop)
    }

    fn batch_done(&self, elapsed: Duration) {
        self.metrics.batch_seconds.observe(elapsed.as_secs_f64());
    }
}

impl Processor {
    /// Makes a batch durable. Returns its dead letters, or `None` when the drain deadline cut
    /// it short (nothing may be committed then).
    async fn decide_and_store(
        &self,
        batch: &[BorrowedMessage<'_>],
        hard_stop: &CancellationToken,
    ) -> anyhow::Result<Option<Vec<(Origin, dlq::Record)>>> {
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
        Ok(Some(self.letters(batch, &ops, &op_msg, &rejects)))
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
            if !backoff.sleep(hard_stop).await {
                return None;
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
            let mut backoff = Backoff::new(Duration::from_millis(200));
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
                        if !backoff.sleep(hard_stop).await {
                            return None;
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

    /// The dead letter of every rejected record, with the record's origin.
    fn letters(
        &self,
        batch: &[BorrowedMessage<'_>],
        ops: &[Op],
        op_msg: &[usize],
        rejects: &[(usize, request::Error)],
    ) -> Vec<(Origin, dlq::Record)> {
        let now = Utc::now();
        rejects
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
                let letter = dlq::record(
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
                );
                (Origin::of(msg), letter)
            })
            .collect()
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
