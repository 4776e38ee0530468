//! DLQ replays: selected dead letters republished to their original topic (or an override),
//! once each, rate-limited, surviving a crash of the replayer midway.
//!
//! A replayed record has the dead letter's key and value, unchanged, and all its headers,
//! except that `sked-attempt` is set to 1 (the worker runs it afresh), `sked-replay-count` is
//! the previous count + 1, `sked-replayed-at` is now (epoch ms) and `sked-replay-id` is
//! `<replay id>:<dlq partition>:<dlq offset>`. A letter whose `sked-replay-count` reached
//! `replayer.max_replays`, or that has no `original-topic` and no override, is skipped and
//! counted.
//!
//! Protocol of one replay:
//! 1. **select** (in the request): read the DLQ to the end of every partition (the snapshot:
//!    the offset after the last record seen, per partition), filter, sort by (partition,
//!    offset), keep the first `limit`;
//! 2. **persist** (unless `dry_run`): take the replay's lease, snapshot the end offsets of
//!    every target topic, and write the replay to Redis, status `running`, before publishing
//!    anything;
//! 3. **publish**: read the DLQ snapshot again and produce the selected letters (idempotent
//!    producer, acks awaited, at most `rate` per second), recording progress;
//! 4. **finish**: status `done`; the replay's keys expire after [`KEEP_FINISHED`].
//!
//! **resume**: every replica looks for unfinished replays at start and every
//! [`SWEEP_INTERVAL`]; one whose lease expired (its replayer died) is taken over. Before
//! publishing, the new owner reads every target topic from the offsets snapshotted in step 2
//! and collects the `sked-replay-id` headers of this replay: those letters are already
//! published and are not published again. Any publishing error also ends in a resume (after a
//! backoff, in-flight sends awaited first), never in a blind retry.
//!
//! Redis keys (`P` = `redis.key_prefix`). They share the hash tag `{replays}`, so on a Redis
//! Cluster they live in one slot and one pipeline may write a replay and the active set
//! together (replays are few; one slot holds them easily):
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:{replays}:replay:<id>` | hash | `spec` (JSON [`Spec`]), `status`, `published`, `already_published`, `missing`, `resumes`, `finished_at`, `last_error` |
//! | `P:{replays}:replay:<id>:items` | string | selected letters, `partition:offset` per line |
//! | `P:{replays}:replay:<id>:lease` | string, TTL | owner token of the replayer publishing it |
//! | `P:{replays}:active` | sorted set | ids of unfinished replays, scored by creation (epoch ms) |

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use futures::{StreamExt, stream::FuturesUnordered};
use rdkafka::{
    message::{Header, Headers, Message, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sked_core::kafka::headers as h;
use sked_core::store::Connection;
use tokio::time::Instant;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::{
    letter::{self, Filter, Letter, SKED_REPLAY_ID},
    metrics::Metrics,
    scan::{self, Offsets, Scanner},
};

/// How long a replay's lease lives without renewal: a dead replayer's replay is resumed
/// elsewhere after at most this long.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often the owner renews the lease.
const RENEW: Duration = Duration::from_secs(1);
/// How often each replayer looks for unfinished replays without an owner.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// How long a finished replay stays readable.
pub const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most sends awaiting their ack at once.
const MAX_IN_FLIGHT: usize = 1000;
/// How often progress is written to Redis while publishing.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

const RENEW_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// A replay failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not valid.
    #[error("{0}")]
    Invalid(String),
    /// No such replay.
    #[error("replay {0} not found")]
    NotFound(String),
    /// Reading Kafka failed.
    #[error(transparent)]
    Scan(#[from] scan::Error),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Publishing failed; the replay resumes.
    #[error("publish to {topic} failed: {error}")]
    Publish {
        /// Target topic.
        topic: String,
        /// Why.
        error: rdkafka::error::KafkaError,
    },
    /// A stored replay cannot be read.
    #[error("replay {id} is corrupt: {reason}")]
    Corrupt {
        /// The replay.
        id: String,
        /// Why.
        reason: String,
    },
    /// The lease was lost or the service is stopping; the replay resumes later.
    #[error("replay interrupted")]
    Interrupted,
}

/// `POST /v1/dlq/replays` body: the list filters plus what the replay does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// See [`Filter`].
    #[serde(default)]
    pub app: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub reason: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub stage: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub error: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub since: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub until: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub job_id: Option<String>,
    /// Replay at most this many letters: the first ones in DLQ order (partition, offset).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Select and count only; publish nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Records per second; 0 = unlimited; default `replayer.replay_rate`.
    #[serde(default)]
    pub rate: Option<u32>,
    /// Publish every letter here instead of its `original-topic`.
    #[serde(default)]
    pub target_topic: Option<String>,
}

impl Request {
    fn filter(&self) -> Filter {
        Filter {
            app: self.app.clone(),
            reason: self.reason.clone(),
            stage: self.stage.clone(),
            error: self.error.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            job_id: self.job_id.clone(),
        }
    }
}

/// What a replay is, fixed when it starts (the `spec` field of its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// Replay id.
    pub id: String,
    /// Filters.
    pub filter: Filter,
    /// Most letters.
    pub limit: Option<usize>,
    /// Publish nothing.
    pub dry_run: bool,
    /// Records per second, 0 = unlimited.
    pub rate: u32,
    /// Target override.
    pub target_topic: Option<String>,
    /// `replayer.max_replays` when it started.
    pub max_replays: u32,
    /// Creation, epoch ms.
    pub created_at: i64,
    /// Per DLQ partition, the offset after the last record the selection read.
    pub dlq_ends: Offsets,
    /// High watermarks of every target topic before anything was published: a resume reads
    /// them from there.
    pub targets: BTreeMap<String, Offsets>,
    /// Letters to publish.
    pub selected: u64,
    /// Letters skipped: `sked-replay-count` reached `max_replays`.
    pub skipped_max_replays: u64,
    /// Letters skipped: no `original-topic` and no override.
    pub skipped_no_target: u64,
    /// Letters to publish, by target topic.
    pub by_target: BTreeMap<String, u64>,
}

/// The answer of the replay endpoints.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// What the replay is.
    #[serde(flatten)]
    pub spec: Spec,
    /// `running` | `done`.
    pub status: String,
    /// Letters on the target topics so far (including those found there on resume).
    pub published: u64,
    /// Letters found already published when the replay resumed.
    pub already_published: u64,
    /// Selected letters no longer in the DLQ (retention) when published.
    pub missing: u64,
    /// Times the replay was resumed.
    pub resumes: u64,
    /// When it finished, epoch ms.
    pub finished_at: Option<i64>,
    /// The last error that made it resume.
    pub last_error: Option<String>,
}

/// One letter's fate in the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Publish(usize),
    MaxReplays,
    NoTarget,
}

/// The replays of one replayer process. Cheap to clone.
#[derive(Clone)]
pub struct Replays {
    conn: Connection,
    prefix: String,
    scanner: Scanner,
    producer: FutureProducer,
    dlq_topic: String,
    max_replays: u32,
    default_rate: u32,
    metrics: Metrics,
    owner: String,
    running: Arc<Mutex<HashSet<String>>>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

/// What [`Replays::new`] needs.
pub struct Settings {
    /// `redis.key_prefix`.
    pub prefix: String,
    /// `topics.dlq`.
    pub dlq_topic: String,
    /// `replayer.max_replays`.
    pub max_replays: u32,
    /// `replayer.replay_rate`.
    pub default_rate: u32,
}

impl Replays {
    /// The replays handle; replays stop (to be resumed) on `cancel`.
    pub fn new(
        conn: Connection,
        scanner: Scanner,
        producer: FutureProducer,
        settings: Settings,
        metrics: Metrics,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            conn,
            prefix: settings.prefix,
            scanner,
            producer,
            dlq_topic: settings.dlq_topic,
            max_replays: settings.max_replays,
            default_rate: settings.default_rate,
            metrics,
            owner: uuid::Uuid::now_v7().simple().to_string(),
            running: Arc::default(),
            tracker: TaskTracker::new(),
            cancel,
        }
    }

    fn key(&self, id: &str) -> String {
        format!("{}:{{replays}}:replay:{id}", self.prefix)
    }

    fn active_key(&self) -> String {
        format!("{}:{{replays}}:active", self.prefix)
    }

    /// Waits for every replay task after cancel.
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Selects, persists and starts a replay (or only counts, for a dry run).
    pub async fn start(&self, req: Request) -> Result<Progress, Error> {
        let matcher = req.filter().compile().map_err(Error::Invalid)?;
        if let Some(t) = &req.target_topic
            && !valid_topic(t)
        {
            return Err(Error::Invalid(format!(
                "target_topic: `{t}` is not a Kafka topic name"
            )));
        }
        if req.limit == Some(0) {
            return Err(Error::Invalid("limit: must be at least 1".into()));
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let all = self.scanner.unbounded(&self.dlq_topic).await?;
        let mut dlq_ends = Offsets::new();
        let mut topics: Vec<String> = Vec::new();
        let mut picks: Vec<(i32, i64, Pick)> = Vec::new();
        let mut rx = self.scanner.read(&self.dlq_topic, &Offsets::new(), &all);
        while let Some(msg) = rx.recv().await {
            let msg = msg?;
            let end = dlq_ends.entry(msg.partition()).or_insert(0);
            *end = (*end).max(msg.offset() + 1);
            let l = Letter::of(&msg);
            if !matcher.matches(&l) {
                continue;
            }
            let pick = if l.replay_count >= self.max_replays {
                Pick::MaxReplays
            } else {
                match req.target_topic.as_ref().or(l.original_topic.as_ref()) {
                    None => Pick::NoTarget,
                    Some(t) => Pick::Publish(match topics.iter().position(|x| x == t) {
                        Some(i) => i,
                        None => {
                            topics.push(t.clone());
                            topics.len() - 1
                        }
                    }),
                }
            };
            picks.push((l.partition, l.offset, pick));
        }
        picks.sort_unstable_by_key(|(p, o, _)| (*p, *o));
        if let Some(limit) = req.limit {
            picks.truncate(limit);
        }
        let mut spec = Spec {
            id: id.clone(),
            filter: matcher.filter().clone(),
            limit: req.limit,
            dry_run: req.dry_run,
            rate: req.rate.unwrap_or(self.default_rate),
            target_topic: req.target_topic.clone(),
            max_replays: self.max_replays,
            created_at: Utc::now().timestamp_millis(),
            dlq_ends,
            targets: BTreeMap::new(),
            selected: 0,
            skipped_max_replays: 0,
            skipped_no_target: 0,
            by_target: BTreeMap::new(),
        };
        let mut items = String::new();
        for (p, o, pick) in &picks {
            match pick {
                Pick::Publish(t) => {
                    spec.selected += 1;
                    *spec.by_target.entry(topics[*t].clone()).or_default() += 1;
                    items.push_str(&format!("{p}:{o}\n"));
                }
                Pick::MaxReplays => spec.skipped_max_replays += 1,
                Pick::NoTarget => spec.skipped_no_target += 1,
            }
        }
        self.metrics
            .replayed("skipped_max_replays", spec.skipped_max_replays);
        self.metrics
            .replayed("skipped_no_target", spec.skipped_no_target);
        let key = self.key(&id);
        let mut conn = self.conn.clone();
        if spec.dry_run || spec.selected == 0 {
            if spec.dry_run {
                self.metrics.replayed("dry_run", spec.selected);
            }
            let json = encode(&spec)?;
            let now = Utc::now().timestamp_millis();
            let _: () = redis::pipe()
                .hset_multiple(
                    &key,
                    &[
                        ("spec", json),
                        ("status", "done".to_owned()),
                        ("finished_at", now.to_string()),
                    ],
                )
                .pexpire(&key, ttl_ms(KEEP_FINISHED))
                .query_async(&mut conn)
                .await?;
            info!(replay.id = %id, dry_run = spec.dry_run, selected = spec.selected, "replay selected nothing to publish");
            return self.progress(&id).await;
        }
        for topic in spec.by_target.keys() {
            let ends = match self.scanner.ends(topic).await {
                Ok(ends) => ends,
                Err(scan::Error::NoTopic(t)) => {
                    return Err(Error::Invalid(format!("target topic {t} not found")));
                }
                Err(e) => return Err(e.into()),
            };
            spec.targets.insert(topic.clone(), ends);
        }
        // Detached, so a client that hangs up cannot cut the persist-then-run sequence short.
        let this = self.clone();
        tokio::spawn(async move { this.persist_and_run(spec, items).await })
            .await
            .map_err(|e| Error::Corrupt {
                id: id.clone(),
                reason: format!("start task failed: {e}"),
            })??;
        self.progress(&id).await
    }

    /// Takes the lease, writes the replay to Redis and starts publishing it.
    async fn persist_and_run(&self, spec: Spec, items: String) -> Result<(), Error> {
        let id = spec.id.clone();
        let key = self.key(&id);
        // Lease first and the local set second, so no sweeper (here or elsewhere) can resume
        // the replay before it runs.
        if !self.acquire(&id).await? {
            return Err(Error::Corrupt {
                id,
                reason: "new replay already leased".into(),
            });
        }
        self.lock_running().insert(id.clone());
        let json = encode(&spec)?;
        let mut conn = self.conn.clone();
        let written: Result<(), redis::RedisError> = redis::pipe()
            .set(format!("{key}:items"), items)
            .hset_multiple(
                &key,
                &[
                    ("spec", json),
                    ("status", "running".to_owned()),
                    ("published", "0".to_owned()),
                ],
            )
            .zadd(self.active_key(), &id, spec.created_at)
            .query_async(&mut conn)
            .await;
        if let Err(err) = written {
            self.lock_running().remove(&id);
            let _ = self.lease_script(RELEASE_SCRIPT, &id).await;
            return Err(err.into());
        }
        info!(
            replay.id = %id,
            selected = spec.selected,
            skipped_max_replays = spec.skipped_max_replays,
            skipped_no_target = spec.skipped_no_target,
            rate = spec.rate,
            "replay started"
        );
        self.spawn(id, true);
        Ok(())
    }

    /// The progress of replay `id`.
    pub async fn progress(&self, id: &str) -> Result<Progress, Error> {
        let mut conn = self.conn.clone();
        let fields: BTreeMap<String, String> = conn.hgetall(self.key(id)).await?;
        let Some(spec) = fields.get("spec") else {
            return Err(Error::NotFound(id.to_owned()));
        };
        let spec: Spec = serde_json::from_str(spec).map_err(|e| Error::Corrupt {
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        let num = |k: &str| {
            fields
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Progress {
            status: fields
                .get("status")
                .cloned()
                .unwrap_or_else(|| "running".into()),
            published: num("published"),
            already_published: num("already_published"),
            missing: num("missing"),
            resumes: num("resumes"),
            finished_at: fields.get("finished_at").and_then(|v| v.parse().ok()),
            last_error: fields.get("last_error").cloned(),
            spec,
        })
    }

    /// Resumes unfinished replays whose lease expired, now and every [`SWEEP_INTERVAL`],
    /// until cancel.
    pub async fn sweep(self) -> anyhow::Result<()> {
        loop {
            if let Err(err) = self.sweep_once().await {
                warn!(error = %err, "looking for unfinished replays failed");
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
        }
    }

    async fn sweep_once(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.zrange(self.active_key(), 0, -1).await?;
        for id in ids {
            if self.cancel.is_cancelled() {
                break;
            }
            if self.lock_running().contains(&id) {
                continue;
            }
            let status: Option<String> = conn.hget(self.key(&id), "status").await?;
            if status.as_deref() != Some("running") {
                let _: () = conn.zrem(self.active_key(), &id).await?;
                continue;
            }
            if self.acquire(&id).await? {
                if !self.lock_running().insert(id.clone()) {
                    continue;
                }
                info!(replay.id = %id, "resuming unfinished replay");
                let _: () = conn.hincr(self.key(&id), "resumes", 1).await?;
                self.spawn(id, false);
            }
        }
        Ok(())
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn acquire(&self, id: &str) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let ok: Option<String> = redis::cmd("SET")
            .arg(format!("{}:lease", self.key(id)))
            .arg(&self.owner)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(LEASE))
            .query_async(&mut conn)
            .await?;
        Ok(ok.is_some())
    }

    async fn lease_script(&self, script: &str, id: &str) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::Script::new(script)
            .key(format!("{}:lease", self.key(id)))
            .arg(&self.owner)
            .arg(ttl_ms(LEASE))
            .invoke_async(&mut conn)
            .await?;
        Ok(n == 1)
    }

    /// Runs replay `id` to the end in a tracked task, holding its lease.
    fn spawn(&self, id: String, fresh: bool) {
        let this = self.clone();
        self.tracker.spawn(async move {
            let started = Instant::now();
            let stop = this.cancel.child_token();
            let renewer = {
                let (this, id, stop) = (this.clone(), id.clone(), stop.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(RENEW) => {}
                        }
                        match this.lease_script(RENEW_SCRIPT, &id).await {
                            Ok(true) => {}
                            Ok(false) => {
                                warn!(replay.id = %id, "replay lease lost; stopping");
                                stop.cancel();
                                return;
                            }
                            Err(err) => warn!(replay.id = %id, error = %err, "lease renewal failed"),
                        }
                    }
                })
            };
            let mut fresh = fresh;
            let mut backoff = sked_core::runtime::Backoff::new(Duration::from_secs(10));
            loop {
                match this.publish(&id, fresh, &stop).await {
                    Ok(()) => {
                        this.metrics
                            .replay_seconds
                            .observe(started.elapsed().as_secs_f64());
                        break;
                    }
                    Err(Error::Interrupted) => break,
                    Err(err) => {
                        warn!(replay.id = %id, error = %err, "replay failed; resuming after a backoff");
                        let mut conn = this.conn.clone();
                        let _: Result<(), _> =
                            conn.hset(this.key(&id), "last_error", err.to_string()).await;
                        fresh = false;
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = tokio::time::sleep(backoff.next_delay()) => {}
                        }
                    }
                }
            }
            stop.cancel();
            let _ = renewer.await;
            let _ = this.lease_script(RELEASE_SCRIPT, &id).await;
            this.lock_running().remove(&id);
        });
    }

    /// One pass of publishing: finds what is already on the target topics (unless `fresh`),
    /// publishes the rest, marks the replay done.
    async fn publish(&self, id: &str, fresh: bool, stop: &CancellationToken) -> Result<(), Error> {
        let key = self.key(id);
        let mut conn = self.conn.clone();
        let progress = self.progress(id).await?;
        if progress.status != "running" {
            return Ok(());
        }
        let spec = progress.spec;
        let raw: Option<String> = conn.get(format!("{key}:items")).await?;
        let mut remaining: HashSet<(i32, i64)> = raw
            .unwrap_or_default()
            .lines()
            .filter_map(parse_position)
            .collect();
        let mut already = 0u64;
        if !fresh {
            let prefix = format!("{id}:");
            for (topic, starts) in &spec.targets {
                let ends = self.scanner.unbounded(topic).await?;
                let mut rx = self.scanner.read(topic, starts, &ends);
                while let Some(msg) = rx.recv().await {
                    let msg = msg?;
                    if let Some(pos) = letter::header(&msg, SKED_REPLAY_ID)
                        .as_deref()
                        .and_then(|r| r.strip_prefix(&prefix))
                        .and_then(parse_position)
                        && remaining.remove(&pos)
                    {
                        already += 1;
                    }
                }
            }
            self.metrics.replayed("already_published", already);
            info!(replay.id = %id, already_published = already, remaining = remaining.len(), "replay resumed");
        }
        let _: () = conn
            .hset_multiple(
                &key,
                &[
                    ("already_published", already.to_string()),
                    ("published", already.to_string()),
                ],
            )
            .await?;
        let mut from = Offsets::new();
        for (p, o) in &remaining {
            let e = from.entry(*p).or_insert(*o);
            *e = (*e).min(*o);
        }
        let to: Offsets = spec
            .dlq_ends
            .iter()
            .filter(|(p, _)| from.contains_key(p))
            .map(|(p, o)| (*p, *o))
            .collect();
        let mut rx = self.scanner.read(&self.dlq_topic, &from, &to);
        let mut inflight = FuturesUnordered::new();
        let mut acked = 0u64;
        let mut flushed = 0u64;
        let mut first_error: Option<Error> = None;
        let mut last_flush = Instant::now();
        let pace = (spec.rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(spec.rate)));
        let mut next_send = Instant::now();
        while let Some(msg) = rx.recv().await {
            let msg = msg?;
            if !remaining.remove(&(msg.partition(), msg.offset())) {
                continue;
            }
            if let Some(pace) = pace {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep_until(next_send) => {}
                }
                // Catch up after a slow ack, but never burst more than a second's worth.
                let floor = Instant::now()
                    .checked_sub(Duration::from_secs(1))
                    .unwrap_or(next_send);
                next_send = next_send.max(floor) + pace;
            }
            if stop.is_cancelled() || first_error.is_some() {
                break;
            }
            while inflight.len() >= MAX_IN_FLIGHT {
                if let Some(r) = inflight.next().await {
                    settle(r, &mut acked, &mut first_error);
                }
            }
            let topic = spec
                .target_topic
                .clone()
                .or_else(|| letter::header(&msg, h::ORIGINAL_TOPIC))
                .unwrap_or_default();
            inflight.push(self.send(id, &topic, &msg));
            while let Some(Some(r)) = futures::FutureExt::now_or_never(inflight.next()) {
                settle(r, &mut acked, &mut first_error);
            }
            if last_flush.elapsed() >= PROGRESS_EVERY {
                self.flush_progress(&key, acked - flushed).await;
                flushed = acked;
                last_flush = Instant::now();
            }
        }
        drop(rx);
        // Every send is settled before anything else happens, so a resume never scans a target
        // topic while one of ours may still land on it.
        while let Some(r) = inflight.next().await {
            settle(r, &mut acked, &mut first_error);
        }
        self.flush_progress(&key, acked - flushed).await;
        self.metrics.replayed("published", acked);
        if let Some(err) = first_error {
            return Err(err);
        }
        if stop.is_cancelled() {
            return Err(Error::Interrupted);
        }
        let missing = remaining.len() as u64;
        if missing > 0 {
            warn!(replay.id = %id, missing, "selected letters no longer in the dlq");
        }
        let now = Utc::now().timestamp_millis();
        let _: () = redis::pipe()
            .hset_multiple(
                &key,
                &[
                    ("status", "done".to_owned()),
                    ("finished_at", now.to_string()),
                    ("missing", missing.to_string()),
                ],
            )
            .pexpire(&key, ttl_ms(KEEP_FINISHED))
            .pexpire(format!("{key}:items"), ttl_ms(KEEP_FINISHED))
            .zrem(self.active_key(), id)
            .query_async(&mut conn)
            .await?;
        info!(replay.id = %id, published = acked + already, missing, "replay done");
        Ok(())
    }

    async fn flush_progress(&self, key: &str, n: u64) {
        if n == 0 {
            return;
        }
        let mut conn = self.conn.clone();
        if let Err(err) = conn.hincr::<_, _, _, ()>(key, "published", n).await {
            warn!(error = %err, "replay progress not recorded");
        }
    }

    /// Produces the replay of `msg` to `topic`; resolves when Kafka acknowledged it.
    fn send(
        &self,
        id: &str,
        topic: &str,
        msg: &OwnedMessage,
    ) -> impl std::future::Future<Output = Result<(), Error>> + use<> {
        let mut record = replay_record(id, msg, Utc::now().timestamp_millis());
        // A `sked.replay` span in the letter's trace; the replayed record continues from it.
        let span = tracing::info_span!(
            "replay",
            otel.name = "sked.replay",
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.destination.name = topic,
            messaging.operation.type = "publish",
            messaging.kafka.message.key = msg.key().and_then(|k| std::str::from_utf8(k).ok()),
            sked.replay.id = id,
            sked.dlq.offset = msg.offset(),
        );
        sked_core::trace::set_parent(&span, sked_core::trace::header(msg.headers()));
        if let Some(tp) = sked_core::trace::traceparent(&span) {
            record.headers = sked_core::trace::replace_header(&record.headers, &tp);
        }
        let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(record.headers);
        if let Some(k) = msg.key() {
            fr = fr.key(k);
        }
        if let Some(v) = msg.payload() {
            fr = fr.payload(v);
        }
        let delivery = self.producer.send_result(fr).map_err(|(e, _)| e);
        let topic = topic.to_owned();
        let publish = async move {
            let fail = |error| Error::Publish {
                topic: topic.clone(),
                error,
            };
            match delivery {
                Ok(f) => match f.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(fail(e)),
                    Err(_) => Err(fail(rdkafka::error::KafkaError::Canceled)),
                },
                Err(e) => Err(fail(e)),
            }
        };
        tracing::Instrument::instrument(publish, span)
    }
}

fn settle(r: Result<(), Error>, acked: &mut u64, first_error: &mut Option<Error>) {
    match r {
        Ok(()) => *acked += 1,
        Err(e) => {
            first_error.get_or_insert(e);
        }
    }
}

/// The headers of a replayed letter.
pub struct ReplayRecord {
    /// All original headers but the four replay headers, then those.
    pub headers: OwnedHeaders,
}

/// The replay of `msg` by replay `id` at `now_ms`.
pub fn replay_record(id: &str, msg: &OwnedMessage, now_ms: i64) -> ReplayRecord {
    const REPLACED: [&str; 4] = [
        h::SKED_ATTEMPT,
        h::SKED_REPLAY_COUNT,
        h::SKED_REPLAYED_AT,
        SKED_REPLAY_ID,
    ];
    let mut headers = OwnedHeaders::new();
    if let Some(hs) = msg.headers() {
        for x in hs.iter().filter(|x| !REPLACED.contains(&x.key)) {
            headers = headers.insert(Header {
                key: x.key,
                value: x.value,
            });
        }
    }
    let count = (letter::replay_count(msg) + 1).to_string();
    let now = now_ms.to_string();
    let replay_id = format!("{id}:{}:{}", msg.partition(), msg.offset());
    for (key, value) in [
        (h::SKED_ATTEMPT, "1"),
        (h::SKED_REPLAY_COUNT, count.as_str()),
        (h::SKED_REPLAYED_AT, now.as_str()),
        (SKED_REPLAY_ID, replay_id.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    ReplayRecord { headers }
}

/// `partition:offset`.
fn parse_position(s: &str) -> Option<(i32, i64)> {
    let (p, o) = s.trim().split_once(':')?;
    Some((p.parse().ok()?, o.parse().ok()?))
}

fn encode(spec: &Spec) -> Result<String, Error> {
    serde_json::to_string(spec).map_err(|e| Error::Corrupt {
        id: spec.id.clone(),
        reason: e.to_string(),
    })
}

fn ttl_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn valid_topic(t: &str) -> bool {
    (1..=249).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rdkafka::Timestamp;

    use super::*;

    #[test]
    fn replayed_headers_reset_the_attempt_and_count_the_replay() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "sked-attempt",
                value: Some("3"),
            })
            .insert(Header {
                key: "sked-replay-count",
                value: Some("1"),
            })
            .insert(Header {
                key: "traceparent",
                value: Some("00-abc"),
            })
            .insert(Header {
                key: "sked-replay-id",
                value: Some("old:0:1"),
            });
        let msg = OwnedMessage::new(
            Some(b"v".to_vec()),
            Some(b"k".to_vec()),
            "dlq".into(),
            Timestamp::NotAvailable,
            2,
            17,
            Some(headers),
        );
        let r = replay_record("r1", &msg, 42);
        let got: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|x| {
                (
                    x.key.to_owned(),
                    String::from_utf8(x.value.unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("traceparent", "00-abc"),
            ("sked-attempt", "1"),
            ("sked-replay-count", "2"),
            ("sked-replayed-at", "42"),
            ("sked-replay-id", "r1:2:17"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn positions_parse() {
        assert_eq!(parse_position("2:17"), Some((2, 17)));
        assert_eq!(parse_position("x:1"), None);
        assert_eq!(parse_position(""), None);
    }
}
