//! [`Store`]: the Redis operations of sked, each one round trip per batch.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use redis::{AsyncCommands, ErrorKind, RedisError, Value, from_redis_value};

use super::{
    Commands, Connection, Keys,
    record::{self, DecodeError, JobRecord, Payload},
    scripts,
    seal::Keyring,
};
use crate::{
    config::RedisOptions,
    job::{JobId, Shard},
    request::JobSpec,
};

/// A store failure. [`Error::is_transient`] says whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis did not answer, or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// A record could not be read back.
    #[error("job record {key} is corrupt: {reason}")]
    Corrupt {
        /// The Redis key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A record's payload is sealed with a key that is not configured.
    #[error(
        "job record {key} is sealed with encryption key `{key_id}`, which is not configured (encryption.keys)"
    )]
    UnknownKey {
        /// The Redis key.
        key: String,
        /// The id of the key the payload is sealed with.
        key_id: String,
    },
    /// A spec could not be serialized.
    #[error("cannot encode job {id}: {source}")]
    Encode {
        /// The job.
        id: JobId,
        /// Why.
        source: serde_json::Error,
    },
    /// A script replied something it never replies.
    #[error("unexpected script reply: {0}")]
    Protocol(String),
}

impl Error {
    /// True when the same call may succeed later (connection lost, Redis loading, timeouts).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || matches!(
                        e.kind(),
                        ErrorKind::BusyLoadingError
                            | ErrorKind::TryAgain
                            | ErrorKind::ClusterDown
                            | ErrorKind::MasterDown
                            | ErrorKind::Moved
                            | ErrorKind::Ask
                    )
            }
            _ => false,
        }
    }

    /// The error of a record at Redis key `key` that did not decode.
    pub(crate) fn of_record(key: String, err: DecodeError) -> Self {
        match err {
            DecodeError::Corrupt(reason) => Error::Corrupt { key, reason },
            DecodeError::UnknownKey(key_id) => Error::UnknownKey { key, key_id },
        }
    }
}

/// One write in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    /// Store a job (create, update, or recognise a redelivery).
    Insert {
        /// The job.
        spec: Box<JobSpec>,
        /// Hash of the request bytes: the same bytes under the same id are a duplicate (a
        /// redelivery or a client retry, even when `delay` resolves to another instant);
        /// other bytes under the same id update the job.
        fingerprint: u64,
        /// Apply only over this version of the job (`PUT` with `If-Match`).
        if_match: Option<Etag>,
    },
    /// Cancel a job.
    Cancel(JobId),
    /// Cancel a job that the caller read as being in `indexes` (a bulk cancel of listed
    /// jobs): it leaves them in the same script, so no index upkeep follows unless the job
    /// had changed since.
    CancelListed {
        /// The job.
        id: JobId,
        /// Its indexes as the caller read them ([`super::Index::of`] its spec).
        indexes: Vec<super::Index>,
    },
}

impl Op {
    /// An insert of `spec`, parsed from `request` (the bytes as received).
    pub fn insert(spec: JobSpec, request: &[u8]) -> Self {
        Op::Insert {
            spec: Box::new(spec),
            fingerprint: record::fingerprint(request),
            if_match: None,
        }
    }

    /// An insert of `spec` that applies only while the stored job's fingerprint is
    /// `if_match` (its etag, see [`Etag`]); otherwise it answers
    /// [`Applied::PreconditionFailed`] and changes nothing.
    pub fn replace(spec: JobSpec, request: &[u8], if_match: Etag) -> Self {
        Op::Insert {
            spec: Box::new(spec),
            fingerprint: record::fingerprint(request),
            if_match: Some(if_match),
        }
    }
}

/// The version of a stored job: the fingerprint of the request it was stored from. Shown as
/// 16 hex digits (`GET /v1/jobs/{id}`), sent back in `If-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Etag(pub u64);

impl Etag {
    /// The etag of a record's first 8 bytes.
    pub(crate) fn of_record(raw: &[u8]) -> Option<Etag> {
        raw.get(..8)
            .and_then(|b| b.try_into().ok())
            .map(|b| Etag(u64::from_be_bytes(b)))
    }
}

