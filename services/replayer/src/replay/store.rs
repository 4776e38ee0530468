//! A replay in Redis: the keys of the table in the module docs, the writes that persist,
//! advance and finish a replay, its [`Progress`], and its lease.

use std::{
    collections::{BTreeMap, HashSet},
    time::Duration,
};

use chrono::Utc;
use redis::AsyncCommands;
use tracing::{info, warn};

use sked_api::dlq::REPLAY_HISTORY;

use super::{Error, Progress, Replays, Spec};

/// How long a replay's lease lives without renewal: a dead replayer's replay is resumed
/// elsewhere after at most this long.
pub const LEASE: Duration = Duration::from_secs(5);
/// How long a finished replay stays readable.
pub const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);

const RENEW_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

impl Replays {
    fn key(&self, id: &str) -> String {
        format!("{}:{{replays}}:replay:{id}", self.prefix)
    }

    fn active_key(&self) -> String {
        format!("{}:{{replays}}:active", self.prefix)
    }

    fn history_key(&self) -> String {
        format!("{}:{{replays}}:history", self.prefix)
    }

    /// Adds replay `id` to the history, keeping the latest [`REPLAY_HISTORY`].
    fn remember(&self, pipe: &mut redis::Pipeline, spec: &Spec) {
        let history = self.history_key();
        pipe.zadd(&history, &spec.id, spec.created_at)
            .ignore()
            .zremrangebyrank(&history, 0, -(REPLAY_HISTORY as isize) - 1)
            .ignore();
    }

    /// Writes a replay that publishes nothing (a dry run, or nothing selected): done at once.
    pub(super) async fn save_done(&self, spec: &Spec) -> Result<(), Error> {
        let key = self.key(&spec.id);
        let mut conn = self.conn.clone();
        let json = encode(spec)?;
        let now = Utc::now().timestamp_millis();
        let mut pipe = redis::pipe();
        pipe.hset_multiple(
            &key,
            &[
                ("spec", json),
                ("status", "done".to_owned()),
                ("finished_at", now.to_string()),
            ],
        )
        .ignore()
        .pexpire(&key, ttl_ms(KEEP_FINISHED))
        .ignore();
        self.remember(&mut pipe, spec);
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Takes the lease, writes the replay to Redis and starts publishing it.
    pub(super) async fn persist_and_run(&self, spec: Spec, items: String) -> Result<(), Error> {
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
        let mut pipe = redis::pipe();
        pipe.set(format!("{key}:items"), items)
            .ignore()
            .hset_multiple(
                &key,
                &[
                    ("spec", json),
                    ("status", "running".to_owned()),
                    ("published", "0".to_owned()),
                ],
            )
            .ignore()
            .zadd(self.active_key(), &id, spec.created_at)
            .ignore();
        self.remember(&mut pipe, &spec);
        let written: Result<(), redis::RedisError> = pipe.query_async(&mut conn).await;
        if let Err(err) = written {
            self.lock_running().remove(&id);
            let _ = self.release_lease(&id).await;
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
        parse_progress(id, &fields)?.ok_or_else(|| Error::NotFound(id.to_owned()))
    }

    /// The latest replays (of [`REPLAY_HISTORY`]), newest first, that `keep` accepts, at most
    /// `limit`: the history read [`HISTORY_PAGE`] ids at a time, their hashes in one pipeline
    /// per page. Ids whose replay expired leave the history here.
    pub async fn history(
        &self,
        limit: usize,
        keep: impl Fn(&Progress) -> bool,
    ) -> Result<Vec<Progress>, Error> {
        let mut conn = self.conn.clone();
        let history = self.history_key();
        let mut out = Vec::new();
        let mut start = 0;
        while out.len() < limit && start < REPLAY_HISTORY {
            let stop = (start + HISTORY_PAGE).min(REPLAY_HISTORY) - 1;
            let ids: Vec<String> = conn
                .zrevrange(&history, start as isize, stop as isize)
                .await?;
            if ids.is_empty() {
                break;
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(self.key(id));
            }
            let all: Vec<BTreeMap<String, String>> = pipe.query_async(&mut conn).await?;
            let mut gone = Vec::new();
            for (id, fields) in ids.iter().zip(&all) {
                match parse_progress(id, fields) {
                    Ok(Some(p)) if keep(&p) && out.len() < limit => out.push(p),
                    Ok(Some(_)) => {}
                    Ok(None) => gone.push(id.as_str()),
                    // One unreadable replay does not hide the others; its own page says why.
                    Err(err) => warn!(replay.id = %id, error = %err, "replay history: skipped"),
                }
            }
            if !gone.is_empty() {
                let _: () = conn.zrem(&history, &gone).await?;
            }
            start += ids.len() - gone.len();
        }
        Ok(out)
    }

    /// The selected letters of replay `id`, as (partition, offset).
    pub(super) async fn items(&self, id: &str) -> Result<HashSet<(i32, i64)>, Error> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = conn.get(format!("{}:items", self.key(id))).await?;
        Ok(raw
            .unwrap_or_default()
            .lines()
            .filter_map(parse_position)
            .collect())
    }

    /// Starts a publishing pass of replay `id`: `already` letters were found published.
    pub(super) async fn set_already_published(&self, id: &str, already: u64) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .hset_multiple(
                self.key(id),
                &[
                    ("already_published", already.to_string()),
                    ("published", already.to_string()),
                ],
            )
            .await?;
        Ok(())
    }

