//! Planning one claimed job: which fires to produce now, and when the job is due next. Pure: no
//! IO, no clock (`now` is an input).
//!
//! # Due times, misfires and jitter
//!
//! Each fire of a job has a *due time*: its scheduled time, plus the job's jitter if it has one.
//! A job fires once a due time has passed, never before. A due time that passed more than
//! `scheduler.misfire_threshold` (default 5s) before the scheduler gets to it, because the
//! scheduler was down or behind, is *missed*.
//!
//! - A one-shot job (`run_at`, `delay`) always fires, however late; a late fire is counted as
//!   missed.
//! - A recurring job (`cron`, `every`) fires every passed due time that is not missed. Its
//!   `misfire` policy decides about the missed ones:
//!   - `fire_once` (default): they collapse into one fire. When a due time that is not missed
//!     fires in the same round, that fire stands for them; otherwise the latest missed one fires.
//!   - `skip`: none of them fires.
//!   - `fire_all` (`{"fire_all": {"cap": N}}`, N = 100 when not given): the oldest N fire,
//!     oldest first; the others do not.
//!
//!   The job then continues with its first due time that has not passed: lateness never shifts
//!   the schedule.
//! - `max_runs` counts fires. When it is reached the job ends; due times beyond it do not fire.
//! - A job claimed again after its lease expired (the scheduler that had it may have produced
//!   its fires, then died or stalled before the ack) is planned again as that claim planned
//!   it: the firing loop passes the instant of the expired claim as `now` (see
//!   `Firing::planned_at`), so the same slots fire again under the same fire ids and count
//!   once each, and `max_runs` holds even when that claim fired several slots. When that
//!   instant is not known (`Input::refire`), the claimed slot is not a misfire: it fires again
//!   under its own fire id whatever the policy, and counts once, so a later slot never stands
//!   in for a fire that may be out already.
//!
//! A slot of a recurring job on a day that one of its calendars excludes (see
//! [`sked_core::schedule::Calendar`]) does not fire and is counted as *excluded* (not as missed
//! or skipped, and not towards `max_runs`); the slot after it is looked at as usual. A claim
//! after an expired lease fires its slot again even if a calendar excludes it by now (it may
//! be out already).
//!
//! Due times that do not fire are counted as *skipped*. Each fire is identified by its due time
//! (the fire id is the job id and the due time in epoch milliseconds), so a fire that is planned
//! again after a crash keeps its id.
//!
//! With `jitter` J, each scheduled time t is due at t + d, where d is between 0 and J
//! milliseconds and derived from the job id and t: every fire of a job gets its own delay, and
//! the same one each time it is planned. The delay never accumulates. J must be shorter than the
//! shortest gap between two scheduled times of the job (for `every`, the interval); otherwise
//! fires may be attributed to the wrong scheduled time. The first fire of a job carries no
//! jitter.
//!
//! One round looks at no more than [`MAX_MISSED`] missed due times, plus the latest one. After a
//! longer outage of a fast schedule (`* * * * * *` down for more than a day), the missed due
//! times between the first [`MAX_MISSED`] and the latest are passed over: they neither fire nor
//! count as missed or skipped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sked_core::schedule::{Calendar, Misfire, Schedule, excluded_by};
use sked_core::store::due_score;
use xxhash_rust::xxh3::xxh3_64;

/// Most missed due times one plan enumerates before jumping to the latest missed one (see the
/// module doc).
pub const MAX_MISSED: u64 = 100_000;

/// Most due times one plan enumerates in all, so also most fires. Reached only when the
/// preconditions do not hold (jitter not shorter than the schedule's period, or a misfire
/// threshold of about [`MAX_MISSED`] periods); the plan then stops there and `next` is the first
/// due time not looked at, which has passed already: the job is claimed again at once and
/// planning continues.
const MAX_SLOTS: u64 = 2 * MAX_MISSED;

/// Most not-fired slots one plan names ([`Plan::not_fired`]): the latest ones. The counts
/// stay exact.
pub const MAX_NOT_FIRED: usize = 10;

/// Why a slot did not fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFired {
    /// Missed, and dropped by the misfire policy (or beyond `max_runs`).
    Skipped,
    /// On a day an attached calendar excludes.
    Excluded,
}

/// What to do with one claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Fires to produce now, each identified by its due instant (epoch ms, jitter included):
    /// the fire id is derived from it. Oldest first; each is at or before `now`.
    pub fires: Vec<i64>,
    /// Due times that do not fire: missed ones the policy drops (`skip`, beyond the `fire_all`
    /// cap, collapsed by `fire_once`), and any beyond `max_runs`.
    pub skipped: u64,
    /// Due times that were missed (late by more than the misfire threshold), fired or not.
    pub missed: u64,
    /// Due times on days an attached calendar excludes (not fired).
    pub excluded: u64,
    /// The latest [`MAX_NOT_FIRED`] of the skipped and excluded due times, oldest first, for
    /// the job's slot history.
    pub not_fired: Vec<(i64, NotFired)>,
    /// The next due-index score (epoch ms, jitter included), after `now`; `None` when the job
    /// has no fire left (one-shot, `end_at` passed, `max_runs` reached). Not after `now` only
    /// when the claimed score itself was not due yet (it is returned unchanged), or in the
    /// degenerate case where a plan stops after `2 * MAX_MISSED` due times.
    pub next: Option<i64>,
}

/// Everything [`plan`] needs to know about one claimed job.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The job's schedule.
    pub schedule: &'a Schedule,
    /// The job's id (seeds the jitter).
    pub job_id: &'a str,
    /// The job's first scheduled time (`JobSpec::first_due`). It anchors the grid of an `every`
    /// schedule, so that the jitter can be taken off a claimed score; unused otherwise.
    pub first_due: DateTime<Utc>,
    /// The due-index score the job was claimed with (epoch ms): the due time of its oldest
    /// pending fire, jitter included.
    pub claimed_score: i64,
    /// Fires produced for the job before this claim (what `max_runs` counts).
    pub runs_so_far: u64,
    /// The present.
    pub now: DateTime<Utc>,
    /// A due time passed longer ago than this is missed.
    pub misfire_threshold: Duration,
    /// The claim follows an expired lease: the claimed slot fires again (it may be out already,
    /// under the same fire id), late or not, and counts for `max_runs`.
    pub refire: bool,
    /// The job's calendars that exist, with their names (empty: none attached).
    pub calendars: &'a [(String, Arc<Calendar>)],
}