impl std::fmt::Display for Etag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Etag {
    type Err = String;

    /// 16 hex digits, optionally quoted (`"…"`) and weak-prefixed (`W/`), as HTTP sends them.
    fn from_str(s: &str) -> Result<Etag, String> {
        let s = s.trim();
        let s = s.strip_prefix("W/").unwrap_or(s);
        let s = s.trim_matches('"');
        if s.len() != 16 {
            return Err(format!("etag `{s}` is not 16 hex digits"));
        }
        u64::from_str_radix(s, 16)
            .map(Etag)
            .map_err(|_| format!("etag `{s}` is not 16 hex digits"))
    }
}

/// What one [`Op`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A new job was stored.
    Created,
    /// An existing job got a new spec; its next fire was replaced.
    Updated,
    /// The same request was already stored (redelivery, or an idempotency key seen before).
    Duplicate {
        /// The job that already holds this request.
        existing: JobId,
    },
    /// The outcome of a cancel.
    Cancel(Cancelled),
    /// The stored job is not the version the insert named (see [`Op::replace`]), or is gone.
    PreconditionFailed,
}

impl Applied {
    /// The outcome as a metric label: `created`, `updated`, `duplicate`,
    /// `precondition_failed`, or a cancel's outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Duplicate { .. } => "duplicate",
            Applied::PreconditionFailed => "precondition_failed",
            Applied::Cancel(c) => c.into(),
        }
    }
}

/// Outcome of a cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Cancelled {
    /// Removed from the due index before it fired.
    Cancelled,
    /// No such job.
    NotFound,
    /// Cancelled before.
    AlreadyCancelled,
    /// Too late: a scheduler has claimed the fire and is dispatching it.
    Dispatched,
    /// Too late: the job has no pending fire left.
    Finished,
}

/// A job claimed for firing.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The job.
    pub spec: JobSpec,
    /// Its due-index score (epoch ms) when claimed.
    pub score: i64,
    /// The score exactly as Redis printed it; the ack names the lease with it.
    pub score_raw: String,
    /// Fires of this (recurring) job produced before this claim.
    pub runs: u64,
    /// Claimed again after an expired lease: the claimed slot may be out already, so it fires
    /// again (same fire id) whatever the misfire policy.
    pub refire: bool,
    /// For a recurring job claimed after an expired lease: the instant (epoch ms) of the
    /// first claim not acked since, whose plan the scheduler replays. `None` when not known
    /// (a one-shot, or a claim made before this was kept).
    pub replay_at: Option<i64>,
}

/// One claim of one shard.
#[derive(Debug, Default)]
pub struct ClaimBatch {
    /// Expired leases put back into the due index first.
    pub reclaimed: u64,
    /// Due jobs moved to the held set because their app or tenant is paused.
    pub held: u64,
    /// The instant (epoch ms) of the claim: it took the jobs due at or before it.
    pub claimed_at: i64,
    /// The lease deadline (epoch ms) of the claimed jobs; acks name it.
    pub lease_until: i64,
    /// The claimed jobs, earliest first.
    pub jobs: Vec<Claimed>,
    /// Records that could not be read back: (job id, score as printed, why). Ack them with no
    /// fire so they leave the in-flight set, and count them.
    pub corrupt: Vec<(String, String, String)>,
    /// Records whose payload is sealed with a key that is not configured: the fire cannot be
    /// built. The scheduler holds them ([`Store::hold`]) instead of acking them.
    pub unknown_key: Vec<Unopened>,
}

/// A claimed job whose payload is sealed with a key that is not configured.
#[derive(Debug, Clone)]
pub struct Unopened {
    /// The job, its payload `null` (every other field as stored).
    pub spec: JobSpec,
    /// Its claimed score, as printed (the ack names the lease with it).
    pub score_raw: String,
    /// The id of the key its payload is sealed with.
    pub key_id: String,
}

