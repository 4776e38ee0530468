//! The retry drain: records of the retry topic into one-shot retry jobs in the Redis due index.
//!
//! A retry record (written by the worker) is the fired envelope, unchanged, with the headers
//! `sked-retry-at` (epoch ms) and `sked-attempt` (the attempt it asks for). Each becomes a
//! job `<fire id>~<attempt>` due at `sked-retry-at` whose [`RetryOf`] makes the scheduler fire
//! it under the original job id and fire id with that attempt. Every retry is its own entry in
//! the due index, so a 10-minute retry never holds up a 1-second one.
//!
//! Protocol, one batch at a time, that of the shared batch pipeline
//! ([`sked_core::kafka::pipeline`], as ingest), which consumes, delivers the dead letters,
//! commits and drains; `Processor` is steps 2 and 3:
//! 1. **consuming**: read up to [`BATCH_MAX`] records, or what arrives within [`BATCH_LINGER`]
//!    after the first;
//! 2. decode each record; write every retry job of the batch to Redis in one call, retrying
//!    transient errors with backoff (readiness `redis` off meanwhile, nothing committed). The
//!    write is idempotent: a redelivered record is a duplicate of the job it created;
//! 3. produce a dead letter (stage `execute`) for every record that cannot be decoded and wait
//!    for Kafka's answer, as ingest does: a letter too large is cut to fit, one that cannot be
//!    written at any size is dropped and counted ([`dlq::Sender`]), one Kafka does not
//!    acknowledge is parked and retried between batches ([`dlq::Backlog`]), holding back the
//!    commit of its own partition only. A bad record never blocks the others;
//! 4. commit, per partition, the offset after the batch's last record (for a partition with a
//!    parked letter: that letter's record); every record before it is durable by then.
//!
//! **draining** (cancel): stop reading, finish the batch in flight within
//! `replayer.drain_timeout`, try the parked letters once more, commit synchronously, return.
//! A batch cut short is not committed and is redelivered, where Redis deduplicates it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::{
    consumer::StreamConsumer,
    message::{BorrowedMessage, Headers, Message},
};
use sked_core::{
    backoff::{self, Backoff},
    envelope::Envelope,
    job::JobId,
    kafka::Context,
    kafka::{
        dlq::{self, Failure, Origin, Stage},
        headers as h,
        pipeline::{BatchSettings, Batches, Process},
    },
    readiness::Readiness,
    reason::Reason,
    request::{self, Format, JobSpec, RetryOf},
    schedule::Schedule,
    store::{Applied, Op, Store},
    trace,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::metrics::Metrics;

/// Most records in one batch (one Redis pipeline, one commit).
pub const BATCH_MAX: usize = 1000;
/// How long a batch waits for more records after its first.
pub const BATCH_LINGER: Duration = Duration::from_millis(5);

/// A decoded retry record: the job to store and the bytes its fingerprint is taken from.
#[derive(Debug)]
pub struct Retry {
    /// The one-shot retry job.
    pub spec: JobSpec,
    /// Record value, attempt and retry time: the same retry always has the same bytes.
    pub fingerprint_bytes: Vec<u8>,
}

/// Decodes a retry record from its value and a header lookup.
///
/// Errors name a `sked-reason`: `invalid_json` (the value is not an envelope),
/// `missing_field` (a required header is absent), `invalid_field` (a header or an id is not
/// valid).
pub fn decode<'a>(
    value: Option<&[u8]>,
    header: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<Retry, request::Error> {
    let value = value
        .ok_or_else(|| request::Error::new(Reason::MissingField, "retry record has no value"))?;
    let envelope: Envelope = serde_json::from_slice(value).map_err(|e| {
        request::Error::new(
            Reason::InvalidJson,
            format!("retry record value is not a fired envelope: {e}"),
        )
    })?;
    let number = |name: &str| -> Result<i64, request::Error> {
        let raw = header(name).ok_or_else(|| {
            request::Error::new(
                Reason::MissingField,
                format!("retry record has no `{name}` header"),
            )
        })?;
        std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                request::Error::new(
                    Reason::InvalidField,
                    format!("header `{name}` is not a whole number"),
                )
            })
    };
    let retry_at_ms = number(h::SKED_RETRY_AT)?;
    let retry_at = DateTime::<Utc>::from_timestamp_millis(retry_at_ms).ok_or_else(|| {
        request::Error::new(
            Reason::InvalidField,
            format!("header `{}` is out of range", h::SKED_RETRY_AT),
        )
    })?;
    let attempt = u32::try_from(number(h::SKED_ATTEMPT)?)
        .ok()
        .filter(|a| *a >= 1)
        .ok_or_else(|| {
            request::Error::new(
                Reason::InvalidField,
                format!(
                    "header `{}` must be a positive attempt number",
                    h::SKED_ATTEMPT
                ),
            )
        })?;
    let job_id = JobId::parse(&envelope.job_id)
        .map_err(|e| request::Error::new(Reason::InvalidId, format!("envelope job_id: {e}")))?;
    if envelope.fire_id.is_empty() {
        return Err(request::Error::new(
            Reason::InvalidField,
            "envelope fire_id is empty",
        ));
    }
    let id = retry_job_id(&envelope.fire_id, attempt);
    let mut fingerprint_bytes = Vec::with_capacity(value.len() + 32);
    fingerprint_bytes.extend_from_slice(value);
    fingerprint_bytes.extend_from_slice(format!("\0{attempt}\0{retry_at_ms}").as_bytes());
    Ok(Retry {
        spec: JobSpec {
            id,
            app: envelope.app,
            idempotency_key: None,
            payload: envelope.payload,
            schedule: Schedule::Once { at: retry_at },
            first_due: retry_at,
            priority: envelope.priority,
            timeout_ms: envelope.timeout_ms,
            retry: envelope.retry,
            labels: envelope.labels,
            tenant: envelope.tenant,
            calendars: Vec::new(),
            format: Format::Native,
            retry_of: Some(RetryOf {
                job_id,
                fire_id: envelope.fire_id,
                attempt,
            }),
            traceparent: header(h::TRACEPARENT)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned),
        },
        fingerprint_bytes,
    })
}

