//! [`Schedule`]: when a job fires, in the form stored with the job.

use std::num::NonZeroU32;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::cron::{CronExpr, DomDow};
use super::dst::DstPolicy;
use super::misfire::Misfire;

/// When a job fires: the form stored with the job (serde, tagged by `kind`).
///
/// `end_at` is inclusive. Fire times are nominal (before jitter); `max_runs` is counted by the
/// caller, which stops asking for [`Schedule::next_after`] when the runs are used up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "Repr", from = "Repr")]
pub enum Schedule {
    /// Fire once at `at` (at once if `at` has passed).
    Once {
        /// The instant to fire.
        at: DateTime<Utc>,
    },
    /// Fire at the times matched by a cron expression on the wall clock of `tz`.
    Cron {
        /// The expression, with its day rule ([`DomDow`]) and DST policy ([`DstPolicy`]); stored
        /// beside it as `dom_dow` and `dst`, each left out when not set / default.
        expr: CronExpr,
        /// Zone whose wall clock the expression describes.
        tz: Tz,
        /// No fire before this instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_at: Option<DateTime<Utc>>,
        /// No fire after this instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_at: Option<DateTime<Utc>>,
        /// Stop after this many runs (`None`: unbounded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_runs: Option<NonZeroU32>,
        /// What to do about missed fire times.
        #[serde(default)]
        misfire: Misfire,
        /// Up to this many milliseconds of random delay added to each fire by the scheduler.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jitter_ms: Option<u64>,
    },
    /// Fire every `interval_ms` milliseconds.
    Every {
        /// The period, in milliseconds (see [`Interval`]).
        interval_ms: u64,
        /// First fire at this instant (and then on the grid `start_at + k * interval`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_at: Option<DateTime<Utc>>,
        /// No fire after this instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_at: Option<DateTime<Utc>>,
        /// Stop after this many runs (`None`: unbounded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_runs: Option<NonZeroU32>,
        /// What to do about missed fire times.
        #[serde(default)]
        misfire: Misfire,
        /// Up to this many milliseconds of random delay added to each fire by the scheduler.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jitter_ms: Option<u64>,
    },
}

/// The serde form of [`Schedule`]: the day rule and DST policy of a cron expression are
/// fields of their own, absent when not set, so records written before they existed read the
/// same and records without them are written as before.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Repr {
    /// Fire once at `at` (at once if `at` has passed).
    Once {
        /// The instant to fire.
        at: DateTime<Utc>,
    },
    /// Fire at the times matched by a cron expression on the wall clock of `tz`.
    Cron {
        /// The expression.
        expr: CronExpr,
        /// Zone whose wall clock the expression describes.
        tz: Tz,
        /// Explicit day rule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dom_dow: Option<DomDow>,
        /// DST policy.
        #[serde(default, skip_serializing_if = "DstPolicy::is_default")]
        dst: DstPolicy,
        /// No fire before this instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_at: Option<DateTime<Utc>>,
        /// No fire after this instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_at: Option<DateTime<Utc>>,
        /// Stop after this many runs (`None`: unbounded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_runs: Option<NonZeroU32>,
        /// What to do about missed fire times.
        #[serde(default)]
        misfire: Misfire,
        /// Up to this many milliseconds of random delay added to each fire by the scheduler.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jitter_ms: Option<u64>,
    },
    /// Fire every `interval_ms` milliseconds.
    Every {
        /// The period, in milliseconds (see [`Interval`]).
        interval_ms: u64,
        /// First fire at this instant (and then on the grid `start_at + k * interval`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_at: Option<DateTime<Utc>>,
        /// No fire after this instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_at: Option<DateTime<Utc>>,
        /// Stop after this many runs (`None`: unbounded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_runs: Option<NonZeroU32>,
        /// What to do about missed fire times.
        #[serde(default)]
        misfire: Misfire,
        /// Up to this many milliseconds of random delay added to each fire by the scheduler.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jitter_ms: Option<u64>,
    },
}

impl From<Schedule> for Repr {
    fn from(s: Schedule) -> Repr {
        match s {
            Schedule::Once { at } => Repr::Once { at },
            Schedule::Cron {
                expr,
                tz,
                start_at,
                end_at,
                max_runs,
                misfire,
                jitter_ms,
            } => Repr::Cron {
                dom_dow: expr.dom_dow(),
                dst: expr.dst(),
                expr,
                tz,
                start_at,
                end_at,
                max_runs,
                misfire,
                jitter_ms,
            },
            Schedule::Every {
                interval_ms,
                start_at,
                end_at,
                max_runs,
                misfire,
                jitter_ms,
            } => Repr::Every {
                interval_ms,
                start_at,
                end_at,
                max_runs,
                misfire,
                jitter_ms,
            },
        }
    }
}

