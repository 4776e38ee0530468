//! One record of a due topic, from envelope to durable outcome.
//!
//! 1. decode the envelope (undecodable: dead letter `invalid_envelope`);
//! 2. when the app's circuit breaker is open, hand the record to the retry topic unrun, same
//!    attempt, due when the breaker may close; else wait for the app's rate-limit token
//!    (holding no slot and no lease), and ask the breaker again (half-open: one trial).
//!    Between the two, `[global_limits]` hold the job (limits.rs): concurrency slots and
//!    start rates shared by every worker; held past `global_limits.max_wait`, the record goes
//!    to the retry topic unrun, same attempt;
//! 3. wait for a run slot (`worker.max_in_flight`), then ask Redis whether to run
//!    ([`Store::begin_run`]): a fire already done is acknowledged without running (counted as
//!    a duplicate); a fire leased by another worker is asked about again when its lease ends;
//! 4. run the app's handler, bounded by the job's timeout (job, else app, else
//!    `worker.default_timeout`);
//! 5. success: mark the fire done. Transient failure with attempts left: produce the retry
//!    record and wait for Kafka's ack (a retry record too large to produce is dead-lettered
//!    instead, `retry_too_large`). Otherwise: produce one dead letter and wait for the ack
//!    (a letter too large is cut to fit, one that cannot be written at any size is dropped
//!    and counted: [`dlq::Sender`]). Then record the run state;
//! 6. report whether the record's effect is durable, so its offset may be committed.
//!
//! Redis and Kafka failures are retried with backoff until they succeed or the drain
//! deadline passes; an abandoned record is not committed and is redelivered. A size error is
//! never retried as is.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use rdkafka::{
    error::KafkaError,
    message::{Message, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use sked_core::{
    backoff::{self, Backoff},
    envelope::Envelope,
    job::JobId,
    kafka::{dlq, headers as h, produce, size},
    readiness::Readiness,
    request::RetryPolicy,
    retry,
    store::{
        self, Store,
        runs::{AttemptDetail, Begin, Run, RunState},
    },
    trace,
};
use tokio::{sync::Semaphore, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span, debug, info, warn};

use crate::{
    breaker::{Admission, Breaker, Outcome},
    handler::{Handler, HandlerError, Job},
    limits::{Hold, Limits},
    metrics::Metrics,
    rate_limit::RateLimiter,
    records::{self, Outgoing, Reason, Retry},
};

/// `last-error` of a record handed to the retry topic because its app's circuit is open.
pub const CIRCUIT_OPEN: &str = "circuit open";

/// Largest jitter added to a circuit-open retry time (besides 10 % of `open_for`).
const CIRCUIT_JITTER_MAX: Duration = Duration::from_secs(5);

/// How an app's jobs run.
#[derive(Clone)]
pub struct Route {
    /// The handler; `None` dead-letters with `no_handler`.
    pub handler: Option<Arc<dyn Handler>>,
    /// App timeout.
    pub timeout: Option<Duration>,
    /// App retry policy.
    pub retry: Option<RetryPolicy>,
    /// App rate limit (`None`: unlimited).
    pub rate_limit: Option<Arc<RateLimiter>>,
    /// App circuit breaker (`None`: always closed).
    pub breaker: Option<Arc<Breaker>>,
}

/// What the executor needs besides Redis and Kafka.
pub struct Settings {
    /// Routes of configured apps and apps with a registered handler.
    pub routes: BTreeMap<String, Route>,
    /// Timeout of jobs and apps that set none.
    pub default_timeout: Duration,
    /// Lease = timeout + this.
    pub lease_grace: Duration,
    /// Retry topic.
    pub retry_topic: String,
    /// `[global_limits]` (`None`: none configured).
    pub limits: Option<Limits>,
    /// `worker.attempts_kept`.
    pub attempts_kept: usize,
}

/// This host's name (`HOSTNAME`: the pod on Kubernetes), recorded with each attempt.
static HOSTNAME: std::sync::LazyLock<Option<String>> =
    std::sync::LazyLock::new(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()));

/// How producing a retry record ended.
#[derive(Debug)]
enum Produced {
    /// Kafka acknowledged it.
    Acked,
    /// Larger than the producer or the topic accepts: retrying it as is cannot succeed.
    TooLarge(KafkaError),
    /// The drain deadline passed first.
    Stopped,
}

