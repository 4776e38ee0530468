//! Local wall-clock times and daylight-saving transitions: what a local time means in a zone,
//! and the per-schedule [`DstPolicy`] that decides what to do when it means nothing (a gap) or
//! two instants (an overlap).
//!
//! | policy | gap (clocks jump forward; the time does not exist) | overlap (clocks fall back; the time happens twice) |
//! |---|---|---|
//! | default | `shift`: fire at the first instant after the gap | `first`: fire at the first occurrence |
//! | alternatives | `skip`: do not fire (a local `run_at` is rejected) | `last`: the second occurrence; `both`: each occurrence (a local `run_at`: the first) |
//!
//! Worked examples (see also `docs/schedules.md`):
//!
//! - America/New_York, 2026-03-08 02:30 does not exist (02:00 EST jumps to 03:00 EDT):
//!   `shift` fires at 03:00 EDT = 07:00Z; `skip` does not fire that day.
//! - Europe/London, 2026-10-25 01:30 happens at 01:30 BST (00:30Z) and at 01:30 GMT (01:30Z):
//!   `first` fires at 00:30Z, `last` at 01:30Z, `both` at both.
//! - Australia/Lord_Howe moves 30 minutes: 2026-10-04 02:00-02:29 does not exist (02:00 +10:30
//!   becomes 02:30 +11:00), and 2026-04-05 01:30-01:59 happens twice.

use std::fmt;

use chrono::{DateTime, MappedLocalTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// What to do with a local time that falls in a DST gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gap {
    /// Fire at the first instant after the gap (the transition itself).
    #[default]
    Shift,
    /// Do not fire; a zone-less `run_at` in a gap is rejected.
    Skip,
}

/// What to do with a local time that occurs twice in a DST overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Fire at the first (earlier) occurrence.
    #[default]
    First,
    /// Fire at each occurrence (a zone-less `run_at`: the first).
    Both,
    /// Fire at the last (later) occurrence.
    Last,
}

/// A schedule's DST policy; serde form `{"gap": "shift" | "skip", "overlap": "first" | "both" |
/// "last"}`, each key optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DstPolicy {
    /// Local times in a gap.
    #[serde(default)]
    pub gap: Gap,
    /// Local times in an overlap.
    #[serde(default)]
    pub overlap: Overlap,
}

impl DstPolicy {
    /// Whether this is the default (shift, first).
    pub fn is_default(&self) -> bool {
        *self == DstPolicy::default()
    }
}

/// What a local wall-clock time is in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTime {
    /// It happens once.
    Unique(DateTime<Utc>),
    /// It happens twice (earlier, later).
    Ambiguous(DateTime<Utc>, DateTime<Utc>),
    /// It does not happen; the instant is the end of the gap (the transition).
    Gap(DateTime<Utc>),
}

impl LocalTime {
    /// The earliest instant this local time stands for (the gap's end for a gap).
    pub fn earliest(self) -> DateTime<Utc> {
        match self {
            LocalTime::Unique(t) | LocalTime::Ambiguous(t, _) | LocalTime::Gap(t) => t,
        }
    }
}

/// Classifies the local time `naive` in `tz`.
pub fn classify(naive: NaiveDateTime, tz: Tz) -> LocalTime {
    match tz.from_local_datetime(&naive) {
        MappedLocalTime::Single(at) => LocalTime::Unique(at.with_timezone(&Utc)),
        MappedLocalTime::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            LocalTime::Ambiguous(a.min(b), a.max(b))
        }
        MappedLocalTime::None => LocalTime::Gap(end_of_gap(naive, tz)),
    }
}

/// The instant of the local time `naive` in `tz` under the default policy.
///
/// A local time inside a DST gap resolves to the first instant after the gap (the transition
/// itself); a local time inside a DST overlap resolves to its first (earlier) occurrence.
pub fn resolve_local(naive: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    classify(naive, tz).earliest()
}

/// The instant of a one-shot local time (a zone-less `run_at`) under `policy`.
///
/// `gap: skip` rejects a time inside a gap; `overlap: last` picks the second occurrence, `first`
/// and `both` the first (a one-shot job fires once).
pub fn resolve_local_with(
    naive: NaiveDateTime,
    tz: Tz,
    policy: DstPolicy,
) -> Result<DateTime<Utc>, String> {
    match (classify(naive, tz), policy) {
        (LocalTime::Unique(t), _) => Ok(t),
        (
            LocalTime::Ambiguous(_, b),
            DstPolicy {
                overlap: Overlap::Last,
                ..
            },
        ) => Ok(b),
        (LocalTime::Ambiguous(a, _), _) => Ok(a),
        (LocalTime::Gap(end), DstPolicy { gap: Gap::Skip, .. }) => Err(format!(
            "local time {naive} does not exist in {tz} (clocks jump forward to {} there) and \
             `dst.gap` is \"skip\"; use \"shift\" to run at the end of the gap",
            end.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%:z")
        )),
        (LocalTime::Gap(end), _) => Ok(end),
    }
}

