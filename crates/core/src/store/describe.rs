//! [`Store::describe`]: everything stored about one job, in one round trip to its shard (two
//! when it has a fire history): record, etag, pause, recent fires with their outcomes,
//! counters and the latest run.
//!
//! A recurring job's history holds its last 50 fires (`<due ms>:<at ms>:<origin>`, origin
//! `s` scheduled, `t` triggered, `b` backfilled); it lives while the job is pending and
//! expires with the record. Its slot history holds its last 50 slots that did not fire
//! (`<due ms>:<noted ms>:<k|x>`, skipped or excluded; at most 10 per claim, so after a long
//! outage the latest ones), for 30 days after the latest. A fire's outcome comes from the worker's run marker of its fire
//! id (runs.rs), which lives `redis.idempotency_ttl`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use redis::{Value, from_redis_value};

use super::{
    Error, Etag, JobRecord, Store,
    pause::Note,
    record::{self, JobState},
    runs::{self, RunInfo},
};
use crate::job::JobId;

/// Who asked for a fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum FireOrigin {
    /// The schedule.
    Schedule,
    /// `trigger`.
    Trigger,
    /// `backfill`.
    Backfill,
}

impl FireOrigin {
    fn code(self) -> char {
        match self {
            FireOrigin::Schedule => 's',
            FireOrigin::Trigger => 't',
            FireOrigin::Backfill => 'b',
        }
    }
}

/// Why a slot did not fire, in the slot history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum SlotOutcome {
    /// Missed, and dropped by the misfire policy (or beyond `max_runs`).
    Skipped,
    /// On a day an attached calendar excludes.
    Excluded,
}

/// One slot that did not fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Its due time.
    pub due: DateTime<Utc>,
    /// When the scheduler passed it over.
    pub at: DateTime<Utc>,
    /// Why.
    pub outcome: SlotOutcome,
}

/// One slot-history entry: the slot due at `due_ms`, passed over at `at_ms`.
pub fn slot_entry(due_ms: i64, at_ms: i64, outcome: SlotOutcome) -> String {
    let code = match outcome {
        SlotOutcome::Skipped => 'k',
        SlotOutcome::Excluded => 'x',
    };
    format!("{due_ms}:{at_ms}:{code}")
}

/// Parses the slot-history `entries` (newest first), leaving out what does not parse and
/// the same slot noted again (a claim whose lease expired is planned twice).
fn slots(entries: &[String]) -> Vec<Slot> {
    let mut seen = std::collections::HashSet::new();
    entries
        .iter()
        .filter_map(|e| {
            let (due, at, code) = split_entry(e)?;
            let outcome = match code {
                "k" => SlotOutcome::Skipped,
                "x" => SlotOutcome::Excluded,
                _ => return None,
            };
            seen.insert(due).then_some(())?;
            Some(Slot {
                due: DateTime::from_timestamp_millis(due)?,
                at: DateTime::from_timestamp_millis(at)?,
                outcome,
            })
        })
        .collect()
}

/// One history entry of `job`: a fire due at `due_ms`, produced or requested at `at_ms`.
pub fn history_entry(due_ms: i64, at_ms: i64, origin: FireOrigin) -> String {
    format!("{due_ms}:{at_ms}:{}", origin.code())
}

/// What became of a fire, as far as the worker's marker tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum FireOutcome {
    /// No worker has run it (yet, or its marker expired).
    Pending,
    /// A worker runs it now.
    Running,
    /// It succeeded.
    Succeeded,
    /// An attempt failed and went to a retry.
    Retrying,
    /// It was dead-lettered.
    Dead,
}

/// One fire of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    /// Its fire id.
    pub fire_id: String,
    /// When it was due.
    pub due: DateTime<Utc>,
    /// When the scheduler produced it (or, for a trigger or backfill, when it was asked for).
    pub at: DateTime<Utc>,
    /// Who asked for it.
    pub origin: FireOrigin,
    /// What became of it.
    pub outcome: FireOutcome,
    /// Attempts so far, when a worker ran it.
    pub attempts: Option<u32>,
}

