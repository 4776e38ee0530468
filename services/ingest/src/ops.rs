//! Bulk operations: act on every job a selector matches, at a bounded rate, crash-safe.
//!
//! An operation is stored in Redis (`P:op:<id>`: the resource as `GET /v1/operations/{id}`
//! shows it; `P:op:<id>:run`: the runner's position; `P:ops`: ids by creation) and run by
//! whichever ingest process holds its lease (`P:op:<id>:lease`, renewed while it runs), so a
//! kill -9 of that process hands it to the next one (the restarted one, or another replica)
//! within [`LEASE`].
//!
//! The runner walks the selector's listing ([`sked_core::store::Store::list`]) a page at a
//! time. Before acting on a page it stores the page's ids with the position before it; after,
//! the position after it and the outcome counts. A runner that takes over finds the page it
//! was acting on and acts on it again: every action is idempotent for the same operation
//! (cancel, pause and resume answer `already_…`, a trigger's key is the operation id, a
//! reschedule stores the operation's own fingerprint and skips a job that has it, purge
//! finds the job gone), so no job is acted on twice, and outcomes of that page that say
//! "already" are counted as the action's own.
//!
//! A dry run counts the matching jobs and acts on none. An operation can be cancelled
//! (`POST /v1/operations/{id}/cancel`): the runner stops before its next page. Finished
//! operations are kept [`KEEP`].

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sked_api::ops::{Operation, OperationAction, OperationEvent, OperationState};
use sked_core::{
    job::JobId,
    store::{
        self, Applied, Cancelled, Index, Op, Store,
        list::{Cursor, Filter, Kind},
        pause::Outcome,
    },
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// How long a runner's claim on an operation lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(10);
/// How long finished operations are kept.
pub const KEEP: Duration = Duration::from_secs(7 * 86_400);
/// Jobs per page: one listing, one batch of actions and two progress writes each.
const PAGE: usize = 2000;
/// Rate when the request names none, jobs per second.
pub const DEFAULT_RATE: u32 = 10_000;
/// Highest rate accepted, jobs per second.
pub const MAX_RATE: u32 = 100_000;
/// Operations the runner looks at (the newest), and that `GET /v1/operations` pages through.
const MAX_OPERATIONS: isize = 1000;

/// The runner's position in an operation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    /// Listing position after the last page done.
    cursor: Option<(i64, String)>,
    /// Ids of the page being acted on, if any.
    page: Vec<String>,
    /// Listing position after that page (`None` with `last`: it ends the listing).
    page_end: Option<(i64, String)>,
    /// That page is the last one.
    last: bool,
    /// The note of pause operations.
    note: Option<String>,
}

/// Where operations live: the store's connection and key names.
#[derive(Clone)]
pub struct Operations {
    store: Store,
    /// Wakes this process's runner when an operation is created here (others poll).
    created: Arc<tokio::sync::Notify>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Operations {
    /// Operations kept in `store`'s Redis.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            created: Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn key(&self, id: &str, part: &str) -> String {
        self.store.keys().operation(id, part)
    }

    /// Stores a new operation (state `pending`); the runner picks it up.
    pub async fn create(&self, op: &Operation, note: Option<String>) -> Result<(), store::Error> {
        let mut conn = self.store.connection();
        let progress = Progress {
            note,
            ..Progress::default()
        };
        let json = serde_json::to_string(op).map_err(|e| store::Error::Protocol(e.to_string()))?;
        let run =
            serde_json::to_string(&progress).map_err(|e| store::Error::Protocol(e.to_string()))?;
        let _: () = conn.set(self.key(&op.id, "run"), run).await?;
        let _: () = conn.set(self.key(&op.id, ""), json).await?;
        let _: () = conn
            .zadd(
                self.store.keys().operations(),
                &op.id,
                op.created_at.timestamp_millis(),
            )
            .await?;
        self.created.notify_one();
        Ok(())
    }