/// Decides what to fire for a claimed job and where it goes next; see the module doc.
///
/// A claimed score after `now` (a clock stepped back) fires nothing and keeps the job due at
/// that score (`next == Some(claimed_score)`).
pub fn plan(input: &Input<'_>) -> Plan {
    let now_ms = input.now.timestamp_millis();
    let score = input.claimed_score;
    if score > now_ms {
        return Plan {
            fires: Vec::new(),
            skipped: 0,
            missed: 0,
            excluded: 0,
            not_fired: Vec::new(),
            next: Some(score),
        };
    }
    // A due time (whole ms) is missed when it is before `now - threshold`, that is before this
    // instant rounded up.
    let late_below = TimeDelta::from_std(input.misfire_threshold)
        .ok()
        .and_then(|threshold| input.now.checked_sub_signed(threshold))
        .map_or(i64::MIN, due_score);
    let one_shot = || Plan {
        fires: vec![score],
        skipped: 0,
        missed: u64::from(score < late_below),
        excluded: 0,
        not_fired: Vec::new(),
        next: None,
    };
    if !input.schedule.is_recurring() {
        return one_shot();
    }
    let slots = Slots {
        schedule: input.schedule,
        job_id: input.job_id,
        jitter: input
            .schedule
            .jitter_ms()
            .unwrap_or(0)
            .min(i64::MAX.unsigned_abs()),
        calendars: input.calendars,
    };
    let Some(slot) = slots.claimed_slot(score, input.first_due) else {
        // A score outside chrono's range: not a real schedule; fire it and stop.
        return one_shot();
    };
    let due = slots.walk(
        slot,
        score,
        now_ms,
        late_below,
        input.schedule.misfire(),
        input.refire,
    );
    apply(due, input.schedule, input.runs_so_far)
}

/// The scheduled times ("slots") of one recurring job and their due scores.
struct Slots<'a> {
    schedule: &'a Schedule,
    job_id: &'a str,
    /// Jitter bound in ms (0: none), clamped so that a delay fits an `i64`.
    jitter: u64,
    /// Attached calendars.
    calendars: &'a [(String, Arc<Calendar>)],
}

/// The due times of one plan, as enumerated by [`Slots::walk`], before `max_runs`.
struct Due {
    /// The claimed slot, fired again after an expired lease whatever its lateness.
    refired: Option<i64>,
    /// Missed due times chosen by the policy to fire, oldest first.
    missed_fires: Vec<i64>,
    /// Missed due times.
    missed: u64,
    /// Due times not missed, oldest first (they always fire).
    on_time: Vec<i64>,
    /// Due times a calendar excludes.
    excluded: u64,
    /// The latest missed and excluded due times (at most [`MAX_NOT_FIRED`] of each), oldest
    /// first.
    recent_missed: VecDeque<i64>,
    recent_excluded: VecDeque<i64>,
    /// The score of the first slot not due yet (or not looked at); `None` if the schedule ends.
    next: Option<i64>,
}

impl Slots<'_> {
    /// The due score of `slot`: its instant in ms (rounded up) plus its jitter.
    fn score(&self, slot: DateTime<Utc>) -> i64 {
        let slot_ms = due_score(slot);
        slot_ms.saturating_add(self.delay(slot_ms))
    }

    /// The jitter of the slot at `slot_ms`: deterministic, in `0..=self.jitter`.
    fn delay(&self, slot_ms: i64) -> i64 {
        if self.jitter == 0 {
            return 0;
        }
        let hash = xxh3_64(format!("{}@{slot_ms}", self.job_id).as_bytes());
        // `jitter` is at most i64::MAX, so the remainder fits.
        i64::try_from(hash % (self.jitter + 1)).unwrap_or(i64::MAX)
    }

    /// The slot the claimed `score` belongs to: without jitter, the score itself; with jitter
    /// J, the slot in `[score - J, score]` (unique when J is shorter than the period), or the
    /// score itself when there is none (a score from an older version of the schedule).
    ///
    /// A cron slot can be found with `next_after`; an `every` slot needs the grid's anchor.
    fn claimed_slot(&self, score: i64, first_due: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let at_score = DateTime::from_timestamp_millis(score)?;
        if self.jitter == 0 {
            return Some(at_score);
        }
        let jitter = i64::try_from(self.jitter).unwrap_or(i64::MAX);
        let found = match *self.schedule {
            Schedule::Every { interval_ms, .. } => {
                // The grid of an `every` schedule is first_due + k * interval (whole ms), and
                // `due_score` of a grid point is due_score(first_due) + k * interval.
                let anchor = due_score(first_due);
                let interval = i64::try_from(interval_ms).unwrap_or(i64::MAX).max(1);
                score
                    .checked_sub(anchor)
                    .filter(|behind| *behind >= 0)
                    .map(|behind| score - behind % interval)
                    .filter(|slot_ms| score - slot_ms <= jitter)
                    .and_then(DateTime::from_timestamp_millis)
            }
            _ => score
                .checked_sub(jitter)
                .and_then(|ms| ms.checked_sub(1))
                .and_then(DateTime::from_timestamp_millis)
                .and_then(|before| self.schedule.next_after(before))
                .filter(|slot| due_score(*slot) <= score),
        };
        Some(found.unwrap_or(at_score))
    }

    /// The last slot at or before `target`, given a slot `from <= target`.
    fn last_at_or_before(&self, from: DateTime<Utc>, target: DateTime<Utc>) -> DateTime<Utc> {
        if let Schedule::Every { interval_ms, .. } = *self.schedule {
            // On the grid: `from` plus whole intervals.
            let interval = i64::try_from(interval_ms).unwrap_or(i64::MAX).max(1);
            let span = (target - from).num_milliseconds();
            return TimeDelta::try_milliseconds(span - span % interval)
                .and_then(|delta| from.checked_add_signed(delta))
                .unwrap_or(from);
        }
        // Bisect on "some slot lies in (x, target]", true at `from - 1 ms`, false at `target`.
        let has_slot = |x: i64| {
            DateTime::from_timestamp_millis(x)
                .and_then(|x| self.schedule.next_after(x))
                .is_some_and(|slot| slot <= target)
        };
        let (mut lo, mut hi) = (from.timestamp_millis() - 1, target.timestamp_millis());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if has_slot(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        DateTime::from_timestamp_millis(lo)
            .and_then(|lo| self.schedule.next_after(lo))
            .filter(|slot| *slot <= target)
            .unwrap_or(from)
    }

    /// Enumerates the due slots from the claimed one (`slot`, due at `score`) on: those due at
    /// or before `now_ms`, split into missed (due before `late_below`) and on time, and keeps
    /// what `policy` needs.
    fn walk(
        &self,
        mut slot: DateTime<Utc>,
        mut score: i64,
        now_ms: i64,
        late_below: i64,
        policy: Misfire,
        refire: bool,
    ) -> Due {
        let keep = match policy {
            Misfire::FireAll { cap } => u64::from(cap).min(MAX_MISSED),
            Misfire::FireOnce | Misfire::Skip => 0,
        };
        let mut due = Due {
            refired: None,
            missed_fires: Vec::new(),
            missed: 0,
            on_time: Vec::new(),
            excluded: 0,
            recent_missed: VecDeque::new(),
            recent_excluded: VecDeque::new(),
            next: None,
        };
        let mut latest_missed = None;
        let mut seen: u64 = 0;
        let mut jumped = false;
        loop {
            if score > now_ms {
                due.next = Some(score);
                break;
            }
            if seen == MAX_SLOTS {
                // Degenerate input: stop here; the job is due again at once.
                due.next = Some(score);
                break;
            }
            seen += 1;
            if refire && seen == 1 {
                due.refired = Some(score);
            } else if excluded_by(self.calendars, slot).is_some() {
                due.excluded += 1;
                keep_latest(&mut due.recent_excluded, score, MAX_NOT_FIRED);
            } else if score < late_below {
                due.missed += 1;
                // One more than named: `fire_once` may fire the latest.
                keep_latest(&mut due.recent_missed, score, MAX_NOT_FIRED + 1);
                latest_missed = Some(score);
                if (due.missed_fires.len() as u64) < keep {
                    due.missed_fires.push(score);
                }
            } else {
                due.on_time.push(score);
            }
            let mut following = self.schedule.next_after(slot);
            if due.missed == MAX_MISSED && !jumped {
                jumped = true;
                // Slots at or before `late_below - jitter - 1 ms` are missed whatever their
                // jitter: jump to the last of them (the latest missed slot, which `fire_once`
                // fires), passing over the ones in between.
                let target = late_below
                    .checked_sub(i64::try_from(self.jitter).unwrap_or(i64::MAX))
                    .and_then(|ms| ms.checked_sub(1))
                    .and_then(DateTime::from_timestamp_millis);
                if let Some(target) = target.filter(|target| *target > slot) {
                    let last = self.last_at_or_before(slot, target);
                    if last > slot {
                        following = Some(last);
                    }
                }
            }
            let Some(next_slot) = following else { break };
            slot = next_slot;
            score = self.score(slot);
        }
        if policy == Misfire::FireOnce && due.on_time.is_empty() {
            due.missed_fires.extend(latest_missed);
        }
        due
    }
}

