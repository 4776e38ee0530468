//! The recurring index ([`Index::Recurring`], `ix:r`): every pending cron and every job, what
//! a listing by `kind=cron|every` reads instead of every pending job. The scripts keep it
//! like the other indexes. A store written by a version without it has recurring jobs outside
//! it: [`Store::backfill_recurring`] (run by ingest at start) puts them in, and until it has
//! walked a shard, listings by kind read the state sets as before, so none is ever missed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::{Value, from_redis_value};
use tokio_util::sync::CancellationToken;

use super::{Error, Index, Store, list::MAX_EXAMINED, scripts};
use crate::job::Shard;

/// Jobs per backfill step (one page of the creation index and one script call).
const STEP: usize = 500;

/// Script calls for the firing jobs of one step before those with no claim found are placed
/// at now (100 ms apart: about 2 s).
const FIRING_ROUNDS: u32 = 20;

/// How far before the previous walk's start the next one begins: a job an older version
/// stored while that walk ran (a rolling upgrade) is seen by the walk of the next start.
const OVERLAP_MS: i64 = 60_000;

impl Store {
    /// Whether every shard's recurring index holds all its recurring jobs. One round trip
    /// until it answers true, none after.
    pub async fn recurring_ready(&self) -> Result<bool, Error> {
        if self.recurring_ready.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let mut cmds = self.conn.commands();
        for s in 0..self.keys.shards() {
            cmds.group().exists(self.keys.recurring_ready(Shard(s)));
        }
        let mut all = true;
        for v in cmds.query(&self.conn).await? {
            all &= from_redis_value::<bool>(&v)?;
        }
        if all {
            self.recurring_ready.store(true, Ordering::Relaxed);
        }
        Ok(all)
    }

    /// Puts every recurring job of the store into its shard's recurring index, [`STEP`] jobs
    /// at a time: a walk of each shard's creation index, from a minute before where the last
    /// walk began (from the start the first time), then marks the shard ready. Safe beside
    /// every other writer (each step is one script that reads the job where it is now) and
    /// when run by several replicas at once. Returns how many entries it added; stops early,
    /// with what it added so far, when `cancel` is.
    pub async fn backfill_recurring(&self, cancel: &CancellationToken) -> Result<u64, Error> {
        let mut added = 0;
        for s in 0..self.keys.shards() {
            let shard = Shard(s);
            let began = chrono::Utc::now().timestamp_millis();
            let marker = self.keys.recurring_ready(shard);
            let mut conn = self.conn.clone();
            let last: Option<i64> = redis::cmd("GET")
                .arg(&marker)
                .query_async(&mut conn)
                .await?;
            let mut score = last.map_or("-inf".to_owned(), |l| (l - OVERLAP_MS).to_string());
            let mut after = String::new();
            loop {
                if cancel.is_cancelled() {
                    return Ok(added);
                }
                let mut inv = scripts::PAGE.prepare_invoke();
                inv.key(self.keys.created(shard))
                    .arg(&score)
                    .arg(&after)
                    .arg(STEP)
                    .arg(0)
                    .arg("+inf");
                let mut cmds = self.conn.commands();
                cmds.group().invoke_script(&inv);
                let reply = self.query_scripts(&cmds).await?;
                let mut items: Vec<Vec<u8>> = match reply.into_iter().next() {
                    Some(v) => from_redis_value(&v)?,
                    None => return Err(Error::Protocol("empty page reply".into())),
                };
                if items.is_empty() {
                    return Err(Error::Protocol("empty page reply".into()));
                }
                items.remove(0);
                let ids: Vec<String> = items
                    .chunks(2)
                    .map(|p| String::from_utf8_lossy(&p[0]).into_owned())
                    .collect();
                if let Some(pair) = items.rchunks(2).next()
                    && let [id, s] = pair
                {
                    after = String::from_utf8_lossy(id).into_owned();
                    score = String::from_utf8_lossy(s).into_owned();
                }
                added += self.index_recurring(shard, &ids, cancel).await?;
                if ids.len() < STEP {
                    break;
                }
            }
            let mut conn = self.conn.clone();
            let () = redis::cmd("SET")
                .arg(&marker)
                .arg(began)
                .query_async(&mut conn)
                .await?;
        }
        Ok(added)
    }

