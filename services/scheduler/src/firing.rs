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

use std::{
    collections::BTreeMap,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, future::join_all, stream::FuturesUnordered};
use rdkafka::{
    error::KafkaError,
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use sked_core::{
    backoff::Backoff,
    envelope::{Envelope, Format},
    job::Shard,
    kafka::{headers as h, produce},
    readiness::Readiness,
    store::{
        Ack, AckOutcome, ClaimBatch, Claimed, Index, Store,
        calendars::CalendarCache,
        describe::{FireOrigin, SlotOutcome, history_entry, slot_entry},
    },
    trace,
};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span, debug, error, info_span, warn};

use crate::{
    metrics::{Metrics, ShardLabel, SlotLabel},
    plan::{self, Input, NotFired},
};

/// Where and how an app's fires are produced.
#[derive(Debug, Clone)]
pub struct Route {
    /// Topic.
    pub topic: String,
    /// Value format.
    pub format: Format,
}

/// Most acks in one store call.
const ACK_CHUNK: usize = 2_000;

/// Acks gather until this many jobs are ready, their fires are all in, or the first of them
/// has waited [`ACK_LINGER`]: fewer, larger store calls, and a kill -9 re-fires at most what
/// was acknowledged by Kafka within the last linger (plus the ack in flight).
const ACK_MIN: usize = 500;

/// See [`ACK_MIN`].
const ACK_LINGER: Duration = Duration::from_millis(10);

/// A claim whose fires have not progressed (no send completed) for this many leases is not
/// renewed any more: its scheduler may be cut off from Kafka, and another one takes it over.
const PROGRESS_LEASES: u32 = 5;

/// Smallest adaptive claim.
const MIN_CLAIM: usize = 32;

/// What one claim produced, and how long its fires took.
#[derive(Debug, Default)]
pub(crate) struct Produced {
    fires: u64,
    seconds: f64,
}

/// A store call of [`Firing::settle`] that completed.
enum Done {
    Renewed {
        until: i64,
        lost: Result<Vec<usize>, sked_core::store::Error>,
    },
    Released(Result<(), sked_core::store::Error>),
    Acked {
        chunk: Vec<(Option<usize>, Ack)>,
        result: Result<Vec<AckOutcome>, sked_core::store::Error>,
    },
}