impl From<Repr> for Schedule {
    fn from(r: Repr) -> Schedule {
        match r {
            Repr::Once { at } => Schedule::Once { at },
            Repr::Cron {
                expr,
                tz,
                dom_dow,
                dst,
                start_at,
                end_at,
                max_runs,
                misfire,
                jitter_ms,
            } => Schedule::Cron {
                expr: expr.with_dom_dow(dom_dow).with_dst(dst),
                tz,
                start_at,
                end_at,
                max_runs,
                misfire,
                jitter_ms,
            },
            Repr::Every {
                interval_ms,
                start_at,
                end_at,
                max_runs,
                misfire,
                jitter_ms,
            } => Schedule::Every {
                interval_ms,
                start_at,
                end_at,
                max_runs,
                misfire,
                jitter_ms,
            },
        }
    }
}

impl Schedule {
    /// The first fire time of a job created at `now`; `None` if it would never fire.
    ///
    /// - `Once`: `at`, even if it has passed (the job fires at once; it is never dropped).
    /// - `Cron`: the first matching instant strictly after `now` and at or after `start_at`.
    /// - `Every`: without `start_at`, `now + interval`; with it, the first `start_at + k *
    ///   interval` (k >= 0) at or after `now`.
    ///
    /// For `Cron` and `Every`, `None` if that time is after `end_at`.
    pub fn first_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Once { at } => Some(*at),
            Schedule::Cron {
                expr,
                tz,
                start_at,
                end_at,
                ..
            } => {
                let after = match start_at {
                    Some(start) => now.max(
                        start
                            .checked_sub_signed(TimeDelta::nanoseconds(1))
                            .unwrap_or(*start),
                    ),
                    None => now,
                };
                expr.next_after(after, *tz)
                    .filter(|t| not_after(*t, *end_at))
            }
            Schedule::Every {
                interval_ms,
                start_at,
                end_at,
                ..
            } => {
                let step = step(*interval_ms)?;
                let first = match start_at {
                    None => now.checked_add_signed(step)?,
                    Some(start) if *start >= now => *start,
                    Some(start) => {
                        let behind = (now - *start).num_milliseconds();
                        let k = behind / step.num_milliseconds();
                        let offset =
                            TimeDelta::try_milliseconds(k.checked_mul(step.num_milliseconds())?)?;
                        let at = start.checked_add_signed(offset)?;
                        if at < now {
                            at.checked_add_signed(step)?
                        } else {
                            at
                        }
                    }
                };
                Some(first).filter(|t| not_after(*t, *end_at))
            }
        }
    }

    /// The fire time after the previous **scheduled** (nominal) fire time `prev_scheduled`, so
    /// that lateness and jitter never accumulate as drift; `None` when the schedule is over
    /// (`Once`, or past `end_at`). Strictly greater than `prev_scheduled`.
    pub fn next_after(&self, prev_scheduled: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Once { .. } => None,
            Schedule::Cron {
                expr, tz, end_at, ..
            } => expr
                .next_after(prev_scheduled, *tz)
                .filter(|t| not_after(*t, *end_at)),
            Schedule::Every {
                interval_ms,
                end_at,
                ..
            } => prev_scheduled
                .checked_add_signed(step(*interval_ms)?)
                .filter(|t| not_after(*t, *end_at)),
        }
    }

    /// Whether the job fires more than once.
    pub fn is_recurring(&self) -> bool {
        !matches!(self, Schedule::Once { .. })
    }

    /// Most runs of a recurring job (`None`: unbounded; always `None` for `Once`).
    pub fn max_runs(&self) -> Option<NonZeroU32> {
        match self {
            Schedule::Once { .. } => None,
            Schedule::Cron { max_runs, .. } | Schedule::Every { max_runs, .. } => *max_runs,
        }
    }

    /// The misfire policy (`FireOnce` for `Once`: a late one-shot job always fires).
    pub fn misfire(&self) -> Misfire {
        match self {
            Schedule::Once { .. } => Misfire::FireOnce,
            Schedule::Cron { misfire, .. } | Schedule::Every { misfire, .. } => *misfire,
        }
    }

    /// The jitter bound in milliseconds, if any.
    pub fn jitter_ms(&self) -> Option<u64> {
        match self {
            Schedule::Once { .. } => None,
            Schedule::Cron { jitter_ms, .. } | Schedule::Every { jitter_ms, .. } => *jitter_ms,
        }
    }

    /// The inclusive end of a recurring schedule, if any.
    pub fn end_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Once { .. } => None,
            Schedule::Cron { end_at, .. } | Schedule::Every { end_at, .. } => *end_at,
        }
    }
}

