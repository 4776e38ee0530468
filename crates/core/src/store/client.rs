//! [`Store`]: the Redis operations of sked, each one round trip per batch.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use redis::{
    AsyncCommands, ErrorKind, RedisError,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{
    Keys,
    record::{self, JobRecord, JobState},
    scripts,
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
                    )
            }
            _ => false,
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
    },
    /// Cancel a job.
    Cancel(JobId),
}

impl Op {
    /// An insert of `spec`, parsed from `request` (the bytes as received).
    pub fn insert(spec: JobSpec, request: &[u8]) -> Self {
        Op::Insert {
            spec: Box::new(spec),
            fingerprint: record::fingerprint(request),
        }
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

/// The Redis job store. Cheap to clone; clones share one multiplexed connection.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    keys: Keys,
    ttl_ms: u64,
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
    pub async fn connect(options: &RedisOptions) -> Result<Self, Error> {
        let client = redis::Client::open(options.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            conn,
            keys: Keys::new(options.key_prefix.clone(), options.shards),
            ttl_ms: u64::try_from(options.idempotency_ttl.get().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Key names of this store.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A connection for commands the store does not wrap.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Round trip to Redis.
    pub async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Applies a batch of ops, in order per job, in two round trips at most (one for
    /// idempotency keys, when any op has one, and one pipelined script call per shard).
    /// Safe to repeat: a repeated batch reports duplicates and changes nothing.
    pub async fn apply(&self, ops: &[Op]) -> Result<Vec<Applied>, Error> {
        let mut results: Vec<Option<Applied>> = vec![None; ops.len()];
        self.claim_idempotency_keys(ops, &mut results).await?;

        // Group the remaining ops by shard, keeping their order.
        let mut by_shard: BTreeMap<Shard, Vec<usize>> = BTreeMap::new();
        let mut encoded: Vec<Option<(String, String)>> = vec![None; ops.len()];
        for (i, op) in ops.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let id = match op {
                Op::Insert { spec, fingerprint } => {
                    let enc = record::encode(spec, *fingerprint, JobState::Scheduled).map_err(
                        |source| Error::Encode {
                            id: spec.id.clone(),
                            source,
                        },
                    )?;
                    encoded[i] = Some(enc);
                    &spec.id
                }
                Op::Cancel(id) => id,
            };
            by_shard.entry(self.keys.shard_of(id)).or_default().push(i);
        }
        if by_shard.is_empty() {
            return collect(results);
        }

        let mut pipe = redis::pipe();
        let channel = self.keys.wake_channel();
        for (shard, idxs) in &by_shard {
            let mut inv = scripts::APPLY.prepare_invoke();
            inv.key(self.keys.due(*shard))
                .key(self.keys.inflight(*shard));
            inv.arg(self.ttl_ms).arg(&channel).arg(shard.index());
            for &i in idxs {
                match &ops[i] {
                    Op::Insert { spec, .. } => {
                        let (fp, rec) = encoded[i].as_ref().expect("encoded above");
                        inv.key(self.keys.job(*shard, &spec.id));
                        inv.arg("i")
                            .arg(spec.id.as_str())
                            .arg(fp)
                            .arg(rec)
                            .arg(due_score(spec.first_due));
                    }
                    Op::Cancel(id) => {
                        inv.key(self.keys.job(*shard, id));
                        inv.arg("c").arg(id.as_str()).arg("").arg("").arg("");
                    }
                }
            }
            pipe.invoke_script(&inv);
        }
        let replies: Vec<Vec<String>> = self.query_scripts(&pipe).await?;
        for ((_, idxs), reply) in by_shard.iter().zip(replies) {
            if reply.len() != idxs.len() {
                return Err(Error::Protocol(format!(
                    "{} statuses for {} ops",
                    reply.len(),
                    idxs.len()
                )));
            }
            for (&i, status) in idxs.iter().zip(reply) {
                results[i] = Some(match status.as_str() {
                    "created" => Applied::Created,
                    "updated" => Applied::Updated,
                    "duplicate" => Applied::Duplicate {
                        existing: op_id(&ops[i]).clone(),
                    },
                    "cancelled" => Applied::Cancel(Cancelled::Cancelled),
                    "not_found" => Applied::Cancel(Cancelled::NotFound),
                    "already_cancelled" => Applied::Cancel(Cancelled::AlreadyCancelled),
                    "dispatched" => Applied::Cancel(Cancelled::Dispatched),
                    "finished" => Applied::Cancel(Cancelled::Finished),
                    other => return Err(Error::Protocol(format!("unknown status {other:?}"))),
                });
            }
        }
        collect(results)
    }

    /// `SET NX GET` for each insert whose idempotency key differs from its job id. A key that
    /// already names another job makes the op a duplicate of that job. A key naming this very
    /// job is a retry of an earlier, interrupted attempt, which goes on.
    async fn claim_idempotency_keys(
        &self,
        ops: &[Op],
        results: &mut [Option<Applied>],
    ) -> Result<(), Error> {
        let mut pipe = redis::pipe();
        let mut idxs = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if let Op::Insert { spec, .. } = op
                && let Some(key) = &spec.idempotency_key
                && key != spec.id.as_str()
            {
                pipe.cmd("SET")
                    .arg(self.keys.idempotency(key))
                    .arg(spec.id.as_str())
                    .arg("NX")
                    .arg("PX")
                    .arg(self.ttl_ms)
                    .arg("GET");
                idxs.push(i);
            }
        }
        if idxs.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let previous: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        for (i, prev) in idxs.into_iter().zip(previous) {
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

    /// Runs a pipeline of script calls, loading the scripts once if Redis lost them.
    async fn query_scripts<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        match pipe.query_async(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                for script in scripts::all() {
                    script.prepare_invoke().load_async(&mut conn).await?;
                }
                Ok(pipe.query_async(&mut conn).await?)
            }
            other => Ok(other?),
        }
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
        let (state, spec) =
            record::decode(&raw).map_err(|reason| Error::Corrupt { key, reason })?;
        let next_due = score.and_then(|ms| DateTime::<Utc>::from_timestamp_millis(ms as i64));
        Ok(Some(JobRecord {
            state,
            next_due,
            spec,
        }))
    }

    /// Number of jobs in the due index, all shards (a gauge; O(shards)).
    pub async fn due_count(&self) -> Result<u64, Error> {
        let mut pipe = redis::pipe();
        for s in 0..self.keys.shards() {
            pipe.zcard(self.keys.due(Shard(s)));
        }
        let mut conn = self.conn.clone();
        let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
        Ok(counts.into_iter().sum())
    }

    /// The earliest due entries of a shard (id, due), for inspection and tests.
    pub async fn peek_due(&self, shard: Shard, n: isize) -> Result<Vec<(String, f64)>, Error> {
        let mut conn = self.conn.clone();
        Ok(conn
            .zrange_withscores(self.keys.due(shard), 0, n - 1)
            .await?)
    }
}

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

fn op_id(op: &Op) -> &JobId {
    match op {
        Op::Insert { spec, .. } => &spec.id,
        Op::Cancel(id) => id,
    }
}

fn collect(results: Vec<Option<Applied>>) -> Result<Vec<Applied>, Error> {
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
}