/// The next claim size of a shard: what this shard produced per second, times a quarter of
/// the lease (so a claim is out well within its lease even unrenewed), moved halfway from
/// the present size, within [`MIN_CLAIM`] and `scheduler.claim_batch`. A claim produced too
/// fast to time (a few ms) says only that the broker keeps up: up to the maximum.
fn claim_size(current: usize, produced: &Produced, lease: Duration, max: usize) -> usize {
    let max = max.max(1);
    if produced.fires < MIN_CLAIM as u64 {
        return current.clamp(1, max);
    }
    let target = if produced.seconds < 0.005 {
        max as f64
    } else {
        produced.fires as f64 / produced.seconds * lease.as_secs_f64() / 4.0
    };
    let next = (current as f64 + target) / 2.0;
    (next as usize).clamp(MIN_CLAIM.min(max), max)
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
    /// The present claim size of each owned shard (same order as `shards`), see
    /// [`claim_size`].
    pub(crate) claim_limits: Vec<AtomicUsize>,
    /// The drain deadline: cancelled `scheduler.drain_timeout` after shutdown began. A round
    /// still waiting for Kafka then is abandoned; its leases end within `scheduler.lease`
    /// and any scheduler fires those jobs (same fire ids).
    pub(crate) hard_stop: CancellationToken,
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
                    if !backoff.sleep(&cancel).await {
                        break;
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

    /// How long until the owned shards have work (a due score or the end of a lease, whose
    /// job the next claim takes back), capped by the poll interval.
    async fn until_next_due(&self) -> Result<Duration, sked_core::store::Error> {
        let Some(earliest) = self.store.next_work(&self.shards).await? else {
            return Ok(self.settings.poll_interval);
        };
        let now = Utc::now().timestamp_millis();
        // A lease ends after its deadline: the claim takes scores `<= now`.
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
        let slot = self.shards.iter().position(|s| *s == shard);
        let limit = slot
            .and_then(|i| self.claim_limits.get(i))
            .map_or(self.settings.claim_batch, |l| l.load(Ordering::Relaxed));
        let batch = self
            .store
            .claim(shard, now_ms, limit, self.settings.lease)
            .await?;
        self.readiness.set("redis", true);
        let full = batch.jobs.len() >= limit;
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
            let produced = self.fire(shard, batch).await?;
            if let Some(l) = slot.and_then(|i| self.claim_limits.get(i)) {
                let next = claim_size(
                    l.load(Ordering::Relaxed),
                    &produced,
                    self.settings.lease,
                    self.settings.claim_batch,
                );
                l.store(next, Ordering::Relaxed);
            }
        }
        Ok(full)
    }

    async fn fire(
        &self,
        shard: Shard,
        batch: ClaimBatch,
    ) -> Result<Produced, sked_core::store::Error> {
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
                slots: if recurring {
                    plan.not_fired
                        .iter()
                        .map(|&(due, why)| {
                            let outcome = match why {
                                NotFired::Skipped => SlotOutcome::Skipped,
                                NotFired::Excluded => SlotOutcome::Excluded,
                            };
                            slot_entry(due, fired_ms, outcome)
                        })
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
                slots: Vec::new(),
            }));
        }

        self.hold_unopened(shard, &batch, fired_at).await;
        self.settle(shard, &batch, acks, sends, fired_at).await
    }

    /// Waits for the claim's fires and acks each job soon after all its fires are
    /// acknowledged by Kafka, in batches ([`ACK_MIN`], [`ACK_LINGER`]; one store call at a
    /// time), so a kill -9 mid-claim re-fires only what was produced since the last ack. Meanwhile the claim's leases are renewed
    /// every quarter lease, while its fires make progress (a send completed within the last
    /// [`PROGRESS_LEASES`] leases) or only acks are left: a replica that can reach Redis but
    /// not Kafka lets its claims expire, so that another one fires them. A job whose fire Kafka refused is
    /// released (its lease set to a second from now), so any scheduler fires it again soon
    /// under the same fire id. Store calls are one at a time, so an ack always names the
    /// lease that the last renewal set.
    async fn settle<F>(
        &self,
        shard: Shard,
        batch: &ClaimBatch,
        acks: Vec<Option<Ack>>,
        sends: Vec<(usize, DateTime<Utc>, F)>,
        fired_at: DateTime<Utc>,
    ) -> Result<Produced, sked_core::store::Error>
    where
        F: std::future::Future<Output = Result<(), KafkaError>>,
    {
        let jobs = batch.jobs.len();
        let lease = self.settings.lease;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let renew_every = lease / 4;
        let mut left = vec![0usize; jobs];
        for (index, _, _) in &sends {
            left[*index] += 1;
        }
        let mut acks: Vec<Option<Ack>> = acks;
        // (job index, ack): jobs with nothing to produce, and unreadable records, at once.
        let mut ready: Vec<(Option<usize>, Ack)> = Vec::new();
        for (index, slot) in acks.iter_mut().enumerate() {
            if (index >= jobs || left[index] == 0)
                && let Some(ack) = slot.take()
            {
                ready.push(((index < jobs).then_some(index), ack));
            }
        }
        let mut pending: FuturesUnordered<_> = sends
            .into_iter()
            .map(|(index, due, send)| async move { (index, due, send.await) })
            .collect();
        let started = Instant::now();
        let mut produced = Produced::default();
        let mut failed = vec![false; jobs];
        let mut held = vec![true; jobs];
        let mut release: Vec<usize> = Vec::new();
        let mut lease_until = batch.lease_until;
        let mut last_progress = Instant::now();
        let mut next_renew = Instant::now() + renew_every;
        let mut retry_at: Option<Instant> = None;
        let mut ack_delay = Duration::from_millis(20);
        let mut crash_armed = true;
        // Since when jobs wait in `ready` (acks gather for up to ACK_LINGER or ACK_MIN jobs).
        let mut ready_since: Option<Instant> = (!ready.is_empty()).then(Instant::now);
        let mut op: Option<Pin<Box<dyn std::future::Future<Output = Done> + Send + '_>>> = None;
        loop {
            let now = Instant::now();
            let renew_wanted = (pending.is_empty()
                || now - last_progress < lease * PROGRESS_LEASES)
                && held.iter().any(|h| *h);
            if op.is_none() && retry_at.is_none_or(|t| t <= now) {
                retry_at = None;
                if now >= next_renew && renew_wanted {
                    let members: Vec<(usize, String, String)> = (0..jobs)
                        .filter(|&i| held[i])
                        .map(|i| {
                            let job = &batch.jobs[i];
                            (i, job.score_raw.clone(), job.spec.id.to_string())
                        })
                        .collect();
                    let until = Utc::now().timestamp_millis().saturating_add(lease_ms);
                    let from = lease_until;
                    op = Some(Box::pin(async move {
                        let claims: Vec<(&str, &str)> = members
                            .iter()
                            .map(|(_, s, id)| (s.as_str(), id.as_str()))
                            .collect();
                        let result = self.store.renew(shard, &claims, from, until).await;
                        let lost = result.map(|lost| {
                            lost.into_iter()
                                .filter_map(|p| members.get(p).map(|m| m.0))
                                .collect()
                        });
                        Done::Renewed { until, lost }
                    }));
                } else if !release.is_empty() {
                    let indexes = std::mem::take(&mut release);
                    let members: Vec<(String, String)> = indexes
                        .iter()
                        .map(|&i| {
                            let job = &batch.jobs[i];
                            (job.score_raw.clone(), job.spec.id.to_string())
                        })
                        .collect();
                    let (from, until) = (lease_until, Utc::now().timestamp_millis() + 1_000);
                    op = Some(Box::pin(async move {
                        let claims: Vec<(&str, &str)> = members
                            .iter()
                            .map(|(s, id)| (s.as_str(), id.as_str()))
                            .collect();
                        Done::Released(
                            self.store
                                .renew(shard, &claims, from, until)
                                .await
                                .map(|_| ()),
                        )
                    }));
                } else if !ready.is_empty()
                    && (ready.len() >= ACK_MIN
                        || pending.is_empty()
                        || ready_since.is_some_and(|t| now >= t + ACK_LINGER))
                {
                    ready_since = None;
                    if crash_armed && produced.fires > 0 {
                        // Tests: fires are out and nothing is acknowledged yet.
                        sked_core::runtime::crash_point("scheduler.before_ack");
                        crash_armed = false;
                    }
                    let take = ready.len().min(ACK_CHUNK);
                    let mut chunk: Vec<(Option<usize>, Ack)> = ready.drain(..take).collect();
                    if !ready.is_empty() {
                        // Past ACK_CHUNK: the rest goes next, without waiting for more.
                        ready_since = Some(now.checked_sub(ACK_LINGER).unwrap_or(now));
                    }
                    for (_, ack) in &mut chunk {
                        ack.lease_until = lease_until;
                    }
                    op = Some(Box::pin(async move {
                        let list: Vec<Ack> = chunk.iter().map(|(_, a)| a.clone()).collect();
                        let result = self.store.ack(shard, &list).await;
                        Done::Acked { chunk, result }
                    }));
                }
            }
            if op.is_none() && pending.is_empty() && ready.is_empty() && release.is_empty() {
                break;
            }
            // Nothing to renew: only a send or the store call in flight wakes the loop.
            let far = now + Duration::from_secs(3600);
            let mut wake = retry_at.unwrap_or(if renew_wanted { next_renew } else { far });
            if let Some(t) = ready_since.filter(|_| retry_at.is_none()) {
                wake = wake.min(t + ACK_LINGER);
            }
            tokio::select! {
                Some((index, due, result)) = pending.next(), if !pending.is_empty() => {
                    last_progress = Instant::now();
                    match result {
                        Ok(()) => {
                            produced.fires += 1;
                            let late = (fired_at - due).num_microseconds().unwrap_or(0).max(0);
                            self.metrics.lateness.observe(late as f64 / 1e6);
                            self.metrics.recent.observe(late as u64);
                            self.metrics.fired.inc();
                        }
                        Err(err) => {
                            self.metrics.produce_errors.inc();
                            warn!(error = %err, "fire not acknowledged by kafka; released, it fires again in a second (same fire id)");
                            if !failed[index] {
                                failed[index] = true;
                                acks[index] = None;
                            }
                        }
                    }
                    left[index] -= 1;
                    if left[index] == 0 {
                        if failed[index] {
                            held[index] = false;
                            release.push(index);
                        } else if let Some(ack) = acks[index].take() {
                            ready.push((Some(index), ack));
                            ready_since.get_or_insert_with(Instant::now);
                        }
                    }
                }
                done = async { op.as_mut().expect("guarded").await }, if op.is_some() => {
                    op = None;
                    match done {
                        Done::Renewed { until, lost: Ok(lost) } => {
                            self.metrics.renewals.inc();
                            lease_until = until;
                            next_renew = Instant::now() + renew_every;
                            if !lost.is_empty() {
                                self.metrics.leases_lost.inc_by(lost.len() as u64);
                                warn!(shard = shard.index(), lost = lost.len(), "leases expired before their renewal; another claim has those jobs (their fires may go out twice, same fire id)");
                                for i in lost {
                                    held[i] = false;
                                }
                            }
                        }
                        Done::Renewed { lost: Err(err), .. } => {
                            self.metrics.store_errors.inc();
                            debug!(shard = shard.index(), error = %err, "lease renewal failed, retrying");
                            next_renew = Instant::now() + Duration::from_millis(100);
                        }
                        Done::Released(Ok(())) => {}
                        Done::Released(Err(err)) => {
                            self.metrics.store_errors.inc();
                            warn!(shard = shard.index(), error = %err, "cannot release the claims of failed fires; they fire again when their lease ends");
                        }
                        Done::Acked { chunk, result: Ok(outcomes) } => {
                            ack_delay = Duration::from_millis(20);
                            for (index, _) in &chunk {
                                if let Some(i) = index {
                                    held[*i] = false;
                                }
                            }
                            let stale = outcomes.iter().filter(|o| **o == AckOutcome::Stale).count();
                            if stale > 0 {
                                self.metrics.stale_acks.inc_by(stale as u64);
                                debug!(shard = shard.index(), stale, "acks found jobs updated or reclaimed meanwhile");
                            }
                        }
                        Done::Acked { chunk, result: Err(err) } => {
                            // Transient (a Redis blip, a migrating cluster slot): again, with the
                            // leases renewed meanwhile, until the claim has surely expired.
                            let expired = Utc::now().timestamp_millis() > lease_until.saturating_add(lease_ms);
                            if !err.is_transient() || expired {
                                return Err(err);
                            }
                            self.metrics.store_errors.inc();
                            debug!(shard = shard.index(), error = %err, "ack failed, retrying");
                            ready.splice(0..0, chunk);
                            ready_since.get_or_insert_with(Instant::now);
                            retry_at = Some(Instant::now() + ack_delay);
                            ack_delay = (ack_delay * 2).min(Duration::from_millis(500));
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake), if op.is_none() => {}
                _ = self.hard_stop.cancelled() => {
                    let unsettled = held.iter().filter(|h| **h).count();
                    warn!(shard = shard.index(), unsettled, "drain deadline (scheduler.drain_timeout) passed with fires in flight; abandoned, any scheduler fires them after their lease (same fire ids)");
                    break;
                }
            }
        }
        produced.seconds = started.elapsed().as_secs_f64();
        Ok(produced)
    }

    /// The instant a claimed job is planned at, and whether its claimed slot must fire again.
    ///
    /// A job is planned at the instant of its claim, so that the claim can be replayed: after
    /// a lease expired, the claim that had it may have produced every fire of its plan (several
    /// slots of a recurring job) and died before the ack. The store keeps the instant of the
    /// first claim of a recurring job that was not acked ([`Claimed::replay_at`]); the plan is
    /// made again at that instant, which produces the same fires under the same fire ids and
    /// counts them for `max_runs`; its `next` may have passed already, and the job is claimed
    /// again at once for what is due since. Without it (a one-shot), the claimed slot fires
    /// again at the present claim.
    fn planned_at(&self, batch: &ClaimBatch, job: &Claimed) -> (DateTime<Utc>, bool) {
        let claimed_at =
            DateTime::<Utc>::from_timestamp_millis(batch.claimed_at).unwrap_or_else(Utc::now);
        let Some(then) = job.replay_at.filter(|_| job.refire) else {
            return (claimed_at, job.refire);
        };
        // Never before the claimed score (that claim took it as due) nor after this claim.
        let then = then.clamp(job.score, batch.claimed_at.max(job.score));
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

    fn send(
        &self,
        route: &Route,
        envelope: &Envelope,
        value: Vec<u8>,
        span: &Span,
    ) -> impl std::future::Future<Output = Result<(), KafkaError>> + Send + use<> {
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
        let producer = self.producer.clone();
        let hard_stop = self.hard_stop.clone();
        let topic = route.topic.clone();
        let key = envelope.job_id.to_string();
        async move {
            // Tests: a slow broker.
            sked_core::runtime::slow_point("scheduler.produce").await;
            let record = FutureRecord::to(&topic)
                .key(key.as_str())
                .payload(&value)
                .headers(headers);
            // A full producer queue is back-pressure: `produce` waits for room (librdkafka
            // drains it at the broker's pace) until the drain deadline, never failing the fire.
            produce::produce(&producer, record, &hard_stop)
                .await
                .map_err(produce::Error::into_kafka)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn produced(fires: u64, seconds: f64) -> Produced {
        Produced { fires, seconds }
    }

    #[test]
    fn a_claim_is_sized_to_a_quarter_lease_of_what_its_shard_produced() {
        let lease = Duration::from_secs(2);
        // 400 fires in 1 s: 200 fit in a quarter of a 2 s lease; halfway from 1000.
        assert_eq!(claim_size(1000, &produced(400, 1.0), lease, 1000), 600);
        assert_eq!(claim_size(600, &produced(400, 1.0), lease, 1000), 400);
        // A fast broker: up to the configured batch, never past it.
        assert_eq!(claim_size(100, &produced(1000, 0.001), lease, 1000), 550);
        assert_eq!(claim_size(1000, &produced(50_000, 0.1), lease, 1000), 1000);
        // A stalled one: down to the floor, not to zero.
        assert_eq!(claim_size(40, &produced(40, 60.0), lease, 1000), MIN_CLAIM);
        // Too few fires to judge: unchanged.
        assert_eq!(claim_size(700, &produced(3, 9.0), lease, 1000), 700);
        // A configured batch below the floor wins.
        assert_eq!(claim_size(10, &produced(500, 0.001), lease, 10), 10);
    }
}