/// The ack of one claimed job, after Kafka accepted its fires.
#[derive(Debug, Clone, Default)]
pub struct Ack {
    /// The job id.
    pub id: String,
    /// The claimed score, as [`Claimed::score_raw`].
    pub score_raw: String,
    /// The claim's lease deadline, as [`ClaimBatch::lease_until`]: the ack applies only to
    /// the lease this claim took.
    pub lease_until: i64,
    /// Fires produced for this claim.
    pub fired: u64,
    /// The next due score of a recurring job, if it has a fire left.
    pub next: Option<i64>,
    /// The job is recurring: its counters and history are kept.
    pub recurring: bool,
    /// The job's secondary indexes ([`super::Index::of`] its spec): the next due moves them,
    /// the last fire removes it from them.
    pub indexes: Vec<super::Index>,
    /// Slots missed (late beyond the misfire threshold) in this claim.
    pub missed: u64,
    /// Slots skipped by the misfire policy in this claim.
    pub skipped: u64,
    /// Slots an attached calendar excluded in this claim.
    pub excluded: u64,
    /// History entries of the fires produced ([`super::history_entry`]).
    pub history: Vec<String>,
    /// Slot-history entries of the latest slots that did not fire
    /// ([`super::describe::slot_entry`]).
    pub slots: Vec<String>,
}

/// What an ack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum AckOutcome {
    /// No fire left: the record is dispatched and expires.
    Done,
    /// The next fire is in the due index.
    Next,
    /// The job was cancelled while its fire was in flight; nothing follows.
    Cancelled,
    /// The job was updated or its lease reclaimed meanwhile; the ack changed nothing else.
    Stale,
}