/// Runs records. Shared by every record task.
pub struct Executor {
    pub(crate) store: Store,
    /// Produces retry records.
    pub(crate) producer: FutureProducer,
    /// Produces dead letters to `topics.dlq`.
    pub(crate) dlq: dlq::Sender,
    pub(crate) settings: Settings,
    pub(crate) metrics: Metrics,
    pub(crate) readiness: Readiness,
    pub(crate) slots: Semaphore,
    /// Cancelled at SIGTERM: records not yet running are abandoned.
    pub(crate) cancel: CancellationToken,
    /// Cancelled at the drain deadline: retry loops give up.
    pub(crate) hard_stop: CancellationToken,
}

/// Why an execution failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failed {
    Handler(HandlerError),
    Timeout(Duration),
    NoHandler,
}

impl Failed {
    fn message(&self) -> String {
        match self {
            Failed::Handler(HandlerError::Transient(m) | HandlerError::Permanent(m)) => m.clone(),
            Failed::Timeout(t) => format!("handler timed out after {}ms", t.as_millis()),
            Failed::NoHandler => "no handler for the app in this worker".into(),
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            Failed::Handler(HandlerError::Transient(_)) => "transient",
            Failed::Handler(HandlerError::Permanent(_)) => "permanent",
            Failed::Timeout(_) => "timeout",
            Failed::NoHandler => "no_handler",
        }
    }

    fn retryable(&self) -> bool {
        matches!(
            self,
            Failed::Handler(HandlerError::Transient(_)) | Failed::Timeout(_)
        )
    }

    /// The dead-letter reason when this failure ends the fire.
    fn reason(&self) -> Reason {
        match self {
            Failed::Handler(HandlerError::Transient(_)) => Reason::HandlerFailed,
            Failed::Handler(HandlerError::Permanent(_)) => Reason::PermanentError,
            Failed::Timeout(_) => Reason::Timeout,
            Failed::NoHandler => Reason::NoHandler,
        }
    }
}

impl Executor {
    /// Handles one record; true when its effect is durable and its offset may be committed.
    /// Runs in one `<topic> process` span per attempt, child of the fire's `traceparent`.
    pub async fn execute(&self, msg: &OwnedMessage) -> bool {
        let key = msg.key().and_then(|k| std::str::from_utf8(k).ok());
        let traceparent = records::header(msg, h::TRACEPARENT);
        let span = trace::process_span(msg.topic(), key, msg.offset(), traceparent);
        self.attempt(msg).instrument(span).await
    }

    async fn attempt(&self, msg: &OwnedMessage) -> bool {
        let envelope = match decode(msg) {
            Ok(envelope) => envelope,
            Err(why) => {
                let attempts = attempt_of(msg, None);
                return self
                    .dead_letter(msg, Reason::InvalidEnvelope, &why, attempts, None, None)
                    .await;
            }
        };
        let Ok(job_id) = JobId::parse(&envelope.job_id) else {
            let why = format!("invalid job id {:?}", envelope.job_id);
            return self
                .dead_letter(
                    msg,
                    Reason::InvalidEnvelope,
                    &why,
                    1,
                    Some(&envelope.app),
                    None,
                )
                .await;
        };
        let attempt = attempt_of(msg, Some(&envelope));
        Span::current()
            .record("sked.job.id", job_id.as_str())
            .record("sked.fire.id", envelope.fire_id.as_str())
            .record("sked.attempt", attempt);
        let replay = records::header(msg, h::SKED_REPLAY_COUNT)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let run = Run {
            job_id: &job_id,
            fire_id: &envelope.fire_id,
            attempt,
            replay,
        };
        let route = self.settings.routes.get(&envelope.app);
        let timeout = envelope
            .timeout_ms
            .map(Duration::from_millis)
            .or_else(|| route.and_then(|r| r.timeout))
            .unwrap_or(self.settings.default_timeout);

        // The breaker and the rate limit before the slot: a job waiting for a token holds no
        // slot and no lease. An open breaker rejects before the wait; asked again after it,
        // it may have opened meanwhile, or this job may be the half-open trial.
        let breaker = route.and_then(|r| r.breaker.as_deref());
        if let Some(retry_in) = breaker.and_then(|b| b.rejects(Instant::now())) {
            return self
                .circuit_open(msg, &envelope, &job_id, attempt, breaker, retry_in)
                .await;
        }
        // Global limits next: a job held by one holds no run slot and no lease, and one held
        // past `max_wait` goes to the retry topic unrun (limits.rs).
        let Some(limits) = &self.settings.limits else {
            return self
                .admitted(msg, &envelope, &job_id, run, route, timeout)
                .await;
        };
        match self.hold(limits, &envelope, timeout).await {
            Hold::Stopped => false,
            Hold::Later { limit, retry_in } => {
                self.held_back(msg, &envelope, &job_id, attempt, &limit, retry_in)
                    .await
            }
            Hold::Admitted(slots) => {
                let durable = self
                    .admitted(msg, &envelope, &job_id, run, route, timeout)
                    .await;
                self.release(&envelope.fire_id, slots).await;
                durable
            }
        }
    }