    /// One operation, with its cancel request applied to what it shows.
    pub async fn get(&self, id: &str) -> Result<Option<Operation>, store::Error> {
        let mut conn = self.store.connection();
        let raw: Option<String> = conn.get(self.key(id, "")).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// The newest operations first, after `before` (an id of the previous page).
    pub async fn list(
        &self,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<Operation>, Option<String>), store::Error> {
        let mut conn = self.store.connection();
        let ids: Vec<String> = conn
            .zrevrange(self.store.keys().operations(), 0, MAX_OPERATIONS - 1)
            .await?;
        let start = match before {
            Some(b) => ids.iter().position(|i| i == b).map_or(ids.len(), |p| p + 1),
            None => 0,
        };
        let mut out = Vec::new();
        for id in ids.iter().skip(start).take(limit) {
            if let Some(op) = self.get(id).await? {
                out.push(op);
            }
        }
        let next = (start + out.len() < ids.len() && out.len() == limit)
            .then(|| out.last().map(|o| o.id.clone()))
            .flatten();
        Ok((out, next))
    }

    /// Asks a running operation to stop before its next page.
    pub async fn cancel(&self, id: &str) -> Result<(), store::Error> {
        let mut conn = self.store.connection();
        let _: () = conn
            .set_options(
                self.key(id, "cancel"),
                1,
                redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ms(KEEP))),
            )
            .await?;
        Ok(())
    }

    async fn save(&self, op: &mut Operation) -> Result<(), store::Error> {
        op.updated_at = Utc::now();
        let json = serde_json::to_string(op).map_err(|e| store::Error::Protocol(e.to_string()))?;
        let mut conn = self.store.connection();
        if op.state.is_final() {
            let _: () = conn
                .set_ex(self.key(&op.id, ""), json, KEEP.as_secs())
                .await?;
            let _: () = conn.del(self.key(&op.id, "run")).await?;
        } else {
            let _: () = conn.set(self.key(&op.id, ""), json).await?;
        }
        Ok(())
    }

    async fn save_both(&self, op: &mut Operation, p: &Progress) -> Result<(), store::Error> {
        op.updated_at = Utc::now();
        let encode = |e: serde_json::Error| store::Error::Protocol(e.to_string());
        let json = serde_json::to_string(op).map_err(encode)?;
        let run = serde_json::to_string(p).map_err(encode)?;
        let mut conn = self.store.connection();
        let _: () = redis::pipe()
            .atomic()
            .set(self.key(&op.id, ""), json)
            .set(self.key(&op.id, "run"), run)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn save_progress(&self, id: &str, p: &Progress) -> Result<(), store::Error> {
        let json = serde_json::to_string(p).map_err(|e| store::Error::Protocol(e.to_string()))?;
        let mut conn = self.store.connection();
        let _: () = conn.set(self.key(id, "run"), json).await?;
        Ok(())
    }

    /// Takes or renews the lease of operation `id` for `owner`.
    async fn lease(&self, id: &str, owner: &str) -> Result<bool, store::Error> {
        let mut conn = self.store.connection();
        let key = self.key(id, "lease");
        let took: bool = redis::cmd("SET")
            .arg(&key)
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(ms(LEASE))
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
        if took {
            return Ok(true);
        }
        let holder: Option<String> = conn.get(&key).await?;
        if holder.as_deref() == Some(owner) {
            let _: () = conn.pexpire(&key, ms(LEASE) as i64).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Runs every operation that is not finished and whose lease is free, until `cancel`.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let owner = JobId::new_v7().into_string();
        loop {
            if let Err(err) = self.round(&owner, &cancel).await {
                warn!(error = %err, "bulk operations round failed; retrying");
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = self.created.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn round(&self, owner: &str, cancel: &CancellationToken) -> anyhow::Result<()> {
        let mut conn = self.store.connection();
        let ids: Vec<String> = conn
            .zrevrange(self.store.keys().operations(), 0, MAX_OPERATIONS - 1)
            .await?;
        // Oldest first: operations act in the order they were asked for.
        for id in ids.into_iter().rev() {
            let Some(op) = self.get(&id).await? else {
                continue;
            };
            if op.state.is_final() || !self.lease(&id, owner).await? {
                continue;
            }
            self.execute(op, owner, cancel)
                .await
                .with_context(|| format!("operation {id}"))?;
        }
        Ok(())
    }

    /// Carries out one operation under its lease (see the module docs).
    async fn execute(
        &self,
        mut op: Operation,
        owner: &str,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let filter = match crate::http::selector_filter(&op.selector, op.action) {
            Ok(f) => f,
            // Checked at creation; a stored one that no longer parses (an older sked's) will
            // never run: say so on the operation instead of retrying it forever.
            Err(e) => {
                let why = format!("selector: {}", e.message);
                return self.finish(&mut op, OperationState::Failed, &why).await;
            }
        };
        let mut conn = self.store.connection();
        let raw: Option<String> = conn.get(self.key(&op.id, "run")).await?;
        let mut progress: Progress = raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default();
        if op.state == OperationState::Pending {
            // A dry run counts exactly (that is its answer); a run starts at once with the
            // bound read from the index sizes, and `processed` tells the truth as it goes.
            op.estimate = if op.dry_run {
                self.count(&filter).await?
            } else {
                self.store.estimate(&filter).await?
            };
            if op.dry_run {
                return self
                    .finish(
                        &mut op,
                        OperationState::Succeeded,
                        "dry run: nothing changed",
                    )
                    .await;
            }
            op.state = OperationState::Running;
            event(&mut op, "started");
            self.save(&mut op).await?;
            info!(operation = %op.id, action = %op.action, estimate = op.estimate, "bulk operation started");
        } else {
            event(&mut op, "resumed by another runner");
            self.save(&mut op).await?;
        }
        let rate = f64::from(op.rate.unwrap_or(DEFAULT_RATE).clamp(1, MAX_RATE));
        let started = tokio::time::Instant::now();
        let mut done_here = 0u64;
        loop {
            if cancel.is_cancelled() {
                // Shutdown: the lease lapses and a runner takes it over.
                return Ok(());
            }
            if !self.lease(&op.id, owner).await? {
                warn!(operation = %op.id, "lost the lease of a bulk operation");
                return Ok(());
            }
            let stop: Option<String> = conn.get(self.key(&op.id, "cancel")).await?;
            if stop.is_some() {
                return self
                    .finish(&mut op, OperationState::Cancelled, "cancelled")
                    .await;
            }
            let resumed = !progress.page.is_empty() || progress.last;
            // The indexes of the listed jobs, so that a cancel leaves them in its own script.
            let mut listed: HashMap<String, Vec<Index>> = HashMap::new();
            if !resumed {
                let cursor = progress
                    .cursor
                    .clone()
                    .map(|(score, id)| Cursor { score, id });
                let page = self.store.list(&filter, cursor.as_ref(), PAGE).await?;
                progress.page = page
                    .jobs
                    .iter()
                    .map(|j| j.record.spec.id.to_string())
                    .collect();
                if op.action == OperationAction::Cancel {
                    listed = page
                        .jobs
                        .iter()
                        .map(|j| (j.record.spec.id.to_string(), Index::of(&j.record.spec)))
                        .collect();
                }
                progress.page_end = page.next.map(|c| (c.score, c.id));
                progress.last = progress.page_end.is_none();
                self.save_progress(&op.id, &progress).await?;
            }
            let ids = std::mem::take(&mut progress.page);
            let outcomes = self.act(&op, &progress, &ids, &mut listed).await?;
            for o in outcomes {
                let o = if resumed { settled(o) } else { o };
                *op.outcomes.entry(o.to_owned()).or_default() += 1;
            }
            op.processed += ids.len() as u64;
            done_here += ids.len() as u64;
            progress.cursor = progress.page_end.take();
            if progress.last {
                return self
                    .finish(&mut op, OperationState::Succeeded, "done")
                    .await;
            }
            // Counts and position together, so a takeover neither loses nor repeats a page.
            self.save_both(&mut op, &progress).await?;
            // Bounded rate: no faster than `rate` jobs per second since this runner began.
            let due = Duration::from_secs_f64(done_here as f64 / rate);
            tokio::time::sleep_until(started + due).await;
        }
    }

    async fn finish(
        &self,
        op: &mut Operation,
        state: OperationState,
        message: &str,
    ) -> anyhow::Result<()> {
        op.state = state;
        op.finished_at = Some(Utc::now());
        op.history.push(OperationEvent {
            at: Utc::now(),
            state,
            message: message.to_owned(),
        });
        self.save(op).await?;
        let mut conn = self.store.connection();
        let _: () = conn.del(self.key(&op.id, "lease")).await?;
        info!(operation = %op.id, state = state.as_str(), processed = op.processed, "bulk operation finished");
        Ok(())
    }

    /// How many jobs `filter` matches now.
    async fn count(&self, filter: &Filter) -> Result<u64, store::Error> {
        let mut n = 0;
        let mut cursor = None;
        loop {
            let page = self.store.list(filter, cursor.as_ref(), 1000).await?;
            n += page.jobs.len() as u64;
            match page.next {
                Some(c) => cursor = Some(c),
                None => return Ok(n),
            }
        }
    }

    /// Applies the operation's action to `ids`; one outcome label per job.
    async fn act(
        &self,
        op: &Operation,
        progress: &Progress,
        ids: &[String],
        listed: &mut HashMap<String, Vec<Index>>,
    ) -> Result<Vec<&'static str>, store::Error> {
        let ids: Vec<JobId> = ids.iter().filter_map(|i| JobId::parse(i).ok()).collect();
        let store = &self.store;
        let outcomes: Vec<&'static str> = match op.action {
            OperationAction::Cancel => {
                let ops: Vec<Op> = ids
                    .iter()
                    .map(|id| match listed.remove(id.as_str()) {
                        Some(indexes) => Op::CancelListed {
                            id: id.clone(),
                            indexes,
                        },
                        // A page acted on again after a takeover: the ids alone.
                        None => Op::Cancel(id.clone()),
                    })
                    .collect();
                store
                    .apply(&ops)
                    .await?
                    .into_iter()
                    .map(|a| match a {
                        Applied::Cancel(Cancelled::Dispatched | Cancelled::Finished) => {
                            "already_dispatched"
                        }
                        other => other.label(),
                    })
                    .collect()
            }
            OperationAction::Pause | OperationAction::Resume => {
                let calls = ids.iter().map(|id| async move {
                    match op.action {
                        OperationAction::Pause => store.pause_job(id, progress.note.clone()).await,
                        _ => store.resume_job(id).await,
                    }
                });
                let results = futures::future::join_all(calls).await;
                let mut out = Vec::with_capacity(results.len());
                for r in results {
                    let o: Outcome = r?;
                    out.push(o.into());
                }
                out
            }
            OperationAction::Trigger => {
                let calls = ids.iter().map(|id| store.trigger(id, &op.id));
                futures::future::join_all(calls)
                    .await
                    .into_iter()
                    .map(|r| match r {
                        Ok(f) if f.new > 0 => "triggered",
                        Ok(_) => "already_triggered",
                        Err(store::fires::Refused::Store(e)) if e.is_transient() => "failed",
                        Err(_) => "refused",
                    })
                    .collect()
            }
            OperationAction::Reschedule => {
                let offset = op
                    .offset
                    .as_deref()
                    .and_then(|o| parse_offset(o).ok())
                    .unwrap_or(TimeDelta::zero());
                let mut out = Vec::with_capacity(ids.len());
                for id in &ids {
                    let Some(record) = store.get(id).await? else {
                        out.push("not_found");
                        continue;
                    };
                    if Kind::of(&record.spec.schedule) != Kind::Once {
                        out.push("skipped_recurring");
                        continue;
                    }
                    let fp = xxh3_64_with_seed(
                        id.as_str().as_bytes(),
                        xxh3_64_with_seed(op.id.as_bytes(), 7),
                    );
                    let at = record.spec.first_due + offset;
                    out.push(match store.reschedule_as(id, at, Some(fp)).await {
                        Ok((_, true)) => "rescheduled",
                        Ok((_, false)) => "already_rescheduled",
                        Err(store::fires::Refused::Store(e)) => return Err(e),
                        Err(_) => "refused",
                    });
                }
                out
            }
            OperationAction::PurgeFinished => store
                .purge(&ids)
                .await?
                .into_iter()
                .map(|p| if p { "purged" } else { "already_purged" })
                .collect(),
        };
        Ok(outcomes)
    }
}

fn event(op: &mut Operation, message: &str) {
    op.history.push(OperationEvent {
        at: Utc::now(),
        state: op.state,
        message: message.to_owned(),
    });
}

/// On a page acted on again after a takeover, "already" outcomes are this operation's own.
fn settled(outcome: &'static str) -> &'static str {
    match outcome {
        "already_cancelled" => "cancelled",
        "already_paused" => "paused",
        "not_paused" => "resumed",
        "already_triggered" => "triggered",
        "already_rescheduled" => "rescheduled",
        "already_purged" => "purged",
        other => other,
    }
}

/// A reschedule offset: `+1h`, `-30m`, `2h` (humane durations, signed).
pub fn parse_offset(text: &str) -> Result<TimeDelta, String> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let d = sked_core::schedule::parse_duration(rest)?;
    let d = TimeDelta::from_std(d).map_err(|_| format!("offset `{text}` is too long"))?;
    Ok(if sign < 0 { -d } else { d })
}

/// A new operation's resource.
pub fn new_operation(req: &sked_api::ops::OperationRequest) -> Operation {
    let now = Utc::now();
    Operation {
        id: JobId::new_v7().into_string(),
        action: req.action,
        selector: req.selector.clone(),
        dry_run: req.dry_run,
        rate: req.rate,
        offset: req.offset.clone(),
        state: OperationState::Pending,
        estimate: 0,
        processed: 0,
        outcomes: BTreeMap::new(),
        created_at: now,
        updated_at: now,
        finished_at: None,
        history: vec![OperationEvent {
            at: now,
            state: OperationState::Pending,
            message: "created".into(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_signed_durations() {
        assert_eq!(parse_offset("+1h"), Ok(TimeDelta::hours(1)));
        assert_eq!(parse_offset("-30m"), Ok(TimeDelta::minutes(-30)));
        assert_eq!(parse_offset("90s"), Ok(TimeDelta::seconds(90)));
        assert!(parse_offset("soon").is_err());
    }

    #[test]
    fn a_resumed_page_counts_already_as_done() {
        assert_eq!(settled("already_cancelled"), "cancelled");
        assert_eq!(settled("not_found"), "not_found");
    }
}