/// The Redis job store, on one server or a Redis Cluster. Cheap to clone; clones share one
/// multiplexed connection (per cluster node).
#[derive(Clone)]
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) keys: Keys,
    pub(crate) ttl_ms: u64,
    /// Seals payloads of the records written, opens those read ([`Store::with_keyring`]).
    pub(crate) keyring: std::sync::Arc<Keyring>,
    /// Seen set on every shard: the recurring index is complete ([`Store::recurring_ready`]).
    pub(crate) recurring_ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects. Fails when Redis cannot be reached now; callers retry with backoff.
    ///
    /// The store has no keys: it writes payloads in clear and cannot open sealed ones, until
    /// [`Store::with_keyring`] (services get theirs from `[encryption]` in
    /// the start of every service).
    pub async fn connect(options: &RedisOptions) -> Result<Self, Error> {
        Ok(Self {
            conn: Connection::connect(options).await?,
            keys: Keys::new(options.key_prefix.clone(), options.shards),
            ttl_ms: u64::try_from(options.idempotency_ttl.get().as_millis()).unwrap_or(u64::MAX),
            keyring: std::sync::Arc::new(Keyring::none()),
            recurring_ready: Default::default(),
        })
    }

    /// This store, sealing the payloads it writes and opening those it reads with `keyring`.
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = std::sync::Arc::new(keyring);
        self
    }

    /// The keys this store seals and opens payloads with.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Connects, retrying with backoff (and reporting `redis` not ready) until Redis answers
    /// or `cancel`.
    pub async fn connect_with_retry(
        options: &RedisOptions,
        readiness: &crate::readiness::Readiness,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<Self> {
        use crate::backoff::{self, Backoff, Failure};
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let store = backoff::retry(cancel, &mut backoff, || async {
            Self::connect(options).await.map_err(|err| {
                readiness.set("redis", false);
                tracing::warn!(
                    error = %err,
                    url = %crate::config::redact_url(&options.url),
                    "redis unreachable, retrying"
                );
                Failure::<()>::Transient(())
            })
        })
        .await
        .ok()?;
        readiness.set("redis", true);
        Some(store)
    }

    /// Key names of this store.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A connection for commands the store does not wrap. On a cluster, one pipeline must
    /// keep to one slot ([`Connection::commands`] groups them).
    pub fn connection(&self) -> Connection {
        self.conn.clone()
    }

    /// Round trip to Redis.
    pub async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// `SET NX GET` for each insert whose idempotency key differs from its job id. A key that
    /// already names another job makes the op a duplicate of that job. A key naming this very
    /// job is a retry of an earlier, interrupted attempt, which goes on.
    pub(crate) async fn claim_idempotency_keys(
        &self,
        ops: &[Op],
        results: &mut [Option<Applied>],
    ) -> Result<(), Error> {
        // Grouped by the keys' shard: one slot per group on a cluster.
        let mut by_shard: BTreeMap<Shard, Vec<(usize, &str)>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            if let Op::Insert { spec, .. } = op
                && let Some(key) = &spec.idempotency_key
                && key != spec.id.as_str()
            {
                by_shard
                    .entry(self.keys.shard_of_key(key))
                    .or_default()
                    .push((i, key));
            }
        }
        if by_shard.is_empty() {
            return Ok(());
        }
        let mut cmds = self.conn.commands();
        let mut idxs = Vec::new();
        for group in by_shard.values() {
            let pipe = cmds.group();
            for &(i, key) in group {
                pipe.cmd("SET")
                    .arg(self.keys.idempotency(key))
                    .arg(op_id(&ops[i]).as_str())
                    .arg("NX")
                    .arg("PX")
                    .arg(self.ttl_ms)
                    .arg("GET");
                idxs.push(i);
            }
        }
        let previous = cmds.query(&self.conn).await?;
        for (i, prev) in idxs.into_iter().zip(previous) {
            let prev: Option<String> = from_redis_value(&prev)?;
            if let Some(prev) = prev
                && prev != op_id(&ops[i]).as_str()
            {
                let existing = JobId::parse(&prev).map_err(|e| Error::Corrupt {
                    key: prev.clone(),
                    reason: e.to_string(),
                })?;
                results[i] = Some(Applied::Duplicate { existing });
            }
        }
        Ok(())
    }

    /// Runs script calls, loading the scripts once if Redis lost them (a restart, a failover
    /// to a replica that never saw them); on a cluster `SCRIPT LOAD` goes to every primary.
    pub(crate) async fn query_scripts(&self, cmds: &Commands) -> Result<Vec<Value>, Error> {
        let mut loads = 0;
        loop {
            match cmds.query(&self.conn).await {
                // Loaded on one node, still missing on another (a failover meanwhile): again.
                Err(e) if e.kind() == ErrorKind::NoScriptError && loads < 3 => {
                    loads += 1;
                    let mut conn = self.conn.clone();
                    for script in scripts::all() {
                        script.prepare_invoke().load_async(&mut conn).await?;
                    }
                }
                other => return Ok(other?),
            }
        }
    }

    /// Claims up to `limit` jobs of `shard` due at or before `now_ms`, leased until
    /// `now_ms + lease`. Expired leases of the shard return to the due index first.
    ///
    /// Two round trips: a read of the expired leases and of the due candidates, then one
    /// script that claims those of them still there, with every key it touches declared (so a
    /// migrating slot on a Redis Cluster redirects or retries the whole call). Nothing due: no
    /// script runs.
    pub async fn claim(
        &self,
        shard: Shard,
        now_ms: i64,
        limit: usize,
        lease: Duration,
    ) -> Result<ClaimBatch, Error> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let (due, inflight) = (self.keys.due(shard), self.keys.inflight(shard));
        // Two commands, not a pipeline: on a Redis Cluster whose slot is migrating, redis-rs
        // follows an `ASK` for one command, not for a pipeline.
        let (mut c1, mut c2) = (self.conn.clone(), self.conn.clone());
        let (expired, candidates): (Vec<String>, Vec<String>) = futures::try_join!(
            c1.zrangebyscore_limit(&inflight, "-inf", now_ms, 0, MAX_RECLAIM),
            c2.zrangebyscore_limit(&due, "-inf", now_ms, 0, limit as isize),
        )?;
        let lease_until = now_ms.saturating_add(lease_ms);
        if expired.is_empty() && candidates.is_empty() {
            return Ok(ClaimBatch {
                claimed_at: now_ms,
                lease_until,
                ..Default::default()
            });
        }
        let prefix = self.keys.job_prefix(shard);
        let mut inv = scripts::CLAIM.prepare_invoke();
        inv.key(due)
            .key(inflight)
            .key(self.keys.runs(shard))
            .key(self.keys.held(shard))
            .key(self.keys.hold(shard))
            .key(self.keys.done(shard))
            .arg(now_ms)
            .arg(lease_until)
            .arg(self.ttl_ms)
            .arg(expired.len());
        for member in &expired {
            // `<due score>|<job id>`; a member without `|` is skipped by the script.
            let id = member.split_once('|').map_or("", |(_, id)| id);
            inv.key(format!("{prefix}{id}")).arg(member);
        }
        for id in &candidates {
            inv.key(format!("{prefix}{id}")).arg(id);
        }
        let mut cmds = self.conn.commands();
        cmds.group().invoke_script(&inv);
        let reply: Vec<Value> = match self.query_scripts(&cmds).await?.pop() {
            Some(reply) => from_redis_value(&reply)?,
            None => return Err(Error::Protocol("no claim reply".into())),
        };
        let mut items = reply.into_iter();
        let mut count = || -> Result<u64, Error> {
            match items.next() {
                Some(v) => Ok(redis::from_redis_value(&v)?),
                None => Err(Error::Protocol("short claim reply".into())),
            }
        };
        let (reclaimed, held, dropped) = (count()?, count()?, count()?);
        let mut batch = ClaimBatch {
            reclaimed,
            held,
            claimed_at: now_ms,
            lease_until,
            ..Default::default()
        };
        // Cancelled while their lease expired: finished now, out of their indexes.
        let mut stale = Vec::new();
        for _ in 0..dropped {
            let (Some(id), Some(record)) = (items.next(), items.next()) else {
                return Err(Error::Protocol("short claim reply".into()));
            };
            let id: String = redis::from_redis_value(&id)?;
            let record: Vec<u8> = redis::from_redis_value(&record).unwrap_or_default();
            if let Ok(job) = JobId::parse(&id)
                && let Ok((_, spec)) = record::decode(&job, &record, &self.keyring, Payload::Skip)
            {
                stale.push(super::Stale {
                    id: job,
                    indexes: super::Index::of(&spec),
                });
            }
        }
        if !stale.is_empty() {
            self.reindex(&stale).await?;
        }
        while let (Some(id), Some(score), Some(record), Some(runs), Some(expired)) = (
            items.next(),
            items.next(),
            items.next(),
            items.next(),
            items.next(),
        ) {
            let id: String = redis::from_redis_value(&id)?;
            let score_raw: String = redis::from_redis_value(&score)?;
            let record: Vec<u8> = redis::from_redis_value(&record)?;
            let runs: u64 = redis::from_redis_value(&runs).unwrap_or(0);
            let replay_at = redis::from_redis_value::<String>(&expired)
                .ok()
                .and_then(|v| replay_instant(&v, lease_ms));
            let score = score_raw.parse::<f64>().map(|f| f as i64);
            let job = match JobId::parse(&id) {
                Ok(job) => job,
                Err(e) => {
                    batch.corrupt.push((id, score_raw, e.to_string()));
                    continue;
                }
            };
            let decoded = record::decode(&job, &record, &self.keyring, Payload::Open);
            match (decoded, score) {
                (Ok((_, spec)), Ok(score)) => batch.jobs.push(Claimed {
                    spec,
                    score,
                    score_raw,
                    runs,
                    refire: record::reclaimed(&record),
                    replay_at,
                }),
                (Err(DecodeError::UnknownKey(key_id)), _) => {
                    match record::decode(&job, &record, &self.keyring, Payload::Skip) {
                        Ok((_, spec)) => batch.unknown_key.push(Unopened {
                            spec,
                            score_raw,
                            key_id,
                        }),
                        Err(why) => batch.corrupt.push((id, score_raw, why.to_string())),
                    }
                }
                (Err(why), _) => batch.corrupt.push((id, score_raw, why.to_string())),
                (_, Err(e)) => batch
                    .corrupt
                    .push((id, score_raw, format!("bad score: {e}"))),
            }
        }
        Ok(batch)
    }

    /// Acknowledges claimed jobs of `shard` whose fires Kafka accepted.
    pub async fn ack(&self, shard: Shard, acks: &[Ack]) -> Result<Vec<AckOutcome>, Error> {
        if acks.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = self.keys.job_prefix(shard);
        let mut inv = scripts::ACK.prepare_invoke();
        inv.key(self.keys.due(shard))
            .key(self.keys.inflight(shard))
            .key(self.keys.runs(shard))
            .key(self.keys.done(shard))
            .key(self.keys.counts(shard))
            .key(self.keys.created(shard))
            .arg(self.ttl_ms)
            .arg(self.keys.wake_channel())
            .arg(shard.index())
            .arg(chrono::Utc::now().timestamp_millis());
        for ack in acks {
            inv.key(format!("{prefix}{}", ack.id));
            if ack.recurring {
                inv.key(self.keys.counters(shard, &ack.id))
                    .key(self.keys.history(shard, &ack.id));
                if !ack.slots.is_empty() {
                    inv.key(self.keys.slots(shard, &ack.id));
                }
            }
            for index in &ack.indexes {
                inv.key(self.keys.index(shard, index));
            }
            inv.arg(&ack.id)
                .arg(&ack.score_raw)
                .arg(ack.lease_until)
                .arg(ack.fired);
            match ack.next {
                Some(next) => inv.arg(next),
                None => inv.arg(""),
            };
            inv.arg(if ack.recurring { "1" } else { "0" })
                .arg(ack.indexes.len())
                .arg(ack.missed)
                .arg(ack.skipped)
                .arg(ack.history.len());
            for entry in &ack.history {
                inv.arg(entry);
            }
            inv.arg(ack.excluded).arg(ack.slots.len());
            for entry in &ack.slots {
                inv.arg(entry);
            }
        }
        let mut cmds = self.conn.commands();
        cmds.group().invoke_script(&inv);
        let reply: Vec<String> = match self.query_scripts(&cmds).await?.pop() {
            Some(reply) => from_redis_value(&reply)?,
            None => return Err(Error::Protocol("no ack reply".into())),
        };
        reply
            .iter()
            .map(|s| match s.as_str() {
                "done" => Ok(AckOutcome::Done),
                "next" => Ok(AckOutcome::Next),
                "cancelled" => Ok(AckOutcome::Cancelled),
                "stale" => Ok(AckOutcome::Stale),
                other => Err(Error::Protocol(format!("unknown ack status {other:?}"))),
            })
            .collect()
    }

    /// Moves the leases of one claim of `shard` (`(claimed score as printed, job id)`) from
    /// the claim's deadline `from_ms` to `until_ms` (later to renew them, sooner to release
    /// them). A member whose lease is no longer `from_ms` (acked, held, or reclaimed by
    /// another scheduler after it expired) is left alone; answers their positions in `claims`.
    pub async fn renew(
        &self,
        shard: Shard,
        claims: &[(&str, &str)],
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<usize>, Error> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = scripts::RENEW.prepare_invoke();
        inv.key(self.keys.inflight(shard))
            .arg(from_ms)
            .arg(until_ms);
        for (score_raw, id) in claims {
            inv.arg(format!("{score_raw}|{id}"));
        }
        let mut cmds = self.conn.commands();
        cmds.group().invoke_script(&inv);
        let lost: Vec<usize> = match self.query_scripts(&cmds).await?.pop() {
            Some(reply) => from_redis_value(&reply)?,
            None => return Err(Error::Protocol("no renew reply".into())),
        };
        Ok(lost.into_iter().filter_map(|p| p.checked_sub(1)).collect())
    }

    /// Sets the lease deadline of claimed jobs of `shard` (`(claimed score as printed, job
    /// id)`) to `until_ms`, sooner or later than the claim's: they stay claimed, and any
    /// scheduler claims them again once it passes. For claims whose fire cannot be built yet
    /// ([`ClaimBatch::unknown_key`]); a claim no longer in flight is left alone (`XX`).
    pub async fn hold(
        &self,
        shard: Shard,
        claims: &[(&str, &str)],
        until_ms: i64,
    ) -> Result<(), Error> {
        if claims.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.keys.inflight(shard)).arg("XX");
        for (score_raw, id) in claims {
            cmd.arg(until_ms).arg(format!("{score_raw}|{id}"));
        }
        let mut conn = self.conn.clone();
        let _: i64 = cmd.query_async(&mut conn).await?;
        Ok(())
    }

    /// The earliest due score of each shard (`None` for an empty shard), one round trip.
    pub async fn earliest(&self, shards: &[Shard]) -> Result<Vec<Option<i64>>, Error> {
        let mut cmds = self.conn.commands();
        for s in shards {
            cmds.group().zrange_withscores(self.keys.due(*s), 0, 0);
        }
        cmds.query(&self.conn)
            .await?
            .iter()
            .map(|r| {
                let r: Vec<(String, f64)> = from_redis_value(r)?;
                Ok(r.first().map(|(_, score)| *score as i64))
            })
            .collect()
    }

    /// The earliest instant (epoch ms) at which the shards have work for a scheduler: a due
    /// score, or the end of a lease (an expired lease is reclaimed by the next claim). `None`
    /// when they hold neither. One round trip.
    pub async fn next_work(&self, shards: &[Shard]) -> Result<Option<i64>, Error> {
        let mut cmds = self.conn.commands();
        for s in shards {
            cmds.group().zrange_withscores(self.keys.due(*s), 0, 0);
            cmds.group().zrange_withscores(self.keys.inflight(*s), 0, 0);
        }
        let mut earliest: Option<i64> = None;
        for r in cmds.query(&self.conn).await? {
            let r: Vec<(String, f64)> = from_redis_value(&r)?;
            if let Some((_, score)) = r.first() {
                let at = *score as i64;
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        Ok(earliest)
    }

    /// Due and in-flight counts of each shard (gauges).
    pub async fn backlog(&self, shards: &[Shard]) -> Result<Vec<(u64, u64)>, Error> {
        let mut cmds = self.conn.commands();
        for s in shards {
            cmds.group()
                .zcard(self.keys.due(*s))
                .zcard(self.keys.inflight(*s));
        }
        let counts: Vec<u64> = from_redis_value(&Value::Array(cmds.query(&self.conn).await?))?;
        Ok(counts
            .chunks(2)
            .map(|c| (c[0], c.get(1).copied().unwrap_or(0)))
            .collect())
    }

    /// Cancels one job.
    pub async fn cancel(&self, id: &JobId) -> Result<Cancelled, Error> {
        match self.apply(&[Op::Cancel(id.clone())]).await?.pop() {
            Some(Applied::Cancel(c)) => Ok(c),
            other => Err(Error::Protocol(format!("cancel answered {other:?}"))),
        }
    }

    /// Reads a job and its next due time.
    pub async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, Error> {
        let shard = self.keys.shard_of(id);
        let key = self.keys.job(shard, id);
        let mut conn = self.conn.clone();
        let (raw, score): (Option<Vec<u8>>, Option<f64>) = redis::pipe()
            .get(&key)
            .zscore(self.keys.due(shard), id.as_str())
            .query_async(&mut conn)
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let (state, spec) = record::decode(id, &raw, &self.keyring, Payload::Open)
            .map_err(|e| Error::of_record(key, e))?;
        let next_due = score.and_then(|ms| DateTime::<Utc>::from_timestamp_millis(ms as i64));
        Ok(Some(JobRecord {
            state,
            next_due,
            spec,
        }))
    }

    /// Jobs due at or before `score` (epoch ms), all shards (O(shards × log n)).
    pub async fn due_by(&self, score: i64) -> Result<u64, Error> {
        let mut cmds = self.conn.commands();
        for s in 0..self.keys.shards() {
            cmds.group().zcount(self.keys.due(Shard(s)), "-inf", score);
        }
        let counts: Vec<u64> = from_redis_value(&Value::Array(cmds.query(&self.conn).await?))?;
        Ok(counts.into_iter().sum())
    }

    /// Number of jobs in the due index, all shards (a gauge; O(shards)).
    pub async fn due_count(&self) -> Result<u64, Error> {
        let mut cmds = self.conn.commands();
        for s in 0..self.keys.shards() {
            cmds.group().zcard(self.keys.due(Shard(s)));
        }
        let counts: Vec<u64> = from_redis_value(&Value::Array(cmds.query(&self.conn).await?))?;
        Ok(counts.into_iter().sum())
    }

    /// `used_memory` of `INFO memory`, summed over the primaries, and how many answered (a
    /// cluster routes `INFO` to every primary and answers a map of node to reply).
    pub async fn memory(&self) -> Result<(u64, u32), Error> {
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await?;
        let texts: Vec<String> = match reply {
            Value::Map(nodes) => nodes
                .iter()
                .map(|(_, v)| from_redis_value(v))
                .collect::<Result<_, _>>()?,
            other => vec![from_redis_value(&other)?],
        };
        let mut used = 0u64;
        for text in &texts {
            let bytes = text
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| Error::Protocol("INFO memory has no used_memory line".to_owned()))?;
            used += bytes;
        }
        Ok((used, u32::try_from(texts.len()).unwrap_or(u32::MAX)))
    }

    /// The earliest due entries of a shard (id, due), for inspection and tests.
    pub async fn peek_due(&self, shard: Shard, n: isize) -> Result<Vec<(String, f64)>, Error> {
        let mut conn = self.conn.clone();
        Ok(conn
            .zrange_withscores(self.keys.due(shard), 0, n - 1)
            .await?)
    }
}