    /// The rest of an attempt, once the breaker and the global limits let it through: the
    /// app's local rate limit, the breaker's admission, the run slot, the lease, the handler
    /// and the outcome.
    async fn admitted(
        &self,
        msg: &OwnedMessage,
        envelope: &Envelope,
        job_id: &JobId,
        run: Run<'_>,
        route: Option<&Route>,
        timeout: Duration,
    ) -> bool {
        let attempt = run.attempt;
        let breaker = route.and_then(|r| r.breaker.as_deref());
        if let Some(limiter) = route.and_then(|r| r.rate_limit.as_deref()) {
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                _ = limiter.acquire() => {}
            }
        }
        let permit = match breaker.map(|b| b.admit(Instant::now())) {
            None => None,
            Some(Admission::Run(permit)) => Some(permit),
            Some(Admission::Reject { retry_in }) => {
                return self
                    .circuit_open(msg, envelope, job_id, attempt, breaker, retry_in)
                    .await;
            }
        };

        // A slot first, then the lease: a lease is never held while waiting for a slot.
        let _slot = tokio::select! {
            _ = self.cancel.cancelled() => return false,
            slot = self.slots.acquire() => match slot {
                Ok(slot) => slot,
                Err(_) => return false,
            },
        };
        let lease = timeout + self.settings.lease_grace;
        loop {
            let Some(begin) = self.store_call(|| self.store.begin_run(run, lease)).await else {
                return false;
            };
            match begin {
                Begin::Run => break,
                Begin::AlreadyDone => {
                    self.metrics.duplicates_skipped.inc();
                    info!(sked.job.id = %job_id, sked.fire.id = %envelope.fire_id, attempt, "fire already handled, acknowledged without running");
                    return true;
                }
                Begin::RunningElsewhere { retry_in } => {
                    debug!(sked.job.id = %job_id, sked.fire.id = %envelope.fire_id, ?retry_in, "fire leased by another worker, waiting");
                    let wait = retry_in.clamp(Duration::from_millis(50), Duration::from_secs(1));
                    tokio::select! {
                        _ = self.cancel.cancelled() => return false,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }

        let started = Utc::now();
        let latency = (started - envelope.due_at).num_milliseconds().max(0) as f64 / 1e3;
        self.metrics.start_latency_seconds.observe(latency);
        let app_label = if route.is_some() {
            envelope.app.clone()
        } else {
            "other".to_owned()
        };
        let traceparent = trace::traceparent(&Span::current())
            .or_else(|| records::header(msg, h::TRACEPARENT).map(str::to_owned))
            .unwrap_or_else(|| envelope.traceparent());
        let detail = AttemptDetail {
            started_at: started,
            traceparent: Some(traceparent.clone()),
            worker: HOSTNAME.clone(),
            headers: if self.settings.attempts_kept > 0 {
                records::headers(msg, 32)
            } else {
                Vec::new()
            },
            keep: self.settings.attempts_kept,
        };
        let result = match route.and_then(|r| r.handler.clone()) {
            None => Err(Failed::NoHandler),
            Some(handler) => {
                let job = Job::new(envelope, attempt, traceparent, timeout);
                match tokio::time::timeout(timeout, handler.handle(job)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(err)) => Err(Failed::Handler(err)),
                    Err(_) => Err(Failed::Timeout(timeout)),
                }
            }
        };
        let took = (Utc::now() - started).to_std().unwrap_or_default();
        let outcome = match &result {
            Ok(()) => "succeeded",
            Err(f) => f.outcome(),
        };
        self.metrics
            .executed(app_label, outcome, took.as_secs_f64());
        // Permanent errors are answers from a live app; a missing handler says nothing (an
        // unrecorded trial is given back).
        match (permit, &result) {
            (Some(permit), Ok(()) | Err(Failed::Handler(HandlerError::Permanent(_)))) => {
                permit.record(Outcome::Success);
            }
            (Some(permit), Err(failed)) if failed.retryable() => permit.record(Outcome::Failure),
            _ => {}
        }

        let failed = match result {
            Ok(()) => {
                debug!(sked.job.id = %job_id, sked.fire.id = %envelope.fire_id, attempt, took_ms = took.as_millis() as u64, "job succeeded");
                return self
                    .store_call(|| {
                        self.store
                            .finish_run(run, RunState::Succeeded, took, None, &detail)
                    })
                    .await
                    .is_some();
            }
            Err(failed) => failed,
        };
        let message = failed.message();
        let policy = envelope
            .retry
            .clone()
            .or_else(|| route.and_then(|r| r.retry.clone()))
            .unwrap_or_default();
        let (state, durable) = if failed.retryable() && !retry::exhausted(&policy, attempt) {
            let next_attempt = attempt + 1;
            let delay = retry::delay(&policy, next_attempt, unit(&envelope.fire_id, attempt));
            let retry_at = Utc::now() + delay;
            match self
                .schedule_retry(msg, job_id, next_attempt, retry_at, &message)
                .await
            {
                Produced::Acked => {
                    self.metrics.retries.inc();
                    info!(sked.job.id = %job_id, sked.fire.id = %envelope.fire_id, attempt, next_attempt, delay_ms = delay.as_millis() as u64, error = %message, "job failed, retry scheduled");
                    (RunState::Retrying, true)
                }
                Produced::TooLarge(err) => {
                    let why = too_large(&self.settings.retry_topic, &err, &message);
                    let ok = self
                        .dead_letter(
                            msg,
                            Reason::RetryTooLarge,
                            &why,
                            attempt,
                            Some(&envelope.app),
                            Some(job_id.as_str()),
                        )
                        .await;
                    (RunState::Dead, ok)
                }
                Produced::Stopped => (RunState::Retrying, false),
            }
        } else {
            let ok = self
                .dead_letter(
                    msg,
                    failed.reason(),
                    &message,
                    attempt,
                    Some(&envelope.app),
                    Some(job_id.as_str()),
                )
                .await;
            (RunState::Dead, ok)
        };
        durable
            && self
                .store_call(|| {
                    self.store
                        .finish_run(run, state, took, Some(&message), &detail)
                })
                .await
                .is_some()
    }

    /// Produces the retry record of `msg` asking for `attempt` at `retry_at`, and waits for
    /// the ack.
    async fn schedule_retry(
        &self,
        msg: &OwnedMessage,
        job_id: &JobId,
        attempt: u32,
        retry_at: DateTime<Utc>,
        last_error: &str,
    ) -> Produced {
        let mut record = records::retry(
            msg,
            &Retry {
                job_id: job_id.as_str(),
                next_attempt: attempt,
                retry_at_ms: retry_at.timestamp_millis(),
                last_error,
            },
        );
        attempt_context(&mut record);
        self.produce(&self.settings.retry_topic, &record).await
    }

    /// Hands a job of an app whose circuit is open to the retry topic without running it:
    /// the same attempt, due when the breaker may close (`retry_in`) plus a jitter of up to
    /// 10 % of `open_for` (at most [`CIRCUIT_JITTER_MAX`]). No run state is written: the
    /// attempt stays open for the retry.
    async fn circuit_open(
        &self,
        msg: &OwnedMessage,
        envelope: &Envelope,
        job_id: &JobId,
        attempt: u32,
        breaker: Option<&Breaker>,
        retry_in: Duration,
    ) -> bool {
        let spread = breaker
            .map_or(Duration::ZERO, |b| b.settings().open_for / 10)
            .min(CIRCUIT_JITTER_MAX);
        let jitter = spread.mul_f64(unit(&envelope.fire_id, attempt));
        let retry_at = Utc::now() + retry_in + jitter;
        let handed = self
            .hand_on_unrun(msg, envelope, job_id, attempt, retry_at, CIRCUIT_OPEN)
            .await;
        if handed == Some(true) {
            self.metrics
                .circuit_rejections
                .get_or_create(&Metrics::app(&envelope.app))
                .inc();
            debug!(sked.job.id = %job_id, sked.fire.id = %envelope.fire_id, attempt, retry_in_ms = (retry_in + jitter).as_millis() as u64, "circuit open, job handed to the retry topic unrun");
        }
        handed.is_some()
    }

    /// Hands a job that did not run (open circuit, global limit) to the retry topic with the
    /// same attempt, due at `retry_at`. `Some(true)`: handed on; `Some(false)`: too large to
    /// hand on, dead-lettered `retry_too_large` instead; `None`: not durable (drain deadline).
    pub(crate) async fn hand_on_unrun(
        &self,
        msg: &OwnedMessage,
        envelope: &Envelope,
        job_id: &JobId,
        attempt: u32,
        retry_at: DateTime<Utc>,
        last_error: &str,
    ) -> Option<bool> {
        match self
            .schedule_retry(msg, job_id, attempt, retry_at, last_error)
            .await
        {
            Produced::Acked => Some(true),
            Produced::TooLarge(err) => {
                let why = too_large(&self.settings.retry_topic, &err, last_error);
                self.dead_letter(
                    msg,
                    Reason::RetryTooLarge,
                    &why,
                    attempt.saturating_sub(1),
                    Some(&envelope.app),
                    Some(job_id.as_str()),
                )
                .await
                .then_some(false)
            }
            Produced::Stopped => None,
        }
    }

    /// Produces one dead letter and waits for the ack, retrying errors that may pass until the
    /// drain deadline; true when it is durable (acknowledged, or dropped by the sender because
    /// it cannot be written at any size: then the record is finished too).
    async fn dead_letter(
        &self,
        msg: &OwnedMessage,
        reason: Reason,
        message: &str,
        attempts: u32,
        app: Option<&str>,
        job_id: Option<&str>,
    ) -> bool {
        // The tenant, for the DLQ API's tenant confinement (dead letters are rare: the
        // envelope is read again rather than passed down).
        let tenant = decode(msg).ok().and_then(|e| e.tenant);
        let mut record = dlq::record(
            msg,
            &dlq::Failure {
                stage: dlq::Stage::Execute,
                reason: reason.into(),
                message,
                at: Utc::now(),
                attempts,
                app,
                job_id,
                tenant: tenant.as_deref(),
            },
        );
        attempt_context(&mut record);
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let sent = backoff::retry(&self.hard_stop, &mut backoff, || async {
            match self.dlq.send(&record).await {
                dlq::Sent::Failed(err) => {
                    warn!(messaging.destination.name = self.dlq.topic(), error = %err, "dead letter not acknowledged, retrying");
                    Err(backoff::Failure::<()>::Transient(()))
                }
                acked_or_dropped => Ok(acked_or_dropped),
            }
        })
        .await;
        match sent {
            Ok(dlq::Sent::Acked { .. }) => {}
            // Logged and counted by the sender; the record is finished.
            Ok(_) => return true,
            Err(_) => return false,
        }
        self.metrics.dead_lettered(reason);
        let reason: &'static str = reason.into();
        warn!(
            sked.job.id = job_id.unwrap_or_default(),
            reason,
            attempts,
            error = message,
            messaging.kafka.offset = msg.offset(),
            "job dead-lettered"
        );
        true
    }

    /// Produces `record` to `topic` until Kafka acknowledges it, it proves too large, or the
    /// drain deadline.
    async fn produce(&self, topic: &str, record: &Outgoing) -> Produced {
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let sent = backoff::retry(&self.hard_stop, &mut backoff, || async {
            let mut out: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).headers(record.headers.clone());
            if let Some(key) = &record.key {
                out = out.key(key.as_slice());
            }
            if let Some(payload) = &record.payload {
                out = out.payload(payload.as_slice());
            }
            match produce::produce(&self.producer, out, &self.hard_stop).await {
                Ok(()) => Ok(()),
                // The drain deadline: `retry` sees it and stops.
                Err(produce::Error::Stopped) => Err(backoff::Failure::Transient(KafkaError::Canceled)),
                Err(produce::Error::Kafka(err)) => {
                    self.metrics.produce_errors.inc();
                    if size::is_size_error(&err) {
                        warn!(messaging.destination.name = topic, error = %err, "record too large to produce");
                        return Err(backoff::Failure::Permanent(err));
                    }
                    warn!(messaging.destination.name = topic, error = %err, "produce failed, retrying");
                    Err(backoff::Failure::Transient(err))
                }
            }
        })
        .await;
        match sent {
            Ok(()) => Produced::Acked,
            Err(backoff::Stop::Permanent(err)) => Produced::TooLarge(err),
            Err(backoff::Stop::Cancelled) => Produced::Stopped,
        }
    }

