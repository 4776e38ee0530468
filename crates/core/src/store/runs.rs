//! Run state of fired jobs, written by workers: what makes a redelivered fire effectively-once.
//!
//! Two keys per job, both in the job's shard (same hash tag, so one script touches one slot):
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:{sN}:fire:<fire id>` | string, PX | `running:<attempt>:<replay>` while a worker holds the run's lease; `done` after a success; `closed:<attempt>:<replay>` once that attempt's failure was handed over (retry or DLQ record acknowledged) |
//! | `P:{sN}:run:<job id>` | hash, TTL | the job's latest run: `state`, `attempts`, `last_error`, `last_duration_ms`, `fire_id`, `updated_at` (epoch ms); and how many attempts went to a retry (`retrying`) or to the DLQ (`dead`) while the hash lived |
//! | `P:{sN}:attempts:<job id>` | list, TTL | the job's latest `worker.attempts_kept` (at most [`ATTEMPTS_KEPT_MAX`]) finished attempts, newest first, each an [`AttemptInfo`] as JSON (outcome, start, duration, error, trace id, worker, the fire record's headers) |
//!
//! Protocol of one execution ([`Store::begin_run`] then [`Store::finish_run`]):
//! - `done` → [`Begin::AlreadyDone`]: the record is acknowledged without running the handler;
//! - `running:…` with a live lease → [`Begin::RunningElsewhere`]: wait for the lease, ask again;
//! - `closed:a:r` and this record is not newer (replay count, then attempt) →
//!   [`Begin::AlreadyDone`]: a redelivery of an attempt whose retry or dead letter is out;
//! - otherwise the lease is taken and [`Begin::Run`] returned.
//!
//! Every key has a TTL (`redis.idempotency_ttl` for markers and run info; the lease for
//! `running`), so nothing grows without bound.

use std::{collections::HashMap, sync::LazyLock, time::Duration};

use chrono::{DateTime, Utc};
use redis::Script;
use serde::Serialize;

use super::{Error, Keys, Store};
use crate::job::JobId;

/// Takes a run's lease unless the fire is done, closed for this attempt, or leased elsewhere.
///
/// KEYS: fire, run. ARGV: attempt, replay, lease ms, now ms, fire id, ttl ms.
/// Returns `{status, remaining lease ms}`, status `run` | `done` | `running`.
static BEGIN: LazyLock<Script> = LazyLock::new(|| Script::new(BEGIN_LUA));

const BEGIN_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
local attempt = tonumber(ARGV[1])
local replay = tonumber(ARGV[2])
if v then
  if v == 'done' then return {'done', 0} end
  local kind, a, r = string.match(v, '^(%a+):(%d+):(%d+)$')
  if kind == 'running' then
    return {'running', redis.call('PTTL', KEYS[1])}
  end
  if kind == 'closed' then
    a = tonumber(a)
    r = tonumber(r)
    if replay < r or (replay == r and attempt <= a) then return {'done', 0} end
  end
end
redis.call('SET', KEYS[1], 'running:' .. attempt .. ':' .. replay, 'PX', ARGV[3])
redis.call('HSET', KEYS[2], 'state', 'running', 'attempts', attempt, 'fire_id', ARGV[5],
  'updated_at', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {'run', 0}
"#;

/// Records the end of a run: `done` or `closed:<attempt>:<replay>`, the run info, and the
/// attempt at the head of the job's attempts.
///
/// KEYS: fire, run, attempts. ARGV: state, attempt, replay, now ms, duration ms, error (`''` =
/// none), ttl ms, fire id, attempt JSON, attempts kept.
static FINISH: LazyLock<Script> = LazyLock::new(|| Script::new(FINISH_LUA));

const FINISH_LUA: &str = r#"
if ARGV[1] == 'succeeded' then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[7])
else
  redis.call('SET', KEYS[1], 'closed:' .. ARGV[2] .. ':' .. ARGV[3], 'PX', ARGV[7])
end
redis.call('HSET', KEYS[2], 'state', ARGV[1], 'attempts', ARGV[2], 'fire_id', ARGV[8],
  'updated_at', ARGV[4], 'last_duration_ms', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'last_error', ARGV[6]) end
if ARGV[1] == 'retrying' or ARGV[1] == 'dead' then redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end
redis.call('PEXPIRE', KEYS[2], ARGV[7])
local keep = tonumber(ARGV[10])
if keep > 0 then
  redis.call('LPUSH', KEYS[3], ARGV[9])
  redis.call('LTRIM', KEYS[3], 0, keep - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
end
return 1
"#;

/// Longest `last_error` kept, in bytes.
const MAX_ERROR_BYTES: usize = 1024;
/// Most finished attempts kept per job (`worker.attempts_kept`, default 20).
pub use crate::config::ATTEMPTS_KEPT_MAX;
/// Most headers kept of an attempt's fire record.
const MAX_HEADERS: usize = 32;
/// Longest header value kept, in bytes.
const MAX_HEADER_BYTES: usize = 256;

pub use sked_api::jobs::AttemptInfo;

/// What a worker knows of an attempt besides its outcome ([`Store::finish_run`]).
#[derive(Debug, Clone, Default)]
pub struct AttemptDetail {
    /// When the handler was called.
    pub started_at: DateTime<Utc>,
    /// The W3C `traceparent` the attempt ran under.
    pub traceparent: Option<String>,
    /// The worker's host name.
    pub worker: Option<String>,
    /// The fire record's headers, in order (cut to 32, values to 256 bytes).
    pub headers: Vec<(String, String)>,
    /// How many attempts of the job to keep (`worker.attempts_kept`); 0 records none.
    pub keep: usize,
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The trace id of a W3C `traceparent`, as 32 lowercase hex digits, by the parser the
/// services propagate with ([`crate::trace::trace_id`]); read case-blind (W3C writes
/// lowercase, and every `traceparent` sked sends is).
fn trace_id(traceparent: &str) -> Option<String> {
    crate::trace::trace_id(&traceparent.to_ascii_lowercase()).map(|t| t.to_string())
}

/// State of a job's latest run.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RunState {
    /// A worker runs it now.
    Running,
    /// The handler succeeded.
    Succeeded,
    /// The handler failed transiently; a retry is scheduled.
    Retrying,
    /// Dead-lettered: permanent error, attempts exhausted, or no handler.
    Dead,
}

/// What a worker may do with a fire ([`Store::begin_run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// The lease is ours: run the handler.
    Run,
    /// The fire already succeeded, or this attempt's failure was already handed over:
    /// acknowledge the record without running.
    AlreadyDone,
    /// Another worker holds the lease; ask again after `retry_in`.
    RunningElsewhere {
        /// Remaining lease.
        retry_in: Duration,
    },
}