/// `<fire id>~<attempt>`; when that is not a valid job id (too long), `retry-<xxh3-128 of the
/// fire id>~<attempt>`, which is deterministic too.
pub fn retry_job_id(fire_id: &str, attempt: u32) -> JobId {
    JobId::parse(&format!("{fire_id}~{attempt}")).unwrap_or_else(|_| {
        let hash = xxhash_rust::xxh3::xxh3_128(fire_id.as_bytes());
        JobId::parse(&format!("retry-{hash:032x}~{attempt}"))
            .unwrap_or_else(|_| JobId::derived("retry", 0, i64::from(attempt)))
    })
}

/// The running retry drain.
pub struct RetryDrain {
    pub(crate) consumer: StreamConsumer<Context>,
    /// The retry topic.
    pub(crate) topic: String,
    /// Notified by the stall watch: leave and rejoin the group (between batches).
    pub(crate) rejoin: std::sync::Arc<tokio::sync::Notify>,
    /// Produces dead letters to `topics.dlq`.
    pub(crate) dlq: dlq::Sender,
    pub(crate) store: Store,
    pub(crate) drain_timeout: Duration,
    pub(crate) metrics: Metrics,
    pub(crate) readiness: Readiness,
}

impl RetryDrain {
    /// The consumer context.
    pub fn context(metrics: &Metrics) -> Context {
        Context::new("retry-drain", metrics.commit_errors.clone())
    }

    /// Runs until `cancel`, then drains as described in the module docs.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let Self {
            consumer,
            topic,
            rejoin,
            dlq,
            store,
            drain_timeout,
            metrics,
            readiness,
        } = self;
        let pipeline = Batches {
            consumer,
            topics: vec![topic],
            rejoin,
            dlq,
            readiness: readiness.clone(),
            settings: BatchSettings {
                max: BATCH_MAX,
                linger: BATCH_LINGER,
                drain_timeout,
            },
            commit_errors: metrics.commit_errors.clone(),
            parked: metrics.dlq_parked.clone(),
            name: "retry-drain",
        };
        let processor = Processor {
            store,
            metrics,
            readiness,
        };
        pipeline.run(&processor, cancel).await
    }
}

