//! Fires asked for through the API: trigger now, backfill a range, reschedule a one-shot.
//!
//! A trigger or backfilled slot is a one-shot job of its own (like a retry, see
//! [`JobSpec::retry_of`]) that fires under the original job's id, with a fire id of the
//! original's form `<job id>@<due ms>`: the scheduler and workers need nothing new, the
//! worker runs each fire id once, and the original's schedule does not move. Its id is
//! derived from the original job and the trigger key (or the slot), and its fingerprint from
//! the key (or the slot) alone, so the same request sent twice stores it once and fires once,
//! and the answer names the same fire id both times.
//!
//! A backfill fires the slots of `[from, to)` (at most [`MAX_BACKFILL`], none in the future,
//! none before the job's first due) that are not in the job's fire history; a slot older than
//! the history (its last 50 fires) that did fire is fired again under its own fire id, and
//! the worker's done marker of that fire id (kept `redis.idempotency_ttl`) keeps it from
//! running twice within that time.

use chrono::{DateTime, TimeDelta, Utc};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::{
    Applied, Error, JobRecord, Op, Store,
    describe::{FireOrigin, history_entry},
    record::JobState,
    scripts,
};
use crate::{
    job::{FireId, JobId},
    request::{JobSpec, RetryOf},
    schedule::Schedule,
};

/// Most slots one backfill fires.
pub const MAX_BACKFILL: usize = 1000;