/// One run to begin or finish.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The job.
    pub job_id: &'a JobId,
    /// The fire.
    pub fire_id: &'a str,
    /// Execution attempt (1 = first).
    pub attempt: u32,
    /// Times the fire was replayed from the DLQ (0 = never).
    pub replay: u32,
}

/// A job's latest run, as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunInfo {
    /// State.
    pub state: RunState,
    /// Executions of the fire so far (the attempt number of the latest).
    pub attempts: u32,
    /// Error of the latest failed execution.
    pub last_error: Option<String>,
    /// Duration of the latest finished execution, in milliseconds.
    pub last_duration_ms: Option<u64>,
    /// The fire this is about.
    pub fire_id: String,
    /// When the state last changed.
    pub updated_at: Option<DateTime<Utc>>,
    /// Failed attempts handed to a retry, while this run record lived.
    #[serde(skip)]
    pub retried: u64,
    /// Fires dead-lettered, while this run record lived.
    #[serde(skip)]
    pub dead: u64,
}

/// `P:{sN}:fire:<fire id>` of `job`'s shard.
pub fn fire_key(keys: &Keys, job: &JobId, fire_id: &str) -> String {
    format!("{}fire:{fire_id}", shard_prefix(keys, job))
}

/// `P:{sN}:run:<job id>`.
pub fn run_key(keys: &Keys, job: &JobId) -> String {
    format!("{}run:{}", shard_prefix(keys, job), job.as_str())
}

/// `P:{sN}:attempts:<job id>`.
pub fn attempts_key(keys: &Keys, job: &JobId) -> String {
    format!("{}attempts:{}", shard_prefix(keys, job), job.as_str())
}