/// Everything [`Store::describe`] reads.
#[derive(Debug, Clone)]
pub struct Described {
    /// The record. For a paused or held job, `next_due` is the due time it waits with.
    pub record: JobRecord,
    /// Its version.
    pub etag: Etag,
    /// Its own pause, when paused.
    pub pause: Option<Note>,
    /// Due, but held back because its app or tenant is paused.
    pub held: bool,
    /// Latest fires first.
    pub history: Vec<Fire>,
    /// `fired`, `missed`, `skipped`, `excluded`, `triggered`, `backfilled` (recurring jobs) plus
    /// `retried` and `dead` (from the run record).
    pub counters: BTreeMap<String, u64>,
    /// Fires of a recurring job so far (what `max_runs` counts).
    pub runs: u64,
    /// The latest run.
    pub run: Option<RunInfo>,
    /// The latest finished attempts, newest first.
    pub attempts: Vec<runs::AttemptInfo>,
    /// The latest slots that did not fire, newest first (recurring jobs).
    pub slots: Vec<Slot>,
}

impl Store {
    /// Reads everything about `id`; `history` bounds the fires returned (at most 50 kept).
    pub async fn describe(&self, id: &JobId, history: usize) -> Result<Option<Described>, Error> {
        let shard = self.keys.shard_of(id);
        let key = self.keys.job(shard, id);
        let run_key = runs::run_key(&self.keys, id);
        let mut cmds = self.conn.commands();
        cmds.group()
            .get(&key)
            .zscore(self.keys.due(shard), id.as_str())
            .zscore(self.keys.paused(shard), id.as_str())
            .zscore(self.keys.held(shard), id.as_str())
            .hget(self.keys.notes(shard), id.as_str())
            .lrange(
                self.keys.history(shard, id.as_str()),
                0,
                history.saturating_sub(1) as isize,
            )
            .hgetall(self.keys.counters(shard, id.as_str()))
            .hget(self.keys.runs(shard), id.as_str())
            .hgetall(&run_key)
            .lrange(
                runs::attempts_key(&self.keys, id),
                0,
                runs::ATTEMPTS_KEPT_MAX as isize - 1,
            )
            .lrange(self.keys.slots(shard, id.as_str()), 0, 49);
        let r = cmds.query(&self.conn).await?;
        let [
            raw,
            due,
            paused,
            held,
            note,
            hist,
            counters,
            runs,
            run,
            attempts,
            slot_entries,
        ] = <[Value; 11]>::try_from(r)
            .map_err(|r| Error::Protocol(format!("{} replies for 11", r.len())))?;
        let Some(raw): Option<Vec<u8>> = from_redis_value(&raw)? else {
            return Ok(None);
        };
        let (state, spec) = record::decode(id, &raw, &self.keyring, record::Payload::Open)
            .map_err(|e| Error::of_record(key.clone(), e))?;
        let etag = Etag::of_record(&raw).ok_or_else(|| Error::Corrupt {
            key,
            reason: "no fingerprint".into(),
        })?;
        let score = |v: &Value| -> Result<Option<f64>, Error> { Ok(from_redis_value(v)?) };
        let held_score = score(&held)?;
        let next_due = score(&due)?
            .or(score(&paused)?)
            .or(held_score)
            .and_then(|ms| DateTime::<Utc>::from_timestamp_millis(ms as i64));
        let note: Option<String> = from_redis_value(&note)?;
        let pause = match state {
            JobState::Paused => note.and_then(|n| serde_json::from_str(n.get(1..)?).ok()),
            _ => None,
        };
        let entries: Vec<String> = from_redis_value(&hist)?;
        let mut counters: BTreeMap<String, u64> =
            from_redis_value::<HashMap<String, u64>>(&counters)?
                .into_iter()
                .collect();
        let runs: Option<u64> = from_redis_value(&runs)?;
        let run_fields: HashMap<String, String> = from_redis_value(&run)?;
        let run = runs::parse_run_info(&run_key, &run_fields)?;
        if let Some(run) = &run {
            counters.insert("retried".into(), run.retried);
            counters.insert("dead".into(), run.dead);
        }
        let history = self.fires(id, &entries, run.as_ref()).await?;
        // An entry that does not parse (written by another version) is left out, not fatal.
        let attempts = from_redis_value::<Vec<String>>(&attempts)?
            .iter()
            .filter_map(|a| serde_json::from_str(a).ok())
            .collect();
        Ok(Some(Described {
            record: JobRecord {
                state,
                next_due,
                spec,
            },
            etag,
            pause,
            held: held_score.is_some(),
            history,
            counters,
            runs: runs.unwrap_or(0),
            run,
            attempts,
            slots: slots(&from_redis_value::<Vec<String>>(&slot_entries)?),
        }))
    }

