//! The firing loop: due index → Kafka, on time and once.
//!
//! Each loop owns a share of the shards (`shard % loops == i`) and repeats:
//! 1. **claim**, for every owned shard at once: one Lua call returns expired leases to the due
//!    index, then moves up to `scheduler.claim_batch` jobs due at or before now into the
//!    in-flight set with a lease, and returns their records;
//! 2. **plan** each job: which fires to produce (misfire policy, `max_runs`) and its next due
//!    score ([`crate::plan`]);
//! 3. **produce** every fire with the idempotent producer (`acks=all`) and wait for Kafka;
//! 4. **ack** the jobs whose fires were all acknowledged: one Lua call per shard removes the
//!    lease and inserts the next fire of recurring jobs. A job whose produce failed is not
//!    acked: its lease expires and any scheduler fires it again, under the same fire id;
//! 5. if a claim came back full, go again at once (a herd drains at full speed); otherwise
//!    sleep until the earliest due score of the owned shards, a wake-up from ingest (an
//!    earlier job arrived), or `scheduler.poll_interval`, whichever is first.
//!
//! Never early: a claim takes only scores `<= now` (ms), and scores are due instants rounded
//! up. On cancel the loop finishes its round (fires produced and acked) and returns.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use sked_core::{
    admin::Readiness,
    envelope::{Envelope, Format},
    job::Shard,
    kafka::headers as h,
    runtime::Backoff,
    store::{
        Ack, AckOutcome, ClaimBatch, Claimed, Index, Store,
        calendars::CalendarCache,
        describe::{FireOrigin, history_entry},
    },
    trace,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span, debug, error, info_span, warn};

use crate::{
    metrics::{Metrics, ShardLabel, SlotLabel},
    plan::{self, Input},
};

/// Where and how an app's fires are produced.
#[derive(Debug, Clone)]
pub struct Route {
    /// Topic.
    pub topic: String,
    /// Value format.
    pub format: Format,
}

/// What the loops share.
#[derive(Debug)]
pub struct Settings {
    /// Most jobs per claim.
    pub claim_batch: usize,
    /// Lease of a claim.
    pub lease: Duration,
    /// Longest sleep.
    pub poll_interval: Duration,
    /// Misfire threshold.
    pub misfire_threshold: Duration,
    /// How much later a job whose payload does not open (unknown key) is due again.
    pub unknown_key_hold: Duration,
    /// Default route.
    pub default_route: Route,
    /// Per-app routes.
    pub routes: BTreeMap<String, Route>,
}

impl Settings {
    fn route(&self, app: &str) -> &Route {
        self.routes.get(app).unwrap_or(&self.default_route)
    }
}

/// One firing loop.
pub struct Firing {
    pub(crate) store: Store,
    pub(crate) producer: FutureProducer,
    pub(crate) shards: Vec<Shard>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) metrics: Metrics,
    pub(crate) wake: watch::Receiver<i64>,
    pub(crate) readiness: Readiness,
    /// Exclusion calendars (config and stored), reloaded as `store::calendars` says.
    pub(crate) calendars: CalendarCache,
}