/// `P:{sN}:`, derived from the job key prefix (`P:{sN}:j:`) so keys.rs stays the one builder.
fn shard_prefix(keys: &Keys, job: &JobId) -> String {
    let jobs = keys.job_prefix(keys.shard_of(job));
    jobs.strip_suffix("j:").unwrap_or(&jobs).to_owned()
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store {
    /// Asks to run `run` under a lease of `lease` (see the module docs).
    pub async fn begin_run(&self, run: Run<'_>, lease: Duration) -> Result<Begin, Error> {
        let mut conn = self.conn.clone();
        let (status, pttl): (String, i64) = BEGIN
            .key(fire_key(&self.keys, run.job_id, run.fire_id))
            .key(run_key(&self.keys, run.job_id))
            .arg(run.attempt)
            .arg(run.replay)
            .arg(ms(lease))
            .arg(now_ms())
            .arg(run.fire_id)
            .arg(self.ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        match status.as_str() {
            "run" => Ok(Begin::Run),
            "done" => Ok(Begin::AlreadyDone),
            "running" => Ok(Begin::RunningElsewhere {
                retry_in: Duration::from_millis(u64::try_from(pttl).unwrap_or(0)),
            }),
            other => Err(Error::Protocol(format!("unknown begin status {other:?}"))),
        }
    }

    /// Records the end of `run`: `state` is [`RunState::Succeeded`] (marks the fire done),
    /// or [`RunState::Retrying`] / [`RunState::Dead`] once the retry or dead letter is
    /// acknowledged by Kafka (closes this attempt). The attempt, with `detail`, goes to the
    /// head of the job's attempts.
    pub async fn finish_run(
        &self,
        run: Run<'_>,
        state: RunState,
        duration: Duration,
        error: Option<&str>,
        detail: &AttemptDetail,
    ) -> Result<(), Error> {
        let error = cut(error.unwrap_or_default(), MAX_ERROR_BYTES);
        let state: &str = state.into();
        let now = now_ms();
        let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let attempt = AttemptInfo {
            fire_id: run.fire_id.to_owned(),
            attempt: run.attempt,
            replay: run.replay,
            outcome: state.to_owned(),
            started_at: detail.started_at,
            finished_at: DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default(),
            duration_ms,
            error: (!error.is_empty()).then(|| error.to_owned()),
            trace_id: detail.traceparent.as_deref().and_then(trace_id),
            worker: detail.worker.clone().filter(|w| !w.is_empty()),
            headers: detail
                .headers
                .iter()
                .take(MAX_HEADERS)
                .map(|(k, v)| {
                    (
                        cut(k, MAX_HEADER_BYTES).to_owned(),
                        cut(v, MAX_HEADER_BYTES).to_owned(),
                    )
                })
                .collect(),
        };
        let attempt = if detail.keep == 0 {
            String::new()
        } else {
            serde_json::to_string(&attempt).map_err(|e| Error::Protocol(e.to_string()))?
        };
        let mut conn = self.conn.clone();
        let _: i64 = FINISH
            .key(fire_key(&self.keys, run.job_id, run.fire_id))
            .key(run_key(&self.keys, run.job_id))
            .key(attempts_key(&self.keys, run.job_id))
            .arg(state)
            .arg(run.attempt)
            .arg(run.replay)
            .arg(now)
            .arg(duration_ms)
            .arg(error)
            .arg(self.ttl_ms)
            .arg(run.fire_id)
            .arg(attempt)
            .arg(detail.keep.min(ATTEMPTS_KEPT_MAX))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The latest run of a job, if any worker ran it within `redis.idempotency_ttl`.
    pub async fn run_info(&self, id: &JobId) -> Result<Option<RunInfo>, Error> {
        let key = run_key(&self.keys, id);
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut conn)
            .await?;
        parse_run_info(&key, &fields)
    }
}

/// A run hash as read (`HGETALL`); `None` when empty.
pub(crate) fn parse_run_info(
    key: &str,
    fields: &HashMap<String, String>,
) -> Result<Option<RunInfo>, Error> {
    if fields.is_empty() {
        return Ok(None);
    }
    let corrupt = |reason: String| Error::Corrupt {
        key: key.to_owned(),
        reason,
    };
    let count = |name: &str| fields.get(name).and_then(|n| n.parse().ok()).unwrap_or(0);
    let state = fields
        .get("state")
        .ok_or_else(|| corrupt("no state".into()))?
        .parse::<RunState>()
        .map_err(|e| corrupt(format!("bad state: {e}")))?;
    Ok(Some(RunInfo {
        state,
        attempts: fields
            .get("attempts")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        last_error: fields.get("last_error").cloned(),
        last_duration_ms: fields.get("last_duration_ms").and_then(|d| d.parse().ok()),
        fire_id: fields.get("fire_id").cloned().unwrap_or_default(),
        updated_at: fields
            .get("updated_at")
            .and_then(|t| t.parse().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        retried: count("retrying"),
        dead: count("dead"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_keys_share_the_job_shard_hash_tag() {
        let keys = Keys::new("sked", 16);
        let id = JobId::parse("order-1").unwrap();
        let tag = keys.shard_of(&id).tag();
        let fire = fire_key(&keys, &id, "order-1@1700000000000");
        let run = run_key(&keys, &id);
        assert_eq!(fire, format!("sked:{tag}:fire:order-1@1700000000000"));
        assert_eq!(run, format!("sked:{tag}:run:order-1"));
        assert_eq!(
            attempts_key(&keys, &id),
            format!("sked:{tag}:attempts:order-1")
        );
    }

    #[test]
    fn trace_ids_come_from_valid_traceparents_only() {
        assert_eq!(
            trace_id("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id("00-abc-00f067aa0ba902b7-01"), None);
        assert_eq!(trace_id("garbage"), None);
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
    }
}