    /// One backfill step: the recurring jobs among `ids` into the shard's index. A job firing
    /// now is placed at the due of its claim (read from the in-flight set); one that moved
    /// meanwhile is asked about again, every 100 ms, [`FIRING_ROUNDS`] times at most. One
    /// still firing with no claim found after that (a claim beyond the first
    /// [`MAX_EXAMINED`] of a herd, or a record left firing) is placed at now: its next ack
    /// moves the entry to its next due, and a listing shows it meanwhile.
    async fn index_recurring(
        &self,
        shard: Shard,
        ids: &[String],
        cancel: &CancellationToken,
    ) -> Result<u64, Error> {
        let mut added = 0;
        let mut todo: Vec<(String, String)> =
            ids.iter().map(|id| (id.clone(), String::new())).collect();
        let mut rounds = 0;
        while !todo.is_empty() {
            let (n, firing) = self.recurring_call(shard, &todo).await?;
            added += n;
            if firing.is_empty() || cancel.is_cancelled() {
                break;
            }
            rounds += 1;
            if rounds > 1 {
                // Acked and claimed again between two calls, or not found among the claims:
                // let the claims settle.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let claims = self.claimed_dues(shard).await?;
            let last = rounds >= FIRING_ROUNDS;
            let now = chrono::Utc::now().timestamp_millis().to_string();
            todo = firing
                .into_iter()
                .map(|id| {
                    let due = match claims.get(&id) {
                        Some(due) => due.clone(),
                        None if last => now.clone(),
                        None => String::new(),
                    };
                    (id, due)
                })
                .collect();
            if last {
                tracing::warn!(
                    shard = shard.0,
                    jobs = todo.len(),
                    "recurring index backfill: firing jobs with no claim found; indexed at now until their next ack"
                );
                added += self.recurring_call(shard, &todo).await?.0;
                break;
            }
        }
        Ok(added)
    }

    /// One RECURRING script call for `todo` (id, claimed due or ''): how many entries it
    /// added, and the ids of firing jobs it was given no due for.
    async fn recurring_call(
        &self,
        shard: Shard,
        todo: &[(String, String)],
    ) -> Result<(u64, Vec<String>), Error> {
        let mut inv = scripts::RECURRING.prepare_invoke();
        inv.key(self.keys.index(shard, &Index::Recurring))
            .key(self.keys.due(shard))
            .key(self.keys.paused(shard))
            .key(self.keys.held(shard));
        for (id, claimed) in todo {
            inv.key(format!("{}{id}", self.keys.job_prefix(shard)))
                .arg(id)
                .arg(claimed);
        }
        let mut cmds = self.conn.commands();
        cmds.group().invoke_script(&inv);
        match self.query_scripts(&cmds).await?.into_iter().next() {
            Some(Value::Array(mut items)) if !items.is_empty() => {
                let n: u64 = from_redis_value(&items.remove(0))?;
                Ok((n, from_redis_value::<Vec<String>>(&Value::Array(items))?))
            }
            _ => Err(Error::Protocol("malformed RECURRING reply".into())),
        }
    }

    /// Job id → due score of the shard's claimed fires (the in-flight set is as large as the
    /// claims in progress; at most [`MAX_EXAMINED`] are read, the rest asked about again).
    async fn claimed_dues(&self, shard: Shard) -> Result<HashMap<String, String>, Error> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.inflight(shard))
            .arg(0)
            .arg(MAX_EXAMINED - 1)
            .query_async(&mut conn)
            .await?;
        Ok(members
            .iter()
            .filter_map(|m| {
                let (due, id) = m.split_once('|')?;
                Some((id.to_owned(), due.to_owned()))
            })
            .collect())
    }
}
