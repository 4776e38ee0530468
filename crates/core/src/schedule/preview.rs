//! [`preview`]: the coming fire times of a schedule, with their local times and how DST shaped
//! them. Pure: callers (the REST `POST /v1/schedules/preview`, the CLI) bring the input.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde::ser::Serializer;

use super::calendar::{Calendar, excluded_by};
use super::cron::{CronExpr, Note};
use super::interval::Interval;

/// Most entries one preview returns, whatever the limit asks.
pub const MAX_PREVIEW: usize = 10_000;

/// What to preview.
#[derive(Debug, Clone, Copy)]
pub enum PreviewRule<'a> {
    /// A cron expression, with its day rule and DST policy.
    Cron(&'a CronExpr),
    /// An `every` interval on the grid `anchor + k * interval`.
    Every {
        /// The period.
        interval: Interval,
        /// A point of the grid (the schedule's `start_at`).
        anchor: DateTime<Utc>,
    },
}

/// How far to preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// This many fire times (skipped slots are listed but not counted).
    Count(usize),
    /// Every fire time up to this instant, inclusive.
    Until(DateTime<Utc>),
}

/// One previewed slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewSlot {
    /// When it fires (for a skipped slot: where the gap ends).
    pub at: DateTime<Utc>,
    /// The wall-clock time in the zone at `at`.
    pub local: NaiveDateTime,
    /// The zone's UTC offset at `at`, serialized as `+05:45`.
    #[serde(serialize_with = "offset_string")]
    pub offset: FixedOffset,
    /// For a shifted or skipped slot, the wall time the expression named (inside the gap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nominal: Option<NaiveDateTime>,
    /// How DST shaped it, and `excluded`; empty for an ordinary slot. Serialized as
    /// `annotations`, the name in `sked_api::stats::PreviewSlot`, whose JSON shape this is.
    #[serde(rename = "annotations")]
    pub notes: Vec<Note>,
    /// The calendar that excludes the slot (note `excluded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
}

fn offset_string<S: Serializer>(offset: &FixedOffset, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(offset)
}

/// The fire times of `rule` at or after `from`, read in `tz`, until `limit` (at most
/// [`MAX_PREVIEW`] entries), oldest first.
///
/// Cron slots follow the expression's DST policy: a slot shifted out of a gap has the note
/// `gap_shifted` and its `nominal` wall time; under `skip` the slot is listed with `skipped`
/// (it does not fire and does not count towards [`Limit::Count`]); in an overlap the note says
/// which occurrence fires (`overlap_first`, `overlap_second`). `every` slots are absolute
/// instants; only their local reading changes across DST.
pub fn preview(
    rule: PreviewRule<'_>,
    tz: Tz,
    from: DateTime<Utc>,
    limit: Limit,
) -> Vec<PreviewSlot> {
    preview_excluding(rule, tz, from, limit, &[])
}