/// The instant of the claim to replay, from the runs hash's `/<id>` value: `c<ms>` is that
/// claim's instant; a bare number is the deadline of an expired lease (kept so by versions
/// before lease renewal), whose claim was made `lease_ms` before it.
fn replay_instant(value: &str, lease_ms: i64) -> Option<i64> {
    match value.strip_prefix('c') {
        Some(at) => at.parse::<i64>().ok(),
        None => value
            .parse::<f64>()
            .ok()
            .map(|deadline| (deadline as i64).saturating_sub(lease_ms)),
    }
}

/// Most expired leases one claim returns to the due index (the rest follow in the next).
const MAX_RECLAIM: isize = 1000;

/// The due-index score of an instant: epoch ms, rounded up, so a fire at the score is never
/// before the instant (a `delay` resolves with nanoseconds).
pub fn due_score(at: DateTime<Utc>) -> i64 {
    let ms = at.timestamp_millis();
    if at.timestamp_subsec_nanos() % 1_000_000 == 0 {
        ms
    } else {
        ms + 1
    }
}

pub(crate) fn op_id(op: &Op) -> &JobId {
    match op {
        Op::Insert { spec, .. } => &spec.id,
        Op::Cancel(id) | Op::CancelListed { id, .. } => id,
    }
}

pub(crate) fn collect(results: Vec<Option<Applied>>) -> Result<Vec<Applied>, Error> {
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| Error::Protocol("op without result".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_score_rounds_up_to_the_millisecond() {
        let exact = DateTime::<Utc>::from_timestamp_millis(1_700_000_000_123).unwrap();
        assert_eq!(due_score(exact), 1_700_000_000_123);
        let later = exact + chrono::Duration::nanoseconds(1);
        assert_eq!(due_score(later), 1_700_000_000_124);
        let before = exact - chrono::Duration::nanoseconds(1);
        assert_eq!(due_score(before), 1_700_000_000_123);
    }

    #[test]
    fn the_replayed_claim_is_the_kept_instant_or_a_legacy_deadline_less_the_lease() {
        assert_eq!(
            replay_instant("c1700000000123", 2_000),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            replay_instant("1700000030000", 30_000),
            Some(1_700_000_000_000)
        );
        assert_eq!(replay_instant("1.7e12", 0), Some(1_700_000_000_000));
        assert_eq!(replay_instant("cx", 0), None);
        assert_eq!(replay_instant("", 0), None);
    }
}