    /// The fires of history `entries`, with the outcome of each from its run marker.
    async fn fires(
        &self,
        id: &JobId,
        entries: &[String],
        run: Option<&RunInfo>,
    ) -> Result<Vec<Fire>, Error> {
        let parsed: Vec<(i64, i64, FireOrigin)> = entries.iter().filter_map(|e| parse(e)).collect();
        if parsed.is_empty() {
            return Ok(Vec::new());
        }
        let fire_ids: Vec<String> = parsed
            .iter()
            .map(|(due, _, _)| format!("{id}@{due}"))
            .collect();
        let mut cmds = self.conn.commands();
        let pipe = cmds.group();
        for fire_id in &fire_ids {
            pipe.get(runs::fire_key(&self.keys, id, fire_id));
        }
        let markers = cmds.query(&self.conn).await?;
        let mut out = Vec::with_capacity(parsed.len());
        for (((due, at, origin), fire_id), marker) in parsed.into_iter().zip(fire_ids).zip(markers)
        {
            let marker: Option<String> = from_redis_value(&marker)?;
            let (outcome, attempts) = outcome(marker.as_deref(), &fire_id, run);
            let (Some(due), Some(at)) = (
                DateTime::<Utc>::from_timestamp_millis(due),
                DateTime::<Utc>::from_timestamp_millis(at),
            ) else {
                continue;
            };
            out.push(Fire {
                fire_id,
                due,
                at,
                origin,
                outcome,
                attempts,
            });
        }
        Ok(out)
    }
}

/// `<due ms>:<at ms>:<code>`, the form of history and slot-history entries.
fn split_entry(entry: &str) -> Option<(i64, i64, &str)> {
    let mut parts = entry.splitn(3, ':');
    let due = parts.next()?.parse().ok()?;
    let at = parts.next()?.parse().ok()?;
    Some((due, at, parts.next()?))
}

fn parse(entry: &str) -> Option<(i64, i64, FireOrigin)> {
    let (due, at, code) = split_entry(entry)?;
    let origin = match code {
        "s" => FireOrigin::Schedule,
        "t" => FireOrigin::Trigger,
        "b" => FireOrigin::Backfill,
        _ => return None,
    };
    Some((due, at, origin))
}

/// A fire's outcome from its run marker (`done`, `running:<attempt>:<replay>`,
/// `closed:<attempt>:<replay>`) and, for the latest fire, the run record.
fn outcome(
    marker: Option<&str>,
    fire_id: &str,
    run: Option<&RunInfo>,
) -> (FireOutcome, Option<u32>) {
    let latest = run.filter(|r| r.fire_id == fire_id);
    let attempts = |m: &str| m.split(':').nth(1).and_then(|a| a.parse().ok());
    match marker {
        Some("done") => (FireOutcome::Succeeded, latest.map(|r| r.attempts)),
        Some(m) if m.starts_with("running:") => (FireOutcome::Running, attempts(m)),
        Some(m) if m.starts_with("closed:") => match latest.map(|r| r.state) {
            Some(runs::RunState::Dead) => (FireOutcome::Dead, attempts(m)),
            _ => (FireOutcome::Retrying, attempts(m)),
        },
        _ => (FireOutcome::Pending, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_entries_round_trip() {
        for origin in [
            FireOrigin::Schedule,
            FireOrigin::Trigger,
            FireOrigin::Backfill,
        ] {
            let e = history_entry(1_700_000_000_000, 1_700_000_000_012, origin);
            assert_eq!(
                parse(&e),
                Some((1_700_000_000_000, 1_700_000_000_012, origin))
            );
        }
        assert_eq!(parse("12:x:s"), None);
        assert_eq!(parse("12:13:q"), None);
    }

    #[test]
    fn slot_entries_round_trip_and_repeats_are_dropped() {
        let entries = vec![
            slot_entry(3_000, 3_500, SlotOutcome::Excluded),
            slot_entry(2_000, 2_600, SlotOutcome::Skipped),
            slot_entry(2_000, 2_500, SlotOutcome::Skipped),
            "junk".to_owned(),
        ];
        let got = slots(&entries);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].outcome, SlotOutcome::Excluded);
        assert_eq!(got[1].due.timestamp_millis(), 2_000);
        assert_eq!(
            got[1].at.timestamp_millis(),
            2_600,
            "the newest note of a slot"
        );
    }

    #[test]
    fn outcomes_follow_the_run_marker() {
        assert_eq!(outcome(None, "j@1", None), (FireOutcome::Pending, None));
        assert_eq!(
            outcome(Some("running:2:0"), "j@1", None),
            (FireOutcome::Running, Some(2))
        );
        assert_eq!(
            outcome(Some("closed:1:0"), "j@1", None),
            (FireOutcome::Retrying, Some(1))
        );
        assert_eq!(outcome(Some("done"), "j@1", None).0, FireOutcome::Succeeded);
    }
}