fn not_after(t: DateTime<Utc>, end_at: Option<DateTime<Utc>>) -> bool {
    end_at.is_none_or(|end| t <= end)
}

/// The step of an `every` schedule; `None` for 0 (only possible from a corrupt record).
fn step(interval_ms: u64) -> Option<TimeDelta> {
    if interval_ms == 0 {
        return None;
    }
    TimeDelta::try_milliseconds(i64::try_from(interval_ms).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{Asia::Dhaka, Europe::Berlin};
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cron(s: &str) -> CronExpr {
        CronExpr::parse(s).unwrap()
    }

    fn times(list: &[&str]) -> Vec<DateTime<Utc>> {
        list.iter().map(|s| utc(s)).collect()
    }

    fn cron_schedule(expr: &str, tz: Tz) -> Schedule {
        Schedule::Cron {
            expr: cron(expr),
            tz,
            start_at: None,
            end_at: None,
            max_runs: None,
            misfire: Misfire::default(),
            jitter_ms: None,
        }
    }

    fn every(interval_ms: u64, start_at: Option<&str>, end_at: Option<&str>) -> Schedule {
        Schedule::Every {
            interval_ms,
            start_at: start_at.map(utc),
            end_at: end_at.map(utc),
            max_runs: None,
            misfire: Misfire::default(),
            jitter_ms: None,
        }
    }

    #[test]
    fn once_fires_at_its_time_even_if_passed() {
        let s = Schedule::Once {
            at: utc("2020-01-01T00:00:00Z"),
        };
        assert_eq!(
            s.first_fire(utc("2026-01-01T00:00:00Z")),
            Some(utc("2020-01-01T00:00:00Z"))
        );
        assert_eq!(s.next_after(utc("2020-01-01T00:00:00Z")), None);
        assert!(!s.is_recurring());
    }

    #[test]
    fn cron_first_fire_honours_start_and_end() {
        let now = utc("2026-06-10T10:00:00Z");
        let Schedule::Cron { expr, tz, .. } = cron_schedule("0 9 * * *", Tz::UTC) else {
            unreachable!()
        };
        let with = |start_at: Option<&str>, end_at: Option<&str>| Schedule::Cron {
            expr: expr.clone(),
            tz,
            start_at: start_at.map(utc),
            end_at: end_at.map(utc),
            max_runs: NonZeroU32::new(3),
            misfire: Misfire::Skip,
            jitter_ms: Some(500),
        };
        assert_eq!(
            with(None, None).first_fire(now),
            Some(utc("2026-06-11T09:00:00Z"))
        );
        assert_eq!(
            with(Some("2026-06-20T09:00:00Z"), None).first_fire(now),
            Some(utc("2026-06-20T09:00:00Z")),
            "start_at itself fires when it matches"
        );
        assert_eq!(
            with(Some("2026-06-20T09:00:01Z"), None).first_fire(now),
            Some(utc("2026-06-21T09:00:00Z"))
        );
        assert_eq!(
            with(Some("2026-01-01T00:00:00Z"), None).first_fire(now),
            Some(utc("2026-06-11T09:00:00Z")),
            "a past start_at does not bring back past times"
        );
        assert_eq!(
            with(None, Some("2026-06-11T09:00:00Z")).first_fire(now),
            Some(utc("2026-06-11T09:00:00Z")),
            "end_at is inclusive"
        );
        assert_eq!(
            with(None, Some("2026-06-11T08:59:59Z")).first_fire(now),
            None
        );
        let s = with(None, Some("2026-06-12T09:00:00Z"));
        assert_eq!(
            s.next_after(utc("2026-06-11T09:00:00Z")),
            Some(utc("2026-06-12T09:00:00Z"))
        );
        assert_eq!(s.next_after(utc("2026-06-12T09:00:00Z")), None);
        assert_eq!(s.max_runs(), NonZeroU32::new(3));
        assert_eq!(s.misfire(), Misfire::Skip);
        assert_eq!(s.jitter_ms(), Some(500));
        assert!(s.is_recurring());
    }

    #[test]
    fn every_first_fire_without_start_is_one_interval_from_now() {
        let now = utc("2026-06-10T10:00:00.250Z");
        let s = every(60_000, None, None);
        assert_eq!(s.first_fire(now), Some(utc("2026-06-10T10:01:00.250Z")));
    }

    #[test]
    fn every_first_fire_with_start_stays_on_the_grid() {
        let now = utc("2026-06-10T10:00:00Z");
        let future = every(3_600_000, Some("2026-06-10T12:30:00Z"), None);
        assert_eq!(future.first_fire(now), Some(utc("2026-06-10T12:30:00Z")));
        let past = every(3_600_000, Some("2026-06-09T12:30:00Z"), None);
        assert_eq!(past.first_fire(now), Some(utc("2026-06-10T10:30:00Z")));
        let on_grid = every(3_600_000, Some("2026-06-09T12:00:00Z"), None);
        assert_eq!(on_grid.first_fire(now), Some(now));
        assert_eq!(
            every(1000, Some("2026-06-10T09:59:59.5Z"), None).first_fire(now),
            Some(utc("2026-06-10T10:00:00.5Z"))
        );
        assert_eq!(
            every(1000, None, Some("2026-06-10T10:00:00.999Z")).first_fire(now),
            None
        );
        assert_eq!(every(0, None, None).first_fire(now), None);
    }

    #[test]
    fn every_next_is_computed_from_the_scheduled_time_without_drift() {
        let s = every(15 * 60_000, None, Some("2026-06-10T11:00:00Z"));
        let mut t = utc("2026-06-10T10:00:00Z");
        let mut fires = Vec::new();
        while let Some(next) = s.next_after(t) {
            fires.push(next);
            t = next;
        }
        assert_eq!(
            fires,
            times(&[
                "2026-06-10T10:15:00Z",
                "2026-06-10T10:30:00Z",
                "2026-06-10T10:45:00Z",
                "2026-06-10T11:00:00Z",
            ])
        );
    }

    #[test]
    fn schedule_serde_round_trips() {
        let schedules = [
            Schedule::Once {
                at: utc("2026-11-23T10:00:00Z"),
            },
            cron_schedule("0 9 * * 1-5", Dhaka),
            Schedule::Cron {
                expr: cron("@daily"),
                tz: Berlin,
                start_at: Some(utc("2026-01-01T00:00:00Z")),
                end_at: Some(utc("2027-01-01T00:00:00Z")),
                max_runs: NonZeroU32::new(10),
                misfire: Misfire::FireAll { cap: 3 },
                jitter_ms: Some(1000),
            },
            every(60_000, Some("2026-01-01T00:00:00Z"), None),
        ];
        for s in schedules {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(
                serde_json::from_str::<Schedule>(&json).unwrap(),
                s,
                "{json}"
            );
        }
        let json = serde_json::to_value(cron_schedule("0 9 * * 1-5", Dhaka)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "cron", "expr": "0 9 * * 1-5", "tz": "Asia/Dhaka", "misfire": "fire_once"})
        );
    }

    #[test]
    fn schedule_serde_keeps_day_rule_and_dst_beside_the_expression() {
        use super::super::dst::{Gap, Overlap};
        let expr = cron("30 2 * * *")
            .with_dom_dow(Some(DomDow::Or))
            .with_dst(DstPolicy {
                gap: Gap::Skip,
                overlap: Overlap::Both,
            });
        let s = Schedule::Cron {
            expr,
            tz: Berlin,
            start_at: None,
            end_at: None,
            max_runs: None,
            misfire: Misfire::default(),
            jitter_ms: None,
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "cron", "expr": "30 2 * * *", "tz": "Europe/Berlin",
                "dom_dow": "or", "dst": {"gap": "skip", "overlap": "both"}, "misfire": "fire_once"})
        );
        assert_eq!(serde_json::from_value::<Schedule>(json).unwrap(), s);
        // A record written before these fields existed reads with the defaults.
        let old: Schedule = serde_json::from_str(
            r#"{"kind": "cron", "expr": "0 9 * * 1-5", "tz": "Asia/Dhaka", "misfire": "fire_once"}"#,
        )
        .unwrap();
        assert_eq!(old, cron_schedule("0 9 * * 1-5", Dhaka));
        let Schedule::Cron { expr, .. } = old else {
            unreachable!()
        };
        assert!(expr.dst().is_default() && expr.dom_dow().is_none());
    }

    proptest! {
        #[test]
        fn every_first_fire_is_on_grid_and_not_before_now(
            interval in 1_000u64..100_000_000,
            start in 1_577_836_800_000i64..1_893_456_000_000,
            now in 1_577_836_800_000i64..1_893_456_000_000,
        ) {
            let start_at = DateTime::from_timestamp_millis(start).unwrap();
            let now = DateTime::from_timestamp_millis(now).unwrap();
            let s = Schedule::Every {
                interval_ms: interval,
                start_at: Some(start_at),
                end_at: None,
                max_runs: None,
                misfire: Misfire::default(),
                jitter_ms: None,
            };
            let first = s.first_fire(now).unwrap();
            prop_assert!(first >= now && first >= start_at);
            let offset = (first - start_at).num_milliseconds();
            prop_assert_eq!(offset % interval as i64, 0);
            prop_assert!(first == start_at || first - TimeDelta::milliseconds(interval as i64) < now);
        }
    }
}