    /// Adds `n` to the letters replay `id` published; a failure is only logged.
    pub(super) async fn flush_progress(&self, id: &str, n: u64) {
        if n == 0 {
            return;
        }
        let mut conn = self.conn.clone();
        if let Err(err) = conn
            .hincr::<_, _, _, ()>(self.key(id), "published", n)
            .await
        {
            warn!(error = %err, "replay progress not recorded");
        }
    }

    /// Marks replay `id` done, `missing` letters no longer in the DLQ; it expires after
    /// [`KEEP_FINISHED`].
    pub(super) async fn finish(&self, id: &str, missing: u64) -> Result<(), Error> {
        let key = self.key(id);
        let mut conn = self.conn.clone();
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
        Ok(())
    }

    /// Records why replay `id` is resuming; a failure is ignored.
    pub(super) async fn record_error(&self, id: &str, err: &Error) {
        let mut conn = self.conn.clone();
        let _: Result<(), _> = conn.hset(self.key(id), "last_error", err.to_string()).await;
    }

    /// The ids of the unfinished replays, oldest first.
    pub(super) async fn active(&self) -> Result<Vec<String>, Error> {
        let mut conn = self.conn.clone();
        Ok(conn.zrange(self.active_key(), 0, -1).await?)
    }

    /// The `status` of replay `id`.
    pub(super) async fn status(&self, id: &str) -> Result<Option<String>, Error> {
        let mut conn = self.conn.clone();
        Ok(conn.hget(self.key(id), "status").await?)
    }

    /// Removes replay `id` from the unfinished ones.
    pub(super) async fn deactivate(&self, id: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: () = conn.zrem(self.active_key(), id).await?;
        Ok(())
    }

    /// Counts a resume of replay `id`.
    pub(super) async fn count_resume(&self, id: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: () = conn.hincr(self.key(id), "resumes", 1).await?;
        Ok(())
    }

    /// Takes the lease of replay `id` if nobody holds it.
    pub(super) async fn acquire(&self, id: &str) -> Result<bool, Error> {
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

    /// Extends the lease of replay `id` if this replayer still holds it.
    pub(super) async fn renew_lease(&self, id: &str) -> Result<bool, Error> {
        self.lease_script(RENEW_SCRIPT, id).await
    }

    /// Drops the lease of replay `id` if this replayer holds it.
    pub(super) async fn release_lease(&self, id: &str) -> Result<bool, Error> {
        self.lease_script(RELEASE_SCRIPT, id).await
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
}

/// Ids of the history read per round trip.
const HISTORY_PAGE: usize = 100;

/// A replay's progress from its hash; `None` when there is none (unknown or expired).
fn parse_progress(id: &str, fields: &BTreeMap<String, String>) -> Result<Option<Progress>, Error> {
    let Some(spec) = fields.get("spec") else {
        return Ok(None);
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
    Ok(Some(Progress {
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
    }))
}

/// `partition:offset`.
pub(super) fn parse_position(s: &str) -> Option<(i32, i64)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse() {
        assert_eq!(parse_position("2:17"), Some((2, 17)));
        assert_eq!(parse_position("x:1"), None);
        assert_eq!(parse_position(""), None);
    }
}