/// [`preview`] of a schedule that attaches calendars: a slot on a day one of `calendars`
/// excludes is listed with the note `excluded` and that calendar's name, and does not count
/// towards [`Limit::Count`] (it does not fire).
pub fn preview_excluding(
    rule: PreviewRule<'_>,
    tz: Tz,
    from: DateTime<Utc>,
    limit: Limit,
    calendars: &[(String, Arc<Calendar>)],
) -> Vec<PreviewSlot> {
    let mut out = Vec::new();
    let mut fired = 0usize;
    let done = |at: DateTime<Utc>, fired: usize, len: usize| {
        len >= MAX_PREVIEW
            || match limit {
                Limit::Count(n) => fired >= n,
                Limit::Until(to) => at > to,
            }
    };
    if limit == Limit::Count(0) {
        return out;
    }
    let in_limit = |at: DateTime<Utc>| match limit {
        Limit::Count(_) => true,
        Limit::Until(to) => at <= to,
    };
    match rule {
        PreviewRule::Cron(expr) => {
            let mut after = from
                .checked_sub_signed(TimeDelta::nanoseconds(1))
                .unwrap_or(from);
            loop {
                let mut skipped = Vec::new();
                let slot = expr.scan(after, tz, |s| skipped.push(s));
                for s in skipped {
                    if !in_limit(s.at) || out.len() >= MAX_PREVIEW {
                        return out;
                    }
                    out.push(entry(s.at, tz, Some(s.wall), vec![Note::Skipped]));
                }
                let Some(slot) = slot else { return out };
                if !in_limit(slot.at) || out.len() >= MAX_PREVIEW {
                    return out;
                }
                let nominal = (slot.note == Some(Note::GapShifted)).then_some(slot.wall);
                let mut e = entry(slot.at, tz, nominal, slot.note.into_iter().collect());
                if exclude(&mut e, calendars) {
                    fired += 1;
                }
                out.push(e);
                if done(slot.at, fired, out.len()) {
                    return out;
                }
                after = slot.at;
            }
        }
        PreviewRule::Every { interval, anchor } => {
            let Ok(step) = TimeDelta::from_std(interval.as_duration()) else {
                return out;
            };
            let step_ms = step.num_milliseconds().max(1);
            let behind = (from - anchor).num_milliseconds();
            let k = if behind <= 0 {
                0
            } else {
                (behind + step_ms - 1) / step_ms
            };
            let Some(mut at) = TimeDelta::try_milliseconds(k.saturating_mul(step_ms))
                .and_then(|d| anchor.checked_add_signed(d))
            else {
                return out;
            };
            while in_limit(at) && !done(at, fired, out.len()) {
                let mut e = entry(at, tz, None, Vec::new());
                if exclude(&mut e, calendars) {
                    fired += 1;
                }
                out.push(e);
                match at.checked_add_signed(step) {
                    Some(next) => at = next,
                    None => break,
                }
            }
            out
        }
    }
}

/// Marks `e` excluded if a calendar excludes it; whether it still fires.
fn exclude(e: &mut PreviewSlot, calendars: &[(String, Arc<Calendar>)]) -> bool {
    match excluded_by(calendars, e.at) {
        Some(name) => {
            e.notes.push(Note::Excluded);
            e.calendar = Some(name.to_owned());
            false
        }
        None => true,
    }
}