/// Why an API fire was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No such job.
    #[error("no such job")]
    NotFound,
    /// The job was cancelled.
    #[error("the job is cancelled")]
    Cancelled,
    /// Backfill of a one-shot, or reschedule of a recurring job.
    #[error("{0}")]
    WrongKind(&'static str),
    /// The range is not acceptable.
    #[error("{0}")]
    Range(String),
    /// The job has no pending fire left to move.
    #[error("the job has no pending fire left (it is {0})")]
    Finished(&'static str),
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// What a trigger or backfill did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The fire ids this request stands for, in due order.
    pub fire_ids: Vec<String>,
    /// How many of them this call stored (the rest were stored by an earlier identical call).
    pub new: usize,
}

/// The id of the one-shot that carries an API fire of `parent`: `<parent>~<kind>~<hash>`,
/// within [`JobId::MAX_LEN`].
fn child_id(parent: &JobId, kind: &str, key: &str) -> JobId {
    let hash = xxh3_64_with_seed(key.as_bytes(), xxh3_64(parent.as_str().as_bytes()));
    let suffix = format!("~{kind}~{hash:016x}");
    let mut keep = parent.as_str().len().min(JobId::MAX_LEN - suffix.len());
    while !parent.as_str().is_char_boundary(keep) {
        keep -= 1;
    }
    let id = format!("{}{suffix}", &parent.as_str()[..keep]);
    JobId::parse(&id).unwrap_or_else(|_| JobId::derived("sked-fire", 0, hash as i64))
}

/// The one-shot that fires `parent` at `due` under fire id `parent@due`.
fn child(parent: &JobSpec, id: JobId, due: DateTime<Utc>, at: DateTime<Utc>) -> JobSpec {
    JobSpec {
        id,
        idempotency_key: None,
        schedule: Schedule::Once { at },
        first_due: at,
        retry_of: Some(RetryOf {
            job_id: parent.id.clone(),
            fire_id: FireId::new(&parent.id, due).to_string(),
            attempt: 1,
        }),
        ..parent.clone()
    }
}

/// True when `t` is one of the schedule's own slots.
fn is_slot(schedule: &Schedule, t: DateTime<Utc>) -> bool {
    t.checked_sub_signed(TimeDelta::nanoseconds(1))
        .and_then(|before| schedule.next_after(before))
        == Some(t)
}

/// The slots of `spec` in `[from, to)`, at or after its first due; `Err(n)` when there are
/// more than `max`.
pub fn slots_in(
    spec: &JobSpec,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max: usize,
) -> Result<Vec<DateTime<Utc>>, usize> {
    let start = from.max(spec.first_due);
    let mut next = match &spec.schedule {
        Schedule::Once { .. } => None,
        Schedule::Every { interval_ms, .. } => {
            let step = i64::try_from(*interval_ms).unwrap_or(i64::MAX).max(1);
            let behind = (start - spec.first_due).num_milliseconds().max(0);
            let k = (behind + step - 1) / step;
            k.checked_mul(step)
                .and_then(TimeDelta::try_milliseconds)
                .and_then(|d| spec.first_due.checked_add_signed(d))
        }
        Schedule::Cron { .. } => start
            .checked_sub_signed(TimeDelta::nanoseconds(1))
            .and_then(|before| spec.schedule.next_after(before)),
    };
    let mut out = Vec::new();
    while let Some(t) = next.filter(|t| *t < to) {
        if out.len() == max {
            return Err(max + 1);
        }
        out.push(t);
        next = spec.schedule.next_after(t);
    }
    Ok(out)
}

impl Store {
    /// Fires `id` once now, under a fire id of its own; `key` makes it idempotent.
    pub async fn trigger(&self, id: &JobId, key: &str) -> Result<Fired, Refused> {
        let record = self.live(id).await?;
        let now = Utc::now();
        // Not on a slot of the schedule: that fire id is the slot's.
        let mut due = DateTime::<Utc>::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        while is_slot(&record.spec.schedule, due) {
            due += TimeDelta::milliseconds(1);
        }
        let spec = child(&record.spec, child_id(id, "t", key), due, now);
        let fp = xxh3_64(format!("trigger\0{key}").as_bytes());
        let fired = self.store_fires(vec![(spec, fp)]).await?;
        self.note_fires(id, "triggered", FireOrigin::Trigger, &fired, now)
            .await?;
        Ok(Fired {
            fire_ids: fired.iter().map(|(f, _)| f.clone()).collect(),
            new: fired.iter().filter(|(_, new)| *new).count(),
        })
    }

    /// Fires the slots of `[from, to)` that `id` did not fire (see the module docs).
    pub async fn backfill(
        &self,
        id: &JobId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Fired, Refused> {
        let record = self.live(id).await?;
        if !record.spec.schedule.is_recurring() {
            return Err(Refused::WrongKind(
                "backfill needs a cron or every schedule",
            ));
        }
        let now = Utc::now();
        if to > now {
            return Err(Refused::Range(format!(
                "`to` {} is in the future; backfill fires past slots only",
                to.to_rfc3339()
            )));
        }
        if to <= from {
            return Err(Refused::Range("`to` must be after `from`".into()));
        }
        let slots = slots_in(&record.spec, from, to, MAX_BACKFILL).map_err(|_| {
            Refused::Range(format!(
                "the range holds more than {MAX_BACKFILL} slots; backfill it in parts"
            ))
        })?;
        let fired: std::collections::HashSet<String> = self
            .describe(id, 50)
            .await?
            .map(|d| d.history.into_iter().map(|f| f.fire_id).collect())
            .unwrap_or_default();
        let children: Vec<(JobSpec, u64)> = slots
            .into_iter()
            .filter(|slot| !fired.contains(&FireId::new(id, *slot).to_string()))
            .map(|slot| {
                let ms = slot.timestamp_millis().to_string();
                let spec = child(&record.spec, child_id(id, "b", &ms), slot, now);
                (spec, xxh3_64(format!("backfill\0{ms}").as_bytes()))
            })
            .collect();
        let stored = self.store_fires(children).await?;
        let new: Vec<(String, bool)> = stored.iter().filter(|(_, n)| *n).cloned().collect();
        self.note_fires(id, "backfilled", FireOrigin::Backfill, &new, now)
            .await?;
        Ok(Fired {
            new: new.len(),
            fire_ids: stored.into_iter().map(|(f, _)| f).collect(),
        })
    }

    /// Moves a pending one-shot to `at`. Returns the new first due.
    pub async fn reschedule(
        &self,
        id: &JobId,
        at: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Refused> {
        self.reschedule_as(id, at, None).await.map(|(at, _)| at)
    }

    /// [`Store::reschedule`], stored under fingerprint `as_fp` when given: a job already at
    /// that fingerprint was moved by the same caller before (a bulk operation resumed after a
    /// crash) and is left alone (`false`).
    pub async fn reschedule_as(
        &self,
        id: &JobId,
        at: DateTime<Utc>,
        as_fp: Option<u64>,
    ) -> Result<(DateTime<Utc>, bool), Refused> {
        for _ in 0..3 {
            let record = self.live(id).await?;
            if record.spec.schedule.is_recurring() {
                return Err(Refused::WrongKind(
                    "reschedule moves a one-shot; update a recurring job with PUT",
                ));
            }
            if !matches!(record.state, JobState::Scheduled | JobState::Paused) {
                return Err(Refused::Finished(record.state.into()));
            }
            let Some(etag) = self.etag(id).await? else {
                return Err(Refused::NotFound);
            };
            if as_fp.is_some_and(|fp| fp == etag.0) {
                return Ok((record.spec.first_due, false));
            }
            let spec = JobSpec {
                schedule: Schedule::Once { at },
                first_due: at,
                ..record.spec
            };
            let fp = xxh3_64_with_seed(
                format!("reschedule\0{}", at.timestamp_millis()).as_bytes(),
                etag.0,
            );
            let op = Op::Insert {
                spec: Box::new(spec),
                fingerprint: fp,
                if_match: Some(etag),
            };
            match self.apply(&[op]).await?.pop() {
                Some(Applied::PreconditionFailed) => continue,
                Some(_) => return Ok((at, true)),
                None => return Err(Error::Protocol("no reschedule answer".into()).into()),
            }
        }
        Err(Error::Protocol("the job kept changing while being rescheduled".into()).into())
    }

    /// The record of a job that exists and is not cancelled.
    async fn live(&self, id: &JobId) -> Result<JobRecord, Refused> {
        match self.get(id).await? {
            None => Err(Refused::NotFound),
            Some(r) if r.state == JobState::Cancelled => Err(Refused::Cancelled),
            Some(r) => Ok(r),
        }
    }

    /// Stores fire jobs; answers each one's fire id and whether this call stored it.
    async fn store_fires(&self, fires: Vec<(JobSpec, u64)>) -> Result<Vec<(String, bool)>, Error> {
        let names: Vec<String> = fires
            .iter()
            .map(|(s, _)| {
                s.retry_of
                    .as_ref()
                    .map(|r| r.fire_id.clone())
                    .unwrap_or_default()
            })
            .collect();
        let mut out = Vec::with_capacity(fires.len());
        for (chunk, names) in fires.chunks(500).zip(names.chunks(500)) {
            let ops: Vec<Op> = chunk
                .iter()
                .map(|(spec, fp)| Op::Insert {
                    spec: Box::new(spec.clone()),
                    fingerprint: *fp,
                    if_match: None,
                })
                .collect();
            let applied = self.apply(&ops).await?;
            for ((op, name), applied) in ops.iter().zip(names).zip(applied) {
                match applied {
                    Applied::Created | Applied::Updated => out.push((name.clone(), true)),
                    Applied::Duplicate { .. } => {
                        // Stored by an earlier call: its own fire id (a trigger's due differs).
                        let Op::Insert { spec, .. } = op else {
                            continue;
                        };
                        let stored = self.get(&spec.id).await?;
                        let fire = stored
                            .and_then(|r| r.spec.retry_of.map(|r| r.fire_id))
                            .unwrap_or_else(|| name.clone());
                        out.push((fire, false));
                    }
                    other => return Err(Error::Protocol(format!("fire stored as {other:?}"))),
                }
            }
        }
        Ok(out)
    }

    /// Records fires asked for through the API in the job's history and counters.
    async fn note_fires(
        &self,
        id: &JobId,
        counter: &str,
        origin: FireOrigin,
        fires: &[(String, bool)],
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let entries: Vec<String> = fires
            .iter()
            .filter(|(_, new)| *new)
            .filter_map(|(fire, _)| FireId::parse(fire).ok())
            .map(|f| history_entry(f.due_ms(), at.timestamp_millis(), origin))
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let shard = self.keys.shard_of(id);
        let mut inv = scripts::NOTE_FIRES.prepare_invoke();
        inv.key(self.keys.job(shard, id))
            .key(self.keys.counters(shard, id.as_str()))
            .key(self.keys.history(shard, id.as_str()))
            .arg(counter)
            .arg(self.ttl_ms);
        for e in entries.iter().rev() {
            inv.arg(e);
        }
        let mut cmds = self.conn.commands();
        cmds.group().invoke_script(&inv);
        self.query_scripts(&cmds).await?;
        Ok(())
    }

    /// Deletes finished jobs (dispatched or cancelled) before their records expire; answers
    /// for each whether it was purged (a pending job is left alone).
    pub async fn purge(&self, ids: &[JobId]) -> Result<Vec<bool>, Error> {
        let mut cmds = self.conn.commands();
        for id in ids {
            let shard = self.keys.shard_of(id);
            let mut inv = scripts::PURGE.prepare_invoke();
            inv.key(self.keys.done(shard))
                .key(self.keys.job(shard, id))
                .key(self.keys.counters(shard, id.as_str()))
                .key(self.keys.history(shard, id.as_str()))
                .key(super::runs::run_key(&self.keys, id))
                .key(self.keys.created(shard))
                .arg(id.as_str());
            cmds.group().invoke_script(&inv);
        }
        let replies = self.query_scripts(&cmds).await?;
        replies
            .iter()
            .map(|r| Ok(redis::from_redis_value::<i64>(r)? == 1))
            .collect()
    }

    /// The etag of a stored job.
    pub async fn etag(&self, id: &JobId) -> Result<Option<super::Etag>, Error> {
        let shard = self.keys.shard_of(id);
        let mut conn = self.conn.clone();
        let head: Vec<u8> = redis::cmd("GETRANGE")
            .arg(self.keys.job(shard, id))
            .arg(0)
            .arg(7)
            .query_async(&mut conn)
            .await?;
        Ok(super::Etag::of_record(&head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Limits, Origin, parse};

    fn spec(json: &str, now: DateTime<Utc>) -> JobSpec {
        parse(json.as_bytes(), &Limits::default(), &Origin::new(now)).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn child_ids_are_deterministic_distinct_and_bounded() {
        let parent = JobId::parse("nightly").unwrap();
        assert_eq!(child_id(&parent, "t", "k1"), child_id(&parent, "t", "k1"));
        assert_ne!(child_id(&parent, "t", "k1"), child_id(&parent, "t", "k2"));
        assert_ne!(child_id(&parent, "t", "k1"), child_id(&parent, "b", "k1"));
        assert!(
            child_id(&parent, "t", "k1")
                .as_str()
                .starts_with("nightly~t~")
        );
        let long = JobId::parse(&"é".repeat(128)).unwrap();
        let c = child_id(&long, "b", "1700000000000");
        assert!(c.as_str().len() <= JobId::MAX_LEN, "{}", c.as_str().len());
    }

    #[test]
    fn a_child_fires_under_the_parent_and_the_slot_fire_id() {
        let now = at("2026-06-10T10:00:00Z");
        let parent = spec(
            r#"{"id":"p","app":"a","cron":"0 * * * *","labels":{"x":"y"}}"#,
            now,
        );
        let slot = at("2026-06-10T08:00:00Z");
        let c = child(&parent, child_id(&parent.id, "b", "x"), slot, now);
        assert!(
            super::super::Index::of(&c).is_empty(),
            "fire jobs are in no index"
        );
        let of = c.retry_of.unwrap();
        assert_eq!(of.job_id, parent.id);
        assert_eq!(of.fire_id, "p@1781078400000");
        assert_eq!(of.attempt, 1);
        assert_eq!(c.first_due, now);
    }

    #[test]
    fn slots_of_a_range_are_the_schedule_s_own() {
        let now = at("2026-06-10T10:00:00Z");
        let cron = spec(r#"{"id":"c","app":"a","cron":"*/15 * * * *"}"#, now);
        assert_eq!(cron.first_due, at("2026-06-10T10:15:00Z"));
        let later = at("2026-06-10T11:00:00Z");
        let slots = slots_in(&cron, now, later, 10).unwrap();
        assert_eq!(
            slots,
            vec![
                at("2026-06-10T10:15:00Z"),
                at("2026-06-10T10:30:00Z"),
                at("2026-06-10T10:45:00Z")
            ]
        );
        assert_eq!(slots_in(&cron, now, later, 2), Err(3));
        let every = spec(r#"{"id":"e","app":"a","every":"20m"}"#, now);
        let slots = slots_in(&every, at("2026-06-10T10:30:00Z"), later, 10).unwrap();
        assert_eq!(
            slots,
            vec![at("2026-06-10T10:40:00Z")],
            "anchored at the first due 10:20"
        );
        assert!(is_slot(&cron.schedule, at("2026-06-10T10:30:00Z")));
        assert!(!is_slot(&cron.schedule, at("2026-06-10T10:31:00Z")));
    }
}