/// The UTC offset of `tz` at `at`, in seconds east.
pub fn offset_secs(at: DateTime<Utc>, tz: Tz) -> i32 {
    use chrono::Offset;
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The transition instant that skipped over the (non-existent) local time `naive`.
///
/// Bisects, over whole seconds (tz transitions happen on whole seconds), for the first instant
/// whose wall-clock time is at or after `naive`. Any UTC offset is well under two days, so the
/// transition lies within two days of `naive` read as if it were UTC.
fn end_of_gap(naive: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    const WINDOW_SECS: i64 = 2 * 86_400;
    let wall = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .map(|t| tz.from_utc_datetime(&t.naive_utc()).naive_local())
    };
    let fallback = naive.and_utc();
    let center = fallback.timestamp();
    let (mut lo, mut hi) = (center - WINDOW_SECS, center + WINDOW_SECS);
    // Invariant: wall(lo) < naive <= wall(hi).
    match (wall(lo), wall(hi)) {
        (Some(l), Some(h)) if l < naive && naive <= h => {}
        _ => return fallback,
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match wall(mid) {
            Some(w) if w >= naive => hi = mid,
            Some(_) => lo = mid,
            None => return fallback,
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or(fallback)
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Gap::Shift => "shift",
            Gap::Skip => "skip",
        })
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overlap::First => "first",
            Overlap::Both => "both",
            Overlap::Last => "last",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Australia::Lord_Howe, Europe::Berlin, Europe::London};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn local_time_in_new_york_spring_gap_resolves_to_end_of_gap() {
        let at = resolve_local(local("2026-03-08 02:30:00"), New_York);
        assert_eq!(at, utc("2026-03-08T07:00:00Z"));
        assert_eq!(
            at.with_timezone(&New_York).to_rfc3339(),
            "2026-03-08T03:00:00-04:00"
        );
        assert_eq!(resolve_local(local("2026-03-08 02:00:00"), New_York), at);
        assert_eq!(
            resolve_local(local("2026-03-08 02:59:59.999"), New_York),
            at
        );
        assert_eq!(resolve_local(local("2026-03-08 03:00:00"), New_York), at);
        assert_eq!(
            resolve_local(local("2026-03-08 01:59:59"), New_York),
            utc("2026-03-08T06:59:59Z")
        );
    }

    #[test]
    fn local_time_in_new_york_fall_overlap_resolves_to_first_occurrence() {
        assert_eq!(
            resolve_local(local("2026-11-01 01:30:00"), New_York),
            utc("2026-11-01T05:30:00Z"),
            "01:30 EDT, not 01:30 EST"
        );
        assert_eq!(
            resolve_local(local("2026-11-01 02:00:00"), New_York),
            utc("2026-11-01T07:00:00Z")
        );
    }

    #[test]
    fn local_times_around_berlin_transitions() {
        assert_eq!(
            resolve_local(local("2026-03-29 02:30:00"), Berlin),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            resolve_local(local("2026-10-25 02:30:00"), Berlin),
            utc("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn half_hour_gap_and_overlap_on_lord_howe() {
        // 02:00 +10:30 -> 02:30 +11:00 on 2026-10-04.
        assert_eq!(
            classify(local("2026-10-04 02:15:00"), Lord_Howe),
            LocalTime::Gap(utc("2026-10-03T15:30:00Z"))
        );
        // 02:00 +11:00 -> 01:30 +10:30 on 2026-04-05.
        assert_eq!(
            classify(local("2026-04-05 01:45:00"), Lord_Howe),
            LocalTime::Ambiguous(utc("2026-04-04T14:45:00Z"), utc("2026-04-04T15:15:00Z"))
        );
    }

    #[test]
    fn run_at_policy_skip_rejects_a_gap_and_last_picks_the_second_occurrence() {
        let skip = DstPolicy {
            gap: Gap::Skip,
            overlap: Overlap::First,
        };
        let err = resolve_local_with(local("2026-03-08 02:30:00"), New_York, skip).unwrap_err();
        assert!(err.contains("does not exist in America/New_York"), "{err}");
        assert!(err.contains("2026-03-08T03:00:00-04:00"), "{err}");
        let last = DstPolicy {
            gap: Gap::Shift,
            overlap: Overlap::Last,
        };
        let both = DstPolicy {
            overlap: Overlap::Both,
            ..last
        };
        let fall_back = local("2026-10-25 01:30:00");
        assert_eq!(
            resolve_local_with(fall_back, London, last),
            Ok(utc("2026-10-25T01:30:00Z"))
        );
        assert_eq!(
            resolve_local_with(fall_back, London, both),
            Ok(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            resolve_local_with(fall_back, London, DstPolicy::default()),
            Ok(utc("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn dst_policy_serde_defaults_and_rejects_unknown_keys() {
        let read = |s: &str| serde_json::from_str::<DstPolicy>(s);
        assert_eq!(read("{}").unwrap(), DstPolicy::default());
        assert_eq!(
            read(r#"{"gap": "skip", "overlap": "both"}"#).unwrap(),
            DstPolicy {
                gap: Gap::Skip,
                overlap: Overlap::Both
            }
        );
        assert!(read(r#"{"gap": "jump"}"#).is_err());
        assert!(read(r#"{"gaps": "skip"}"#).is_err());
        assert!(DstPolicy::default().is_default());
    }
}