impl Firing {
    /// Runs until `cancel` (see the module docs).
    pub async fn run(mut self, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut backoff = Backoff::new(Duration::from_secs(5));
        while !cancel.is_cancelled() {
            let full = match self.round().await {
                Ok(full) => {
                    backoff.reset();
                    full
                }
                Err(err) => {
                    self.metrics.store_errors.inc();
                    self.readiness.set("redis", false);
                    warn!(error = %err, "firing round failed, backing off");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                    continue;
                }
            };
            if full {
                continue;
            }
            let wait = match self.until_next_due().await {
                Ok(wait) => wait,
                Err(err) => {
                    warn!(error = %err, "cannot read the due index");
                    self.settings.poll_interval
                }
            };
            if wait.is_zero() {
                continue;
            }
            self.wake.mark_unchanged();
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.changed() => {}
            }
        }
        Ok(())
    }

    /// How long until the earliest due score of the owned shards, capped by the poll interval.
    async fn until_next_due(&self) -> Result<Duration, sked_core::store::Error> {
        let earliest = self
            .store
            .earliest(&self.shards)
            .await?
            .into_iter()
            .flatten()
            .min();
        let Some(earliest) = earliest else {
            return Ok(self.settings.poll_interval);
        };
        let now = Utc::now().timestamp_millis();
        let ms = u64::try_from(earliest.saturating_sub(now)).unwrap_or(0);
        Ok(Duration::from_millis(ms).min(self.settings.poll_interval))
    }

    /// Claims, fires and acks every owned shard once. True when a claim came back full.
    async fn round(&self) -> Result<bool, sked_core::store::Error> {
        let now_ms = Utc::now().timestamp_millis();
        let results = join_all(
            self.shards
                .iter()
                .map(|&shard| self.shard_round(shard, now_ms)),
        )
        .await;
        let mut full = false;
        for r in results {
            full |= r?;
        }
        Ok(full)
    }

    async fn shard_round(
        &self,
        shard: Shard,
        now_ms: i64,
    ) -> Result<bool, sked_core::store::Error> {
        let batch = self
            .store
            .claim(
                shard,
                now_ms,
                self.settings.claim_batch,
                self.settings.lease,
            )
            .await?;
        self.readiness.set("redis", true);
        let full = batch.jobs.len() >= self.settings.claim_batch;
        if batch.held > 0 {
            self.metrics.held.inc_by(batch.held);
            debug!(
                shard = shard.index(),
                held = batch.held,
                "due jobs of paused apps or tenants held back"
            );
        }
        if batch.reclaimed > 0 {
            self.metrics.reclaimed.inc_by(batch.reclaimed);
            warn!(
                shard = shard.index(),
                reclaimed = batch.reclaimed,
                "expired leases returned to the due index"
            );
        }
        if !batch.jobs.is_empty() || !batch.corrupt.is_empty() || !batch.unknown_key.is_empty() {
            self.fire(shard, batch).await?;
        }
        Ok(full)
    }

    async fn fire(&self, shard: Shard, batch: ClaimBatch) -> Result<(), sked_core::store::Error> {
        self.metrics.claimed.inc_by(batch.jobs.len() as u64);
        let fired_at = Utc::now();
        let mut acks = Vec::with_capacity(batch.jobs.len() + batch.corrupt.len());
        let mut sends = Vec::new();
        let names: Vec<&String> = batch
            .jobs
            .iter()
            .filter(|j| j.spec.schedule.is_recurring())
            .flat_map(|j| &j.spec.calendars)
            .collect();
        let calendars = if names.is_empty() {
            None
        } else {
            // A store failure keeps the calendars loaded last (their names are checked at
            // ingest; a calendar is only missing here when deleted).
            Some(match self.calendars.for_names(names).await {
                Ok(known) => known,
                Err(err) => {
                    warn!(error = %err, "cannot reload calendars; using the ones loaded last");
                    self.calendars.current()
                }
            })
        };
        for (index, job) in batch.jobs.iter().enumerate() {
            let attached = match &calendars {
                Some(known) if job.spec.schedule.is_recurring() => {
                    let attached = known.resolve(&job.spec.calendars);
                    if attached.len() < job.spec.calendars.len() {
                        self.metrics.calendar_missing.inc();
                        warn!(sked.job.id = %job.spec.id, calendars = ?job.spec.calendars, "a calendar the job attaches does not exist; it excludes nothing");
                    }
                    attached
                }
                _ => Vec::new(),
            };
            let (now, refire) = self.planned_at(&batch, job);
            let plan = plan::plan(&Input {
                schedule: &job.spec.schedule,
                job_id: job.spec.id.as_str(),
                first_due: job.spec.first_due,
                claimed_score: job.score,
                runs_so_far: job.runs,
                now,
                misfire_threshold: self.settings.misfire_threshold,
                refire,
                calendars: &attached,
            });
            if plan.missed > 0 {
                self.metrics
                    .slots
                    .get_or_create(&SlotLabel { slot: "missed" })
                    .inc_by(plan.missed);
            }
            if plan.skipped > 0 {
                self.metrics
                    .slots
                    .get_or_create(&SlotLabel { slot: "skipped" })
                    .inc_by(plan.skipped);
            }
            if plan.excluded > 0 {
                self.metrics
                    .slots
                    .get_or_create(&SlotLabel { slot: "excluded" })
                    .inc_by(plan.excluded);
            }
            let route = self.settings.route(&job.spec.app);
            for &due_ms in &plan.fires {
                let Some(due) = DateTime::<Utc>::from_timestamp_millis(due_ms) else {
                    continue;
                };
                if fired_at < due {
                    self.metrics.early.inc();
                    error!(sked.job.id = %job.spec.id, "fire produced before its due time (clock stepped back?)");
                }
                let envelope = Envelope::new(&job.spec, due, fired_at);
                let value = match envelope.to_bytes(route.format, &job.spec) {
                    Ok(v) => v,
                    Err(err) => {
                        error!(sked.job.id = %job.spec.id, error = %err, "cannot encode envelope");
                        continue;
                    }
                };
                let span = info_span!(
                    "fire",
                    otel.name = %format!("{} publish", route.topic),
                    otel.kind = "producer",
                    messaging.system = "kafka",
                    messaging.destination.name = %route.topic,
                    messaging.operation.type = "publish",
                    messaging.kafka.message.key = %envelope.job_id,
                    sked.job.id = %envelope.job_id,
                    sked.fire.id = %envelope.fire_id,
                    sked.attempt = envelope.attempt,
                );
                if job.spec.schedule.is_recurring() {
                    // A trace per fire, linked to the submission (see sked_core::trace).
                    trace::add_link(&span, job.spec.traceparent.as_deref());
                } else {
                    trace::set_parent(&span, job.spec.traceparent.as_deref());
                }
                let send = self.send(route, &envelope, value, &span);
                sends.push((index, due, send.instrument(span)));
            }
            let recurring = job.spec.schedule.is_recurring();
            let fired_ms = fired_at.timestamp_millis();
            acks.push(Some(Ack {
                id: job.spec.id.to_string(),
                score_raw: job.score_raw.clone(),
                lease_until: batch.lease_until,
                fired: plan.fires.len() as u64,
                next: plan.next,
                recurring,
                indexes: Index::of(&job.spec),
                missed: plan.missed,
                skipped: plan.skipped,
                excluded: plan.excluded,
                history: if recurring {
                    plan.fires
                        .iter()
                        .map(|&due| history_entry(due, fired_ms, FireOrigin::Schedule))
                        .collect()
                } else {
                    Vec::new()
                },
            }));
        }
        for (id, score_raw, why) in &batch.corrupt {
            self.metrics.corrupt.inc();
            error!(sked.job.id = %id, error = %why, "unreadable job record dropped");
            acks.push(Some(Ack {
                id: id.clone(),
                score_raw: score_raw.clone(),
                lease_until: batch.lease_until,
                fired: 0,
                next: None,
                recurring: false,
                indexes: Vec::new(),
                missed: 0,
                skipped: 0,
                excluded: 0,
                history: Vec::new(),
            }));
        }

        let (meta, futures): (Vec<_>, Vec<_>) =
            sends.into_iter().map(|(i, due, f)| ((i, due), f)).unzip();
        let results = join_all(futures).await;
        let mut fired = 0;
        for ((index, due), result) in meta.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    fired += 1;
                    let late = (fired_at - due).num_microseconds().unwrap_or(0).max(0);
                    self.metrics.lateness.observe(late as f64 / 1e6);
                }
                Err(err) => {
                    self.metrics.produce_errors.inc();
                    warn!(error = %err, "fire not acknowledged by kafka; its lease will expire and it fires again");
                    acks[index] = None;
                }
            }
        }
        self.metrics.fired.inc_by(fired);
        if fired > 0 {
            // Tests: the fires are out and nothing is acknowledged yet.
            sked_core::runtime::crash_point("scheduler.before_ack");
        }
        self.hold_unopened(shard, &batch, fired_at).await;
        let acks: Vec<Ack> = acks.into_iter().flatten().collect();
        let outcomes = self.ack(shard, &acks, batch.lease_until).await?;
        let stale = outcomes.iter().filter(|o| **o == AckOutcome::Stale).count();
        if stale > 0 {
            self.metrics.stale_acks.inc_by(stale as u64);
            debug!(
                shard = shard.index(),
                stale, "acks found jobs updated or reclaimed meanwhile"
            );
        }
        Ok(())
    }

    /// The instant a claimed job is planned at, and whether its claimed slot must fire again.
    ///
    /// A job is planned at the instant of its claim, so that the claim can be replayed: after
    /// a lease expired, the claim that had it may have produced every fire of its plan (several
    /// slots of a recurring job) and died before the ack. When the store kept that lease's
    /// deadline, the plan is made again at the instant of that claim (`deadline - lease`; the
    /// replicas share `scheduler.lease`), which produces the same fires under the same fire ids
    /// and counts them for `max_runs`; its `next` may have passed already, and the job is
    /// claimed again at once for what is due since. Without it (a one-shot, or a lease that
    /// expired before the deadline was kept), the claimed slot fires again at the present claim.
    fn planned_at(&self, batch: &ClaimBatch, job: &Claimed) -> (DateTime<Utc>, bool) {
        let claimed_at =
            DateTime::<Utc>::from_timestamp_millis(batch.claimed_at).unwrap_or_else(Utc::now);
        let Some(deadline) = job.expired_lease.filter(|_| job.refire) else {
            return (claimed_at, job.refire);
        };
        let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX / 2);
        // Never before the claimed score (that claim took it as due) nor after this claim.
        let then = deadline
            .saturating_sub(lease)
            .clamp(job.score, batch.claimed_at.max(job.score));
        match DateTime::<Utc>::from_timestamp_millis(then) {
            Some(then) => (then, false),
            None => (claimed_at, true),
        }
    }

    /// Jobs whose payload is sealed with a key that is not configured: no fire can be built.
    /// Held, never dropped: they stay claimed, their lease pushed out to
    /// `scheduler.unknown_key_hold` from now, so the same slot (same fire id) is claimed again
    /// then, and fires once the key is configured again. Counted and logged on every hold. A
    /// failed hold is only logged: the claim's own lease runs out and the job is claimed again
    /// sooner.
    async fn hold_unopened(&self, shard: Shard, batch: &ClaimBatch, now: DateTime<Utc>) {
        if batch.unknown_key.is_empty() {
            return;
        }
        for held in &batch.unknown_key {
            self.metrics.unknown_key.inc();
            error!(
                sked.job.id = %held.spec.id,
                key_id = %held.key_id,
                hold = ?self.settings.unknown_key_hold,
                "job payload is sealed with an encryption key that is not configured; held, not fired"
            );
        }
        let until = now.timestamp_millis().saturating_add(
            i64::try_from(self.settings.unknown_key_hold.as_millis()).unwrap_or(i64::MAX / 2),
        );
        let members: Vec<(&str, &str)> = batch
            .unknown_key
            .iter()
            .map(|h| (h.score_raw.as_str(), h.spec.id.as_str()))
            .collect();
        if let Err(err) = self.store.hold(shard, &members, until).await {
            self.metrics.store_errors.inc();
            warn!(shard = shard.index(), error = %err, "cannot extend the hold of unopenable jobs; they are claimed again when their lease ends");
        }
    }

    /// Acks, retrying transient failures (a Redis blip, a migrating cluster slot) while the
    /// lease has more than a second left: the fires are out, and an ack that never lands
    /// means the lease expires and the jobs fire again (same fire ids).
    async fn ack(
        &self,
        shard: Shard,
        acks: &[Ack],
        lease_until: i64,
    ) -> Result<Vec<AckOutcome>, sked_core::store::Error> {
        let mut delay = Duration::from_millis(20);
        loop {
            match self.store.ack(shard, acks).await {
                Err(err)
                    if err.is_transient()
                        && Utc::now().timestamp_millis() + 1_000 + (delay.as_millis() as i64)
                            < lease_until =>
                {
                    self.metrics.store_errors.inc();
                    debug!(shard = shard.index(), error = %err, "ack failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    fn send(
        &self,
        route: &Route,
        envelope: &Envelope,
        value: Vec<u8>,
        span: &Span,
    ) -> impl std::future::Future<Output = Result<(), rdkafka::error::KafkaError>> + use<> {
        let due_ms = envelope.due_at.timestamp_millis().to_string();
        let fired_ms = envelope.fired_at.timestamp_millis().to_string();
        let attempt = envelope.attempt.to_string();
        // The fire span's context; derived from the fire id when no tracing is exported.
        let traceparent = trace::traceparent(span).unwrap_or_else(|| envelope.traceparent());
        let headers = OwnedHeaders::new_with_capacity(7)
            .insert(Header {
                key: h::SKED_JOB_ID,
                value: Some(envelope.job_id.as_bytes()),
            })
            .insert(Header {
                key: h::SKED_FIRE_ID,
                value: Some(envelope.fire_id.as_bytes()),
            })
            .insert(Header {
                key: h::SKED_APP,
                value: Some(envelope.app.as_bytes()),
            })
            .insert(Header {
                key: h::SKED_ATTEMPT,
                value: Some(attempt.as_bytes()),
            })
            .insert(Header {
                key: h::SKED_DUE_AT,
                value: Some(due_ms.as_bytes()),
            })
            .insert(Header {
                key: h::SKED_FIRED_AT,
                value: Some(fired_ms.as_bytes()),
            })
            .insert(Header {
                key: h::TRACEPARENT,
                value: Some(traceparent.as_bytes()),
            });
        let record = FutureRecord::to(&route.topic)
            .key(envelope.job_id.as_str())
            .payload(&value)
            .headers(headers);
        let delivery = self.producer.send_result(record).map_err(|(e, _)| e);
        async move {
            match delivery {
                Ok(f) => match f.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e),
                    Err(_) => Err(rdkafka::error::KafkaError::Canceled),
                },
                Err(e) => Err(e),
            }
        }
    }
}

/// Sets the due-backlog and in-flight gauges every few seconds.
pub async fn gauges(
    store: Store,
    metrics: Metrics,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let shards: Vec<Shard> = (0..store.keys().shards()).map(Shard).collect();
    loop {
        if let Ok(counts) = store.backlog(&shards).await {
            for (shard, (due, inflight)) in shards.iter().zip(counts) {
                let label = ShardLabel {
                    shard: shard.index(),
                };
                metrics.due_backlog.get_or_create(&label).set(due as i64);
                metrics.in_flight.get_or_create(&label).set(inflight as i64);
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