    /// Runs a store call until it succeeds, or the drain deadline.
    pub(crate) async fn store_call<T, F, Fut>(&self, mut call: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, store::Error>>,
    {
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let value = backoff::retry(&self.hard_stop, &mut backoff, || {
            let call = call();
            async move {
                call.await.map_err(|err| {
                    self.metrics.store_errors.inc();
                    if err.is_transient() {
                        self.readiness.set("redis", false);
                    }
                    warn!(error = %err, "run state write failed, retrying");
                    backoff::Failure::<()>::Transient(())
                })
            }
        })
        .await
        .ok()?;
        self.readiness.set("redis", true);
        Some(value)
    }
}

/// The `error-message` of a fire dead-lettered because its retry record is too large.
fn too_large(retry_topic: &str, err: &KafkaError, last_error: &str) -> String {
    format!(
        "retry record too large for {retry_topic} ({err}); dead-lettered instead of retried; last error: {last_error}"
    )
}

/// Points the record's `traceparent` at the current attempt span, when it is exported: the
/// retry's fire and a replay continue the trace from this attempt.
fn attempt_context(record: &mut Outgoing) {
    if let Some(tp) = trace::traceparent(&Span::current()) {
        record.headers = trace::replace_header(&record.headers, &tp);
    }
}

fn decode(msg: &OwnedMessage) -> Result<Envelope, String> {
    let payload = msg.payload().ok_or("empty record value")?;
    serde_json::from_slice(payload).map_err(|e| format!("not a job envelope: {e}"))
}

/// The attempt of a record: its `sked-attempt` header, else the envelope's, at least 1.
fn attempt_of(msg: &OwnedMessage, envelope: Option<&Envelope>) -> u32 {
    records::header(msg, h::SKED_ATTEMPT)
        .and_then(|v| v.trim().parse().ok())
        .or(envelope.map(|e| e.attempt))
        .unwrap_or(1)
        .max(1)
}

/// A number in `[0, 1)` for the backoff jitter, different per fire, attempt and instant.
pub(crate) fn unit(fire_id: &str, attempt: u32) -> f64 {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let seed = format!("{fire_id}|{attempt}|{nanos}");
    (xxhash_rust::xxh3::xxh3_64(seed.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_retry_or_dead_letter() {
        let transient = Failed::Handler(HandlerError::transient("503"));
        let permanent = Failed::Handler(HandlerError::permanent("400"));
        let timeout = Failed::Timeout(Duration::from_secs(1));
        assert!(transient.retryable());
        assert!(timeout.retryable());
        assert!(!permanent.retryable());
        assert!(!Failed::NoHandler.retryable());
        assert_eq!(transient.reason(), Reason::HandlerFailed);
        assert_eq!(permanent.reason(), Reason::PermanentError);
        assert_eq!(timeout.reason(), Reason::Timeout);
        assert_eq!(Failed::NoHandler.reason(), Reason::NoHandler);
    }

    #[test]
    fn jitter_unit_stays_in_its_range() {
        for a in 0..1000 {
            let u = unit("job@1", a);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