fn entry(
    at: DateTime<Utc>,
    tz: Tz,
    nominal: Option<NaiveDateTime>,
    notes: Vec<Note>,
) -> PreviewSlot {
    let local = tz.from_utc_datetime(&at.naive_utc());
    PreviewSlot {
        at,
        local: local.naive_local(),
        offset: local.offset().fix(),
        nominal,
        notes,
        calendar: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::dst::{DstPolicy, Gap, Overlap};
    use super::*;
    use chrono_tz::{America::New_York, Europe::London};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn preview_annotates_a_shifted_spring_forward_slot() {
        let expr = CronExpr::parse("30 2 * * *").unwrap();
        let slots = preview(
            PreviewRule::Cron(&expr),
            New_York,
            utc("2026-03-07T00:00:00Z"),
            Limit::Count(3),
        );
        assert_eq!(slots.len(), 3);
        assert_eq!(slots[1].at, utc("2026-03-08T07:00:00Z"));
        assert_eq!(slots[1].notes, vec![Note::GapShifted]);
        assert_eq!(slots[1].local.to_string(), "2026-03-08 03:00:00");
        assert_eq!(slots[1].nominal.unwrap().to_string(), "2026-03-08 02:30:00");
        assert_eq!(slots[1].offset.to_string(), "-04:00");
        let json = serde_json::to_value(&slots[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at": "2026-03-08T07:00:00Z", "local": "2026-03-08T03:00:00",
                "offset": "-04:00", "nominal": "2026-03-08T02:30:00", "annotations": ["gap_shifted"]})
        );
    }

    #[test]
    fn preview_lists_skipped_slots_without_counting_them() {
        let expr = CronExpr::parse("30 2 * * *").unwrap().with_dst(DstPolicy {
            gap: Gap::Skip,
            overlap: Overlap::First,
        });
        let slots = preview(
            PreviewRule::Cron(&expr),
            New_York,
            utc("2026-03-07T00:00:00Z"),
            Limit::Count(2),
        );
        let notes: Vec<_> = slots.iter().map(|s| s.notes.clone()).collect();
        assert_eq!(notes, vec![vec![], vec![Note::Skipped], vec![]]);
        assert_eq!(slots[2].at, utc("2026-03-09T06:30:00Z"));
    }

    #[test]
    fn preview_both_occurrences_in_london_fall_back() {
        let expr = CronExpr::parse("30 1 * * *").unwrap().with_dst(DstPolicy {
            gap: Gap::Shift,
            overlap: Overlap::Both,
        });
        let slots = preview(
            PreviewRule::Cron(&expr),
            London,
            utc("2026-10-25T00:00:00Z"),
            Limit::Until(utc("2026-10-25T23:00:00Z")),
        );
        let got: Vec<_> = slots.iter().map(|s| (s.at, s.notes.clone())).collect();
        assert_eq!(
            got,
            vec![
                (utc("2026-10-25T00:30:00Z"), vec![Note::OverlapFirst]),
                (utc("2026-10-25T01:30:00Z"), vec![Note::OverlapSecond]),
            ]
        );
    }

    #[test]
    fn preview_of_every_stays_on_its_grid_across_dst() {
        let slots = preview(
            PreviewRule::Every {
                interval: Interval::parse("1h").unwrap(),
                anchor: utc("2026-03-08T05:00:00Z"),
            },
            New_York,
            utc("2026-03-08T05:30:00Z"),
            Limit::Count(3),
        );
        let locals: Vec<String> = slots.iter().map(|s| s.local.to_string()).collect();
        assert_eq!(
            locals,
            [
                "2026-03-08 01:00:00",
                "2026-03-08 03:00:00",
                "2026-03-08 04:00:00"
            ],
            "one hour apart in absolute time; the local clock skips 02:00"
        );
        assert_eq!(slots[0].at, utc("2026-03-08T06:00:00Z"));
    }

    #[test]
    fn preview_lists_excluded_slots_without_counting_them() {
        let expr = CronExpr::parse("0 9 * * *").unwrap();
        let weekends: Calendar =
            serde_json::from_str(r#"{"timezone": "America/New_York", "weekdays": ["sat", "sun"]}"#)
                .unwrap();
        let slots = preview_excluding(
            PreviewRule::Cron(&expr),
            New_York,
            utc("2026-12-04T00:00:00Z"), // a Friday
            Limit::Count(2),
            &[("weekends".to_owned(), Arc::new(weekends))],
        );
        let got: Vec<_> = slots
            .iter()
            .map(|s| (s.local.to_string(), s.notes.clone(), s.calendar.clone()))
            .collect();
        let w = Some("weekends".to_owned());
        assert_eq!(
            got,
            vec![
                ("2026-12-04 09:00:00".to_owned(), vec![], None),
                (
                    "2026-12-05 09:00:00".to_owned(),
                    vec![Note::Excluded],
                    w.clone()
                ),
                ("2026-12-06 09:00:00".to_owned(), vec![Note::Excluded], w),
                ("2026-12-07 09:00:00".to_owned(), vec![], None),
            ]
        );
    }

    #[test]
    fn preview_of_every_marks_excluded_slots_up_to_its_end() {
        let sundays: Calendar = serde_json::from_str(r#"{"weekdays": ["sun"]}"#).unwrap();
        let slots = preview_excluding(
            PreviewRule::Every {
                interval: Interval::parse("12h").unwrap(),
                anchor: utc("2026-12-05T00:00:00Z"), // a Saturday
            },
            Tz::UTC,
            utc("2026-12-05T00:00:00Z"),
            Limit::Until(utc("2026-12-07T00:00:00Z")),
            &[("sundays".to_owned(), Arc::new(sundays))],
        );
        let excluded: Vec<bool> = slots.iter().map(|s| s.notes == [Note::Excluded]).collect();
        assert_eq!(
            excluded,
            [false, false, true, true, false],
            "to is inclusive"
        );
    }

    #[test]
    fn preview_is_bounded() {
        let expr = CronExpr::parse("* * * * * *").unwrap();
        let slots = preview(
            PreviewRule::Cron(&expr),
            Tz::UTC,
            utc("2026-01-01T00:00:00Z"),
            Limit::Count(usize::MAX),
        );
        assert_eq!(slots.len(), MAX_PREVIEW);
        assert!(
            preview(
                PreviewRule::Cron(&expr),
                Tz::UTC,
                utc("2026-01-01T00:00:00Z"),
                Limit::Count(0)
            )
            .is_empty()
        );
    }
}