/// What the retry drain does with a batch: steps 2 and 3 of the module docs (the pipeline
/// does the rest).
struct Processor {
    store: Store,
    metrics: Metrics,
    readiness: Readiness,
}

impl Process for Processor {
    fn process(
        &self,
        batch: &[BorrowedMessage<'_>],
        hard_stop: &CancellationToken,
    ) -> impl Future<Output = anyhow::Result<Option<Vec<(Origin, dlq::Record)>>>> + Send {
        self.store_retries(batch, hard_stop)
    }
}

impl Processor {
    /// Makes a batch durable; returns its dead letters, or `None` when the drain deadline cut
    /// it short.
    async fn store_retries(
        &self,
        batch: &[BorrowedMessage<'_>],
        hard_stop: &CancellationToken,
    ) -> anyhow::Result<Option<Vec<(Origin, dlq::Record)>>> {
        self.metrics.retries_received.inc_by(batch.len() as u64);
        let mut ops = Vec::with_capacity(batch.len());
        let mut rejects = Vec::new();
        for (i, msg) in batch.iter().enumerate() {
            let headers = msg.headers();
            let lookup = |name: &str| {
                headers.and_then(|hs| hs.iter().filter(|x| x.key == name).last()?.value)
            };
            match decode(msg.payload(), lookup) {
                Ok(mut retry) => {
                    // The retry drain's span, child of the failed attempt; the retry's fire
                    // is its child.
                    let span = trace::process_span(
                        msg.topic(),
                        Some(retry.spec.id.as_str()),
                        msg.offset(),
                        retry.spec.traceparent.as_deref(),
                    );
                    if let Some(of) = &retry.spec.retry_of {
                        span.record("sked.job.id", of.job_id.as_str())
                            .record("sked.fire.id", of.fire_id.as_str())
                            .record("sked.attempt", of.attempt);
                    }
                    if let Some(tp) = trace::traceparent(&span) {
                        retry.spec.traceparent = Some(tp);
                    }
                    debug!(
                        sked.job.id = %retry.spec.id,
                        messaging.kafka.offset = msg.offset(),
                        "retry decoded"
                    );
                    ops.push(Op::insert(retry.spec, &retry.fingerprint_bytes));
                }
                Err(err) => rejects.push((i, err)),
            }
        }
        if !ops.is_empty() {
            let Some(applied) = self.apply(&ops, hard_stop).await else {
                return Ok(None);
            };
            for a in &applied {
                self.metrics.stored(match a {
                    Applied::Cancel(_) => "cancel",
                    other => other.label(),
                });
            }
        }
        Ok(Some(self.letters(batch, &rejects)))
    }

    /// Writes the ops, retrying until they succeed or `hard_stop`. The ops come from decoded
    /// records, so a non-transient error (a corrupt stored record, say) is retried too, with
    /// the partition held: losing a retry silently would be worse.
    async fn apply(&self, ops: &[Op], hard_stop: &CancellationToken) -> Option<Vec<Applied>> {
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let applied = backoff::retry(hard_stop, &mut backoff, || async {
            self.store.apply(ops).await.map_err(|err| {
                if err.is_transient() {
                    self.readiness.set("redis", false);
                }
                self.metrics.store_errors.inc();
                warn!(error = %err, ops = ops.len(), "redis write of retries failed, retrying; nothing committed");
                backoff::Failure::<()>::Transient(())
            })
        })
        .await
        .ok()?;
        self.readiness.set("redis", true);
        Some(applied)
    }

    /// The dead letter of every rejected record, with the record's origin.
    fn letters(
        &self,
        batch: &[BorrowedMessage<'_>],
        rejects: &[(usize, request::Error)],
    ) -> Vec<(Origin, dlq::Record)> {
        let now = Utc::now();
        rejects
            .iter()
            .map(|(i, err)| {
                let msg = &batch[*i];
                self.metrics.rejected(err.reason);
                warn!(
                    messaging.kafka.partition = msg.partition(),
                    messaging.kafka.offset = msg.offset(),
                    reason = %err.reason,
                    error = %err.message,
                    "retry record rejected to the dlq"
                );
                let header = |name: &str| {
                    msg.headers().and_then(|hs| {
                        hs.iter()
                            .filter(|x| x.key == name)
                            .last()?
                            .value
                            .and_then(|v| std::str::from_utf8(v).ok())
                    })
                };
                let letter = dlq::record(
                    msg,
                    &Failure {
                        stage: Stage::Execute,
                        reason: err.reason.into(),
                        message: &format!("retry record rejected: {}", err.message),
                        at: now,
                        attempts: header(h::SKED_ATTEMPT)
                            .and_then(|a| a.parse::<u32>().ok())
                            .map_or(0, |a| a.saturating_sub(1)),
                        app: header(h::SKED_APP),
                        job_id: header(h::SKED_JOB_ID),
                        tenant: None,
                    },
                );
                (Origin::of(msg), letter)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ENVELOPE: &str = r#"{"job_id":"order-1","fire_id":"order-1@1700000000000","app":"sms","due_at":"2023-11-14T22:13:20Z","fired_at":"2023-11-14T22:13:20Z","attempt":1,"payload":{"n":12345678901234567890},"priority":"high","timeout_ms":500,"labels":{"t":"a"}}"#;

    fn headers<'a>(list: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a [u8]> {
        move |name| {
            list.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_bytes())
        }
    }

    #[test]
    fn retry_record_becomes_a_one_shot_job_under_the_original_ids() {
        let hs = [("sked-retry-at", "1700000005000"), ("sked-attempt", "2")];
        let r = decode(Some(ENVELOPE.as_bytes()), headers(&hs)).unwrap();
        assert_eq!(r.spec.id.as_str(), "order-1@1700000000000~2");
        assert_eq!(r.spec.first_due.timestamp_millis(), 1_700_000_005_000);
        let of = r.spec.retry_of.as_ref().unwrap();
        assert_eq!(
            (of.job_id.as_str(), of.fire_id.as_str(), of.attempt),
            ("order-1", "order-1@1700000000000", 2)
        );
        assert_eq!(r.spec.payload.get(), r#"{"n":12345678901234567890}"#);
        assert_eq!(r.spec.timeout_ms, Some(500));
        let env = Envelope::new(&r.spec, r.spec.first_due, r.spec.first_due);
        assert_eq!(
            (env.job_id.as_str(), env.attempt),
            ("order-1", 2),
            "the scheduler fires it under the original id"
        );
    }

    #[test]
    fn bad_retry_records_are_classified() {
        let ok = [("sked-retry-at", "1"), ("sked-attempt", "2")];
        let err = decode(Some(b"nope"), headers(&ok)).unwrap_err();
        assert_eq!(err.reason, Reason::InvalidJson);
        let err = decode(None, headers(&ok)).unwrap_err();
        assert_eq!(err.reason, Reason::MissingField);
        let err = decode(Some(ENVELOPE.as_bytes()), headers(&[("sked-attempt", "2")])).unwrap_err();
        assert_eq!(err.reason, Reason::MissingField);
        let bad = [("sked-retry-at", "soon"), ("sked-attempt", "2")];
        let err = decode(Some(ENVELOPE.as_bytes()), headers(&bad)).unwrap_err();
        assert_eq!(err.reason, Reason::InvalidField);
        let zero = [("sked-retry-at", "1"), ("sked-attempt", "0")];
        let err = decode(Some(ENVELOPE.as_bytes()), headers(&zero)).unwrap_err();
        assert_eq!(err.reason, Reason::InvalidField);
    }

    #[test]
    fn long_fire_ids_get_a_hashed_retry_id() {
        let fire = format!("{}@1", "x".repeat(256));
        let a = retry_job_id(&fire, 3);
        assert!(a.as_str().starts_with("retry-") && a.as_str().ends_with("~3"));
        assert_eq!(a, retry_job_id(&fire, 3));
    }
}