/// Pushes `score` to `recent`, keeping the latest `cap`.
fn keep_latest(recent: &mut VecDeque<i64>, score: i64, cap: usize) {
    if recent.len() == cap {
        recent.pop_front();
    }
    recent.push_back(score);
}

/// Turns the enumerated due times into a plan, honouring `max_runs`.
fn apply(due: Due, schedule: &Schedule, runs_so_far: u64) -> Plan {
    let Due {
        refired,
        missed_fires,
        missed,
        on_time,
        excluded,
        recent_missed,
        recent_excluded,
        mut next,
    } = due;
    // The latest missed ones the policy did not choose to fire.
    let mut not_fired: Vec<(i64, NotFired)> = recent_missed
        .into_iter()
        .filter(|s| !missed_fires.contains(s))
        .map(|s| (s, NotFired::Skipped))
        .chain(recent_excluded.into_iter().map(|s| (s, NotFired::Excluded)))
        .collect();
    let mut skipped = missed - missed_fires.len() as u64;
    // Oldest first: what `max_runs` keeps when it cuts.
    let mut fires: Vec<i64> = refired
        .into_iter()
        .chain(missed_fires)
        .chain(on_time)
        .collect();
    if let Some(max_runs) = schedule.max_runs() {
        let left = u64::from(max_runs.get()).saturating_sub(runs_so_far);
        if fires.len() as u64 >= left {
            // `left` < fires.len() <= usize::MAX here.
            let keep = usize::try_from(left).unwrap_or(usize::MAX);
            skipped += (fires.len() - keep) as u64;
            not_fired.extend(fires[keep..].iter().map(|&s| (s, NotFired::Skipped)));
            fires.truncate(keep);
            next = None;
        }
    }
    // Sorted already when the jitter is shorter than the period; keep the promise regardless.
    fires.sort_unstable();
    not_fired.sort_unstable_by_key(|(s, _)| *s);
    let cut = not_fired.len().saturating_sub(MAX_NOT_FIRED);
    not_fired.drain(..cut);
    Plan {
        fires,
        skipped,
        missed,
        excluded,
        not_fired,
        next,
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use chrono_tz::America::New_York;
    use chrono_tz::Tz;
    use proptest::prelude::*;
    use sked_core::schedule::CronExpr;

    use super::*;

    const JOB: &str = "order-123-reminder";
    const MINUTE: i64 = 60_000;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ms(s: &str) -> i64 {
        utc(s).timestamp_millis()
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    fn cron(expr: &str, tz: Tz, misfire: Misfire) -> Schedule {
        Schedule::Cron {
            expr: CronExpr::parse(expr).unwrap(),
            tz,
            start_at: None,
            end_at: None,
            max_runs: None,
            misfire,
            jitter_ms: None,
        }
    }

    fn every(interval_ms: u64, misfire: Misfire) -> Schedule {
        Schedule::Every {
            interval_ms,
            start_at: None,
            end_at: None,
            max_runs: None,
            misfire,
            jitter_ms: None,
        }
    }

    /// `schedule` with `end_at`, `max_runs` and `jitter_ms` set.
    fn with(
        mut schedule: Schedule,
        end: Option<DateTime<Utc>>,
        runs: Option<u32>,
        jitter: Option<u64>,
    ) -> Schedule {
        match &mut schedule {
            Schedule::Cron {
                end_at,
                max_runs,
                jitter_ms,
                ..
            }
            | Schedule::Every {
                end_at,
                max_runs,
                jitter_ms,
                ..
            } => {
                *end_at = end;
                *max_runs = runs.and_then(NonZeroU32::new);
                *jitter_ms = jitter;
            }
            Schedule::Once { .. } => unreachable!(),
        }
        schedule
    }

    fn input(schedule: &Schedule, claimed_score: i64, now: DateTime<Utc>) -> Input<'_> {
        Input {
            schedule,
            job_id: JOB,
            first_due: at(claimed_score),
            claimed_score,
            runs_so_far: 0,
            now,
            misfire_threshold: Duration::from_secs(5),
            refire: false,
            calendars: &[],
        }
    }

    /// Plans and checks the invariants every plan keeps.
    fn plan_checked(input: &Input<'_>) -> Plan {
        let plan = plan(input);
        let now_ms = input.now.timestamp_millis();
        assert!(plan.fires.windows(2).all(|w| w[0] < w[1]), "{plan:?}");
        assert!(plan.fires.iter().all(|&f| f <= now_ms), "early: {plan:?}");
        assert!(plan.next.is_none_or(|n| n > now_ms), "{plan:?}");
        assert!(plan.skipped <= plan.missed || input.schedule.max_runs().is_some());
        // The slot history names the latest not-fired slots, never a fire, and agrees with
        // the counts.
        assert!(plan.not_fired.len() <= MAX_NOT_FIRED, "{plan:?}");
        assert!(
            plan.not_fired.windows(2).all(|w| w[0].0 < w[1].0),
            "{plan:?}"
        );
        assert!(
            plan.not_fired.iter().all(|(s, _)| !plan.fires.contains(s)),
            "{plan:?}"
        );
        let named = |k: NotFired| plan.not_fired.iter().filter(|(_, n)| *n == k).count() as u64;
        assert_eq!(
            named(NotFired::Excluded),
            plan.excluded.min(MAX_NOT_FIRED as u64),
            "{plan:?}"
        );
        assert!(named(NotFired::Skipped) <= plan.skipped, "{plan:?}");
        if plan.skipped + plan.excluded <= MAX_NOT_FIRED as u64 {
            assert_eq!(named(NotFired::Skipped), plan.skipped, "{plan:?}");
        }
        if let Some(max) = input.schedule.max_runs() {
            let max = u64::from(max.get());
            assert!(plan.fires.is_empty() || input.runs_so_far + plan.fires.len() as u64 <= max);
        }
        plan
    }

    fn fires(plan: &Plan) -> Vec<DateTime<Utc>> {
        plan.fires.iter().map(|&f| at(f)).collect()
    }

    fn times(list: &[&str]) -> Vec<DateTime<Utc>> {
        list.iter().map(|s| utc(s)).collect()
    }

    fn calendar(json: &str) -> Vec<(String, Arc<Calendar>)> {
        vec![(
            "c".to_owned(),
            Arc::new(serde_json::from_str(json).unwrap()),
        )]
    }

    #[test]
    fn slots_on_excluded_days_do_not_fire_and_are_counted() {
        let schedule = cron("* * * * *", Tz::UTC, Misfire::FireOnce);
        let score = ms("2026-12-25T10:00:00Z");
        let now = utc("2026-12-25T10:02:01Z");
        let christmas = calendar(r#"{"dates": ["2026-12-25"]}"#);
        let plan = plan_checked(&Input {
            calendars: &christmas,
            ..input(&schedule, score, now)
        });
        assert_eq!(
            plan,
            Plan {
                fires: vec![],
                skipped: 0,
                missed: 0,
                excluded: 3,
                not_fired: (0..3)
                    .map(|k| (score + k * MINUTE, NotFired::Excluded))
                    .collect(),
                next: Some(score + 3 * MINUTE),
            },
            "excluded slots are neither missed nor skipped"
        );
        // Another day's calendar changes nothing.
        let other = calendar(r#"{"dates": ["2026-12-24"], "weekdays": ["sun"]}"#);
        let with = plan_checked(&Input {
            calendars: &other,
            ..input(&schedule, score, now)
        });
        assert_eq!(with, plan_checked(&input(&schedule, score, now)));
        assert_eq!((with.fires.len(), with.excluded), (1, 0));
        // A calendar's day is its own zone's: 10:00Z on the 25th is the 26th in Tokyo.
        let tokyo = calendar(r#"{"timezone": "Asia/Tokyo", "dates": ["2026-12-25"]}"#);
        let late = ms("2026-12-25T15:00:00Z");
        let plan = plan_checked(&Input {
            calendars: &tokyo,
            ..input(&schedule, late, at(late))
        });
        assert_eq!((plan.fires, plan.excluded), (vec![late], 0));
    }

    #[test]
    fn an_excluded_slot_does_not_use_up_max_runs() {
        let schedule = with(
            cron("0 9 * * *", Tz::UTC, Misfire::FireOnce),
            None,
            Some(1),
            None,
        );
        let sat = ms("2026-12-05T09:00:00Z");
        let weekends = calendar(r#"{"weekdays": ["sat", "sun"]}"#);
        let plan = plan_checked(&Input {
            calendars: &weekends,
            ..input(&schedule, sat, at(sat))
        });
        assert_eq!((plan.excluded, plan.next), (1, Some(sat + 1440 * MINUTE)));
        // A reclaimed slot fires again whatever the calendar says now.
        let plan = plan_checked(&Input {
            calendars: &weekends,
            refire: true,
            ..input(&schedule, sat, at(sat))
        });
        assert_eq!((plan.fires, plan.excluded), (vec![sat], 0));
    }

    #[test]
    fn one_shot_on_time_fires_and_ends() {
        let s = Schedule::Once {
            at: utc("2026-11-23T10:00:00Z"),
        };
        let score = ms("2026-11-23T10:00:00Z");
        let plan = plan_checked(&input(&s, score, utc("2026-11-23T10:00:04.999Z")));
        assert_eq!(
            plan,
            Plan {
                fires: vec![score],
                skipped: 0,
                missed: 0,
                excluded: 0,
                not_fired: vec![],
                next: None
            }
        );
    }

    #[test]
    fn one_shot_late_still_fires_and_counts_as_missed() {
        let s = Schedule::Once {
            at: utc("2026-11-23T10:00:00Z"),
        };
        let score = ms("2026-11-23T10:00:00Z");
        let plan = plan_checked(&input(&s, score, utc("2026-11-23T10:00:05.001Z")));
        assert_eq!(
            plan,
            Plan {
                fires: vec![score],
                skipped: 0,
                missed: 1,
                excluded: 0,
                not_fired: vec![],
                next: None
            }
        );
        let plan = plan_checked(&input(&s, score, utc("2026-11-25T00:00:00Z")));
        assert_eq!((plan.fires, plan.missed), (vec![score], 1));
    }

    #[test]
    fn claimed_score_after_now_fires_nothing_and_stays_due() {
        let score = ms("2026-11-23T10:00:00Z");
        let now = utc("2026-11-23T09:59:59.999Z");
        for s in [
            Schedule::Once { at: at(score) },
            cron("0 * * * * *", Tz::UTC, Misfire::FireOnce),
        ] {
            let plan = plan_checked(&input(&s, score, now));
            assert_eq!(
                plan,
                Plan {
                    fires: vec![],
                    skipped: 0,
                    missed: 0,
                    excluded: 0,
                    not_fired: vec![],
                    next: Some(score)
                }
            );
        }
    }

    #[test]
    fn cron_on_time_fires_the_claimed_minute_and_schedules_the_next() {
        let s = cron("0 * * * * *", Tz::UTC, Misfire::FireOnce);
        let score = ms("2026-06-10T12:00:00Z");
        let plan = plan_checked(&input(&s, score, utc("2026-06-10T12:00:00.300Z")));
        assert_eq!(
            plan,
            Plan {
                fires: vec![score],
                skipped: 0,
                missed: 0,
                excluded: 0,
                not_fired: vec![],
                next: Some(ms("2026-06-10T12:01:00Z"))
            }
        );
        // Exactly at the threshold is still on time.
        let plan = plan_checked(&input(&s, score, utc("2026-06-10T12:00:05Z")));
        assert_eq!((plan.fires.len(), plan.missed), (1, 0));
    }

    #[test]
    fn cron_two_minutes_late_follows_the_misfire_policy() {
        let claimed = ms("2026-06-10T12:00:00Z");
        // Scheduler down until 12:01:59: 12:00 and 12:01 were missed, 12:02 is not due yet.
        let now = utc("2026-06-10T12:01:59Z");
        let plan_for =
            |misfire| plan_checked(&input(&cron("0 * * * * *", Tz::UTC, misfire), claimed, now));
        let next = Some(ms("2026-06-10T12:02:00Z"));

        let plan = plan_for(Misfire::FireOnce);
        assert_eq!(
            fires(&plan),
            times(&["2026-06-10T12:01:00Z"]),
            "the latest missed"
        );
        assert_eq!((plan.missed, plan.skipped, plan.next), (2, 1, next));

        let plan = plan_for(Misfire::Skip);
        assert!(plan.fires.is_empty());
        assert_eq!((plan.missed, plan.skipped, plan.next), (2, 2, next));

        let plan = plan_for(Misfire::FireAll { cap: 100 });
        assert_eq!(
            fires(&plan),
            times(&["2026-06-10T12:00:00Z", "2026-06-10T12:01:00Z"])
        );
        assert_eq!((plan.missed, plan.skipped, plan.next), (2, 0, next));

        // Down until 12:02:00 exactly: three due slots; 12:02 is on time and always fires, and
        // stands for the missed ones under fire_once.
        let now = utc("2026-06-10T12:02:00Z");
        let plan_for =
            |misfire| plan_checked(&input(&cron("0 * * * * *", Tz::UTC, misfire), claimed, now));
        let next = Some(ms("2026-06-10T12:03:00Z"));

        let plan = plan_for(Misfire::FireOnce);
        assert_eq!(fires(&plan), times(&["2026-06-10T12:02:00Z"]));
        assert_eq!((plan.missed, plan.skipped, plan.next), (2, 2, next));

        let plan = plan_for(Misfire::Skip);
        assert_eq!(fires(&plan), times(&["2026-06-10T12:02:00Z"]));
        assert_eq!((plan.missed, plan.skipped, plan.next), (2, 2, next));

        let plan = plan_for(Misfire::FireAll { cap: 100 });
        assert_eq!(
            fires(&plan),
            times(&[
                "2026-06-10T12:00:00Z",
                "2026-06-10T12:01:00Z",
                "2026-06-10T12:02:00Z"
            ])
        );
        assert_eq!((plan.missed, plan.skipped, plan.next), (2, 0, next));
    }

    #[test]
    fn a_slot_due_within_the_threshold_is_not_a_misfire() {
        // Every second, claimed 1.5 s late: both due slots fire, whatever the policy.
        let claimed = ms("2026-06-10T12:00:00Z");
        let now = utc("2026-06-10T12:00:01.500Z");
        for misfire in [
            Misfire::FireOnce,
            Misfire::Skip,
            Misfire::FireAll { cap: 1 },
        ] {
            let plan = plan_checked(&input(&every(1_000, misfire), claimed, now));
            assert_eq!(
                plan,
                Plan {
                    fires: vec![claimed, claimed + 1_000],
                    skipped: 0,
                    missed: 0,
                    excluded: 0,
                    not_fired: vec![],
                    next: Some(claimed + 2_000)
                },
                "{misfire:?}"
            );
        }
    }

    #[test]
    fn fire_all_fires_the_oldest_up_to_its_cap() {
        let s = cron("0 * * * * *", Tz::UTC, Misfire::FireAll { cap: 3 });
        let claimed = ms("2026-06-10T12:00:00Z");
        // 12:00 to 12:10 are due and all missed (12:10 by 30 s).
        let plan = plan_checked(&input(&s, claimed, utc("2026-06-10T12:10:30Z")));
        assert_eq!(
            plan,
            Plan {
                fires: vec![claimed, claimed + MINUTE, claimed + 2 * MINUTE],
                skipped: 8,
                missed: 11,
                excluded: 0,
                // 12:03 to 12:10: the missed slots past the cap.
                not_fired: (3..11)
                    .map(|k| (claimed + k * MINUTE, NotFired::Skipped))
                    .collect(),
                next: Some(ms("2026-06-10T12:11:00Z"))
            }
        );
    }

    #[test]
    fn max_runs_caps_the_fires_of_a_plan_and_ends_the_job() {
        let s = with(
            cron("0 * * * * *", Tz::UTC, Misfire::FireAll { cap: 100 }),
            None,
            Some(5),
            None,
        );
        let claimed = ms("2026-06-10T12:00:00Z");
        let late = utc("2026-06-10T12:09:30Z");
        let plan = plan_checked(&Input {
            runs_so_far: 3,
            ..input(&s, claimed, late)
        });
        assert_eq!(
            plan,
            Plan {
                fires: vec![claimed, claimed + MINUTE],
                skipped: 8,
                missed: 10,
                excluded: 0,
                // 12:02 to 12:09: beyond `max_runs`.
                not_fired: (2..10)
                    .map(|k| (claimed + k * MINUTE, NotFired::Skipped))
                    .collect(),
                next: None
            }
        );
        let on_time = at(claimed);
        let plan = plan_checked(&Input {
            runs_so_far: 3,
            ..input(&s, claimed, on_time)
        });
        assert_eq!((plan.fires.len(), plan.next), (1, Some(claimed + MINUTE)));
        let plan = plan_checked(&Input {
            runs_so_far: 4,
            ..input(&s, claimed, on_time)
        });
        assert_eq!((plan.fires.len(), plan.next), (1, None), "the last run");
        let plan = plan_checked(&Input {
            runs_so_far: 5,
            ..input(&s, claimed, on_time)
        });
        assert_eq!(
            plan,
            Plan {
                fires: vec![],
                skipped: 1,
                missed: 0,
                excluded: 0,
                not_fired: vec![(claimed, NotFired::Skipped)],
                next: None
            },
            "runs already used up"
        );
    }

    #[test]
    fn end_at_ends_the_job() {
        let end = utc("2026-06-10T12:05:00Z");
        let s = with(
            cron("0 * * * * *", Tz::UTC, Misfire::FireAll { cap: 100 }),
            Some(end),
            None,
            None,
        );
        let plan = plan_checked(&input(&s, end.timestamp_millis(), end));
        assert_eq!((fires(&plan), plan.next), (vec![end], None));
        let claimed = ms("2026-06-10T12:00:00Z");
        let plan = plan_checked(&input(&s, claimed, utc("2026-06-10T13:00:00Z")));
        assert_eq!(plan.fires.len(), 6, "12:00 to 12:05, end_at inclusive");
        assert_eq!((plan.missed, plan.skipped, plan.next), (6, 0, None));
        let plan = plan_checked(&input(
            &with(every(60_000, Misfire::Skip), Some(end), None, None),
            claimed,
            utc("2026-06-10T12:04:30Z"),
        ));
        assert_eq!(plan.next, Some(end.timestamp_millis()));
    }

    #[test]
    fn every_does_not_drift() {
        let s = every(15 * MINUTE as u64, Misfire::FireOnce);
        let first = ms("2026-06-10T10:00:00.250Z");
        let mut score = first;
        for i in 0..1000 {
            // On time, and 3 s late (within the threshold): the next fire stays on the grid.
            let now = at(score + if i % 2 == 0 { 0 } else { 3_000 });
            let plan = plan_checked(&input(&s, score, now));
            assert_eq!(plan.fires, vec![score]);
            assert_eq!(plan.next, Some(score + 15 * MINUTE));
            score = plan.next.unwrap();
        }
        assert_eq!(score, first + 1000 * 15 * MINUTE);
    }

    #[test]
    fn jitter_stays_within_bounds_and_its_slot_is_recovered() {
        let cases = [
            (
                with(
                    cron("0 * * * * *", Tz::UTC, Misfire::FireOnce),
                    None,
                    None,
                    Some(10_000),
                ),
                MINUTE,
            ),
            (
                with(every(90_000, Misfire::FireOnce), None, None, Some(89_999)),
                90_000,
            ),
        ];
        for (s, period) in cases {
            // First fires carry no jitter; the grid starts there.
            let first_due = ms("2026-06-10T12:00:00Z");
            let bound = i64::try_from(s.jitter_ms().unwrap()).unwrap();
            let mut score = first_due;
            let mut delays = std::collections::BTreeSet::new();
            for k in 1..=500 {
                let plan = plan_checked(&Input {
                    first_due: at(first_due),
                    ..input(&s, score, at(score))
                });
                assert_eq!(plan.fires, vec![score]);
                let next = plan.next.unwrap();
                let slot = first_due + k * period;
                assert!(
                    (slot..=slot + bound).contains(&next),
                    "{s:?}: {next} for {slot}"
                );
                delays.insert(next - slot);
                // Deterministic.
                assert_eq!(
                    plan,
                    plan_checked(&Input {
                        first_due: at(first_due),
                        ..input(&s, score, at(score))
                    })
                );
                score = next;
            }
            assert!(delays.len() > 400, "{s:?}: delays vary ({})", delays.len());
        }
    }

    #[test]
    fn late_jittered_slots_fire_at_their_own_due_time() {
        let s = with(
            cron("0 * * * * *", Tz::UTC, Misfire::FireAll { cap: 100 }),
            None,
            None,
            Some(30_000),
        );
        let slots = Slots {
            schedule: &s,
            job_id: JOB,
            jitter: 30_000,
            calendars: &[],
        };
        let claimed_slot = utc("2026-06-10T12:00:00Z");
        let claimed = slots.score(claimed_slot);
        let now = utc("2026-06-10T12:05:10Z");
        let plan = plan_checked(&input(&s, claimed, now));
        let expected: Vec<i64> = (0..6)
            .map(|k| slots.score(claimed_slot + TimeDelta::minutes(k)))
            .filter(|&score| score <= now.timestamp_millis())
            .collect();
        assert!(expected.len() >= 5);
        assert_eq!(plan.fires, expected);
        let plan = plan_checked(&input(
            &with(
                cron("0 * * * * *", Tz::UTC, Misfire::Skip),
                None,
                None,
                Some(30_000),
            ),
            claimed,
            now,
        ));
        assert!(plan.fires.iter().all(|f| expected.contains(f)));
        assert!(plan.next.unwrap() >= ms("2026-06-10T12:05:00Z"));
    }

    #[test]
    fn cron_inside_the_spring_gap_fires_once_right_after_it() {
        let s = cron("0 30 2 * * *", New_York, Misfire::FireAll { cap: 100 });
        // 02:30 EST on the 7th; 02:30 does not exist on the 8th: 03:00 EDT; 02:30 EDT on the 9th.
        let plan = plan_checked(&input(
            &s,
            ms("2026-03-07T07:30:00Z"),
            utc("2026-03-07T07:30:01Z"),
        ));
        assert_eq!(plan.next, Some(ms("2026-03-08T07:00:00Z")));
        let plan = plan_checked(&input(&s, plan.next.unwrap(), utc("2026-03-08T07:00:00Z")));
        assert_eq!(plan.fires, vec![ms("2026-03-08T07:00:00Z")]);
        assert_eq!(plan.next, Some(ms("2026-03-09T06:30:00Z")));
        // Down across the gap: the gap day fires once.
        let plan = plan_checked(&input(
            &s,
            ms("2026-03-07T07:30:00Z"),
            utc("2026-03-08T12:00:00Z"),
        ));
        assert_eq!(
            fires(&plan),
            times(&["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z"])
        );
        assert_eq!(plan.next, Some(ms("2026-03-09T06:30:00Z")));
    }

    #[test]
    fn cron_inside_the_fall_overlap_fires_once() {
        let s = cron("0 30 1 * * *", New_York, Misfire::FireAll { cap: 100 });
        // 01:30 EDT on the 1st (05:30Z); its repetition at 01:30 EST (06:30Z) does not fire.
        let plan = plan_checked(&input(
            &s,
            ms("2026-10-31T05:30:00Z"),
            utc("2026-10-31T05:30:00Z"),
        ));
        assert_eq!(plan.next, Some(ms("2026-11-01T05:30:00Z")));
        let plan = plan_checked(&input(&s, plan.next.unwrap(), utc("2026-11-01T05:30:00Z")));
        assert_eq!(plan.next, Some(ms("2026-11-02T06:30:00Z")));
        let plan = plan_checked(&input(
            &s,
            ms("2026-10-31T05:30:00Z"),
            utc("2026-11-01T07:00:00Z"),
        ));
        assert_eq!(
            fires(&plan),
            times(&["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z"])
        );
        assert_eq!(plan.next, Some(ms("2026-11-02T06:30:00Z")));
    }

    #[test]
    fn a_long_outage_of_a_fast_schedule_is_bounded() {
        let claimed = ms("2026-06-10T00:00:00Z");
        // Two days of a per-second cron: 172 796 missed slots; the first 100 000 are counted,
        // then planning jumps to the latest missed one (23:59:55) and the 5 on time.
        let now = utc("2026-06-12T00:00:00.500Z");
        let next = Some(ms("2026-06-12T00:00:01Z"));
        let on_time: Vec<i64> = (0..5)
            .map(|k| ms("2026-06-11T23:59:56Z") + k * 1_000)
            .collect();
        for misfire in [Misfire::FireOnce, Misfire::Skip] {
            let plan = plan_checked(&input(&cron("* * * * * *", Tz::UTC, misfire), claimed, now));
            assert_eq!(
                plan,
                Plan {
                    fires: on_time.clone(),
                    skipped: MAX_MISSED + 1,
                    missed: MAX_MISSED + 1,
                    excluded: 0,
                    // The latest ten skipped: the last nine before the jump, and the latest.
                    not_fired: (MAX_MISSED as i64 - 9..MAX_MISSED as i64)
                        .map(|k| claimed + k * 1_000)
                        .chain([ms("2026-06-11T23:59:55Z")])
                        .map(|s| (s, NotFired::Skipped))
                        .collect(),
                    next
                },
                "{misfire:?}"
            );
        }
        let s = cron("* * * * * *", Tz::UTC, Misfire::FireAll { cap: 2 });
        let plan = plan_checked(&input(&s, claimed, now));
        assert_eq!(plan.fires[..2], [claimed, claimed + 1_000]);
        assert_eq!(plan.fires[2..], on_time);
        assert_eq!(
            (plan.missed, plan.skipped, plan.next),
            (MAX_MISSED + 1, MAX_MISSED - 1, next)
        );
        // With nothing on time, fire_once fires the latest missed slot.
        let now = utc("2026-06-12T00:00:00.500Z");
        let plan = plan_checked(&Input {
            misfire_threshold: Duration::ZERO,
            ..input(
                &cron("* * * * * *", Tz::UTC, Misfire::FireOnce),
                claimed,
                now,
            )
        });
        assert_eq!(plan.fires, vec![ms("2026-06-12T00:00:00Z")]);
        assert_eq!((plan.missed, plan.next), (MAX_MISSED + 1, next));
        // `every` jumps on its grid.
        let s = every(1_000, Misfire::FireOnce);
        let plan = plan_checked(&input(&s, claimed + 250, now));
        assert_eq!(
            plan.fires,
            vec![
                ms("2026-06-11T23:59:56.250Z"),
                ms("2026-06-11T23:59:57.250Z"),
                ms("2026-06-11T23:59:58.250Z"),
                ms("2026-06-11T23:59:59.250Z"),
                ms("2026-06-12T00:00:00.250Z")
            ]
        );
        assert_eq!(
            (plan.missed, plan.next),
            (MAX_MISSED + 1, Some(ms("2026-06-12T00:00:01.250Z")))
        );
    }

    #[test]
    fn a_reclaimed_slot_fires_again_whatever_the_policy_and_counts() {
        // An every-second job whose fire at `claimed` was in flight when its scheduler died;
        // the lease expired and the job is claimed again 30 s later.
        let claimed = ms("2026-06-12T00:00:00Z");
        let now = at(claimed + 30_000);
        for policy in [
            Misfire::FireOnce,
            Misfire::Skip,
            Misfire::FireAll { cap: 3 },
        ] {
            let s = with(every(1_000, policy), None, Some(2), None);
            let reclaimed = plan_checked(&Input {
                refire: true,
                ..input(&s, claimed, now)
            });
            assert_eq!(
                reclaimed.fires.first(),
                Some(&claimed),
                "{policy:?}: the in-flight slot fires again, same fire id"
            );
            let fresh = plan_checked(&input(&s, claimed, now));
            assert!(
                !fresh.fires.contains(&claimed) || matches!(policy, Misfire::FireAll { .. }),
                "{policy:?}: without the reclaim the slot is a misfire"
            );
        }
        // With max_runs 1 and a reclaim, the job fires that slot and ends: one run, not two.
        let s = with(every(1_000, Misfire::FireOnce), None, Some(1), None);
        let plan = plan_checked(&Input {
            refire: true,
            ..input(&s, claimed, now)
        });
        assert_eq!((plan.fires, plan.next), (vec![claimed], None));
    }

    /// Recurring schedules for the property test, with the shortest gap between two slots.
    fn schedule_case(kind: usize, interval_ms: u64) -> (Schedule, i64) {
        match kind {
            0 => (cron("0 * * * * *", Tz::UTC, Misfire::FireOnce), MINUTE),
            1 => (cron("*/15 * * * * *", Tz::UTC, Misfire::FireOnce), 15_000),
            2 => (cron("0 0,1 * * * *", Tz::UTC, Misfire::FireOnce), MINUTE),
            3 => (
                cron("0 */20 * * * *", New_York, Misfire::FireOnce),
                20 * MINUTE,
            ),
            4 => (
                cron("0 30 1 * * *", New_York, Misfire::FireOnce),
                23 * 60 * MINUTE,
            ),
            _ => (
                every(interval_ms, Misfire::FireOnce),
                i64::try_from(interval_ms).unwrap(),
            ),
        }
    }

    fn set_misfire(mut schedule: Schedule, policy: Misfire) -> Schedule {
        if let Schedule::Cron { misfire, .. } | Schedule::Every { misfire, .. } = &mut schedule {
            *misfire = policy;
        }
        schedule
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn plans_keep_their_invariants(
            kind in 0..6usize,
            interval_ms in 1_000u64..600_000,
            jitter_fraction in prop::option::of(0.0f64..1.0),
            start in 1_767_225_600_000i64..1_798_761_600_000,
            first_steps in 0i64..5,
            lag_periods in prop_oneof![Just(0.0f64), 0.0f64..0.5, 0.0f64..3.0, 0.0f64..40.0],
            threshold_ms in prop_oneof![Just(5_000u64), 0u64..120_000],
            policy in prop_oneof![
                Just(Misfire::FireOnce),
                Just(Misfire::Skip),
                (1u32..20).prop_map(|cap| Misfire::FireAll { cap }),
            ],
            max_runs in prop::option::of(1u32..30),
            runs_so_far in 0u64..40,
            end_periods in prop::option::of(0i64..50),
        ) {
            let (schedule, period) = schedule_case(kind, interval_ms);
            // Jitter strictly shorter than the period.
            let jitter = jitter_fraction.map(|f| (f * (period - 1) as f64) as u64);
            let bare = set_misfire(schedule, policy);
            // The first slot at or after `start`, then a few slots on: the claimed one.
            let first_due = bare.first_fire(at(start)).unwrap();
            let mut slot = first_due;
            for _ in 0..first_steps {
                slot = bare.next_after(slot).unwrap();
            }
            let end = end_periods.map(|n| slot + TimeDelta::milliseconds(n * period));
            let schedule = with(bare, end, max_runs, jitter);
            let slots = Slots { schedule: &schedule, job_id: JOB, jitter: jitter.unwrap_or(0), calendars: &[] };
            // A first fire carries no jitter.
            let claimed = if first_steps == 0 { due_score(slot) } else { slots.score(slot) };
            let lag = (lag_periods * period as f64) as i64 + (claimed % 7);
            let now = at(claimed + lag) + TimeDelta::microseconds(lag % 1000);
            let threshold = Duration::from_millis(threshold_ms);
            let input = Input {
                schedule: &schedule,
                job_id: JOB,
                first_due,
                claimed_score: claimed,
                runs_so_far,
                now,
                misfire_threshold: threshold,
                refire: false,
                calendars: &[],
            };
            let plan = plan_checked(&input);

            // Reference: walk the slots one by one.
            let mut due = Vec::new();
            let mut late = Vec::new();
            let (mut s, mut score) = (slot, claimed);
            let reference_next = loop {
                if score > now.timestamp_millis() {
                    break Some(score);
                }
                due.push(score);
                if now - at(score) > TimeDelta::from_std(threshold).unwrap() {
                    late.push(score);
                }
                match schedule.next_after(s) {
                    Some(n) => {
                        s = n;
                        score = slots.score(n);
                    }
                    None => break None,
                }
            };
            let on_time: Vec<i64> = due.iter().copied().filter(|d| !late.contains(d)).collect();
            let mut expected: Vec<i64> = match policy {
                Misfire::Skip => vec![],
                Misfire::FireOnce if on_time.is_empty() => late.last().copied().into_iter().collect(),
                Misfire::FireOnce => vec![],
                Misfire::FireAll { cap } => late.iter().copied().take(cap as usize).collect(),
            };
            expected.extend(&on_time);
            let left = max_runs.map_or(u64::MAX, |m| u64::from(m).saturating_sub(runs_so_far));
            let ended = expected.len() as u64 >= left;
            expected.truncate(usize::try_from(left).unwrap_or(usize::MAX));

            prop_assert_eq!(&plan.fires, &expected);
            prop_assert_eq!(plan.missed, late.len() as u64);
            prop_assert_eq!(plan.fires.len() as u64 + plan.skipped, due.len() as u64);
            if on_time.is_empty() && !late.is_empty() {
                prop_assert_eq!(plan.fires.len() as u64 + plan.skipped, plan.missed);
            }
            prop_assert_eq!(plan.next, if ended { None } else { reference_next });
            // The next plan recovers the slot of `next` and continues on the schedule.
            if let Some(next) = plan.next {
                let second = plan_checked(&Input {
                    claimed_score: next,
                    now: at(next),
                    runs_so_far: 0,
                    ..input
                });
                prop_assert_eq!(&second.fires, &vec![next]);
                // That fire is the last when `max_runs` is 1 (the first plan fired nothing).
                let after = schedule.next_after(s).map(|n| slots.score(n));
                let after = if max_runs == Some(1) { None } else { after };
                prop_assert_eq!(second.next, after);
            }
        }
    }
}
