//! Tests of cron evaluation across DST: gaps, overlaps, every policy, and the proptest.

use super::*;
use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::{America::New_York, Asia::Dhaka, Europe::Berlin, Tz};
use proptest::prelude::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn cron(s: &str) -> CronExpr {
    CronExpr::parse(s).unwrap()
}

fn chain(expr: &CronExpr, from: DateTime<Utc>, tz: Tz, n: usize) -> Vec<DateTime<Utc>> {
    std::iter::successors(expr.next_after(from, tz), |t| expr.next_after(*t, tz))
        .take(n)
        .collect()
}

fn times(list: &[&str]) -> Vec<DateTime<Utc>> {
    list.iter().map(|s| utc(s)).collect()
}

#[test]
fn cron_time_inside_spring_gap_fires_once_after_the_gap() {
    let daily = cron("30 2 * * *");
    assert_eq!(
        chain(&daily, utc("2026-03-07T00:00:00Z"), New_York, 3),
        times(&[
            "2026-03-07T07:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z",
        ])
    );
    let half_hourly = cron("*/30 * * * *");
    assert_eq!(
        chain(&half_hourly, utc("2026-03-08T05:59:00Z"), New_York, 4),
        times(&[
            "2026-03-08T06:00:00Z",
            "2026-03-08T06:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:30:00Z",
        ]),
        "02:00 and 02:30 do not exist; they and 03:00 fire once, at 03:00 EDT"
    );
    assert_eq!(
        chain(
            &cron("0 30 2 * * *"),
            utc("2026-03-28T12:00:00Z"),
            Berlin,
            2
        ),
        times(&["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"])
    );
}

#[test]
fn cron_time_inside_fall_overlap_fires_once() {
    assert_eq!(
        chain(
            &cron("30 1 * * *"),
            utc("2026-10-31T12:00:00Z"),
            New_York,
            2
        ),
        times(&["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"])
    );
    assert_eq!(
        chain(
            &cron("*/30 * * * *"),
            utc("2026-11-01T04:59:00Z"),
            New_York,
            4
        ),
        times(&[
            "2026-11-01T05:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T07:00:00Z",
            "2026-11-01T07:30:00Z",
        ]),
        "wall times 01:00 and 01:30 fire once, in EDT"
    );
    assert_eq!(
        chain(
            &cron("0 30 2 * * *"),
            utc("2026-10-24T12:00:00Z"),
            Berlin,
            2
        ),
        times(&["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"])
    );
    // Starting inside the second pass of the overlap does not fire the hour again.
    assert_eq!(
        cron("30 1 * * *").next_after(utc("2026-11-01T06:00:00Z"), New_York),
        Some(utc("2026-11-02T06:30:00Z"))
    );
}

const EXPRESSIONS: &[&str] = &[
    "0 9 * * 1-5",
    "*/15 * * * *",
    "30 2 * * *",
    "0 30 1 * * *",
    "0 0 1 * 1",
    "15 */3 * * Sun",
    "0 0 9 * * Mon-Fri",
    "@hourly",
    "@monthly",
    "0 0 L * *",
    "0 12 15W * *",
    "0 30 1 ? * 6L",
    "0 2 * * FRI#2",
    "*/20 1-3 LW * *",
];

const POLICIES: &[DstPolicy] = &[
    DstPolicy {
        gap: Gap::Shift,
        overlap: Overlap::First,
    },
    DstPolicy {
        gap: Gap::Skip,
        overlap: Overlap::First,
    },
    DstPolicy {
        gap: Gap::Shift,
        overlap: Overlap::Last,
    },
    DstPolicy {
        gap: Gap::Skip,
        overlap: Overlap::Both,
    },
];

const ZONES: &[Tz] = &[
    Tz::UTC,
    New_York,
    Berlin,
    Dhaka,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::America::Santiago,
    chrono_tz::Asia::Kolkata,
];

/// Whether `t` ends a DST gap that skipped over a wall time matching `expr`.
fn ends_gap_over_match(expr: &CronExpr, t: DateTime<Utc>, tz: Tz) -> bool {
    let before = tz
        .from_utc_datetime(&(t - TimeDelta::seconds(1)).naive_utc())
        .naive_local();
    let at = tz.from_utc_datetime(&t.naive_utc()).naive_local();
    at - before > TimeDelta::seconds(1) && expr.next_wall_after(before).is_some_and(|w| w < at)
}

proptest! {
    #[test]
    fn chained_cron_fires_increase_and_match(
        e in 0..EXPRESSIONS.len(),
        z in 0..ZONES.len(),
        p in 0..POLICIES.len(),
        start in 1_577_836_800i64..1_893_456_000,
    ) {
        let expr = cron(EXPRESSIONS[e]).with_dst(POLICIES[p]);
        let tz = ZONES[z];
        let mut prev = DateTime::from_timestamp(start, 0).unwrap();
        for _ in 0..30 {
            let next = expr.next_after(prev, tz).unwrap();
            prop_assert!(next > prev, "{} in {}: {} after {}", EXPRESSIONS[e], tz, next, prev);
            let wall = tz.from_utc_datetime(&next.naive_utc()).naive_local();
            prop_assert!(
                expr.includes_local(wall) || ends_gap_over_match(&expr, next, tz),
                "{} in {}: {} ({}) does not match", EXPRESSIONS[e], tz, next, wall
            );
            prev = next;
        }
    }

    #[test]
    fn resolve_local_round_trips_existing_times(
        z in 0..ZONES.len(),
        secs in 1_577_836_800i64..1_893_456_000,
    ) {
        let tz = ZONES[z];
        let at = DateTime::from_timestamp(secs, 0).unwrap();
        let wall = tz.from_utc_datetime(&at.naive_utc()).naive_local();
        let resolved = resolve_local(wall, tz);
        // Equal, or the earlier occurrence of an overlapped wall time.
        prop_assert!(resolved <= at);
        prop_assert_eq!(tz.from_utc_datetime(&resolved.naive_utc()).naive_local(), wall);
    }
}

#[test]
fn skip_policy_drops_a_spring_forward_slot() {
    let skip = DstPolicy {
        gap: Gap::Skip,
        overlap: Overlap::First,
    };
    let daily = cron("30 2 * * *").with_dst(skip);
    assert_eq!(
        chain(&daily, utc("2026-03-07T00:00:00Z"), New_York, 2),
        times(&["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"])
    );
    // Lord Howe: 02:10 does not exist on 2026-10-04 (02:00 +10:30 -> 02:30 +11:00).
    let lh = chrono_tz::Australia::Lord_Howe;
    assert_eq!(
        chain(&cron("10 2 * * *"), utc("2026-10-02T16:00:00Z"), lh, 2),
        times(&["2026-10-03T15:30:00Z", "2026-10-04T15:10:00Z"])
    );
    assert_eq!(
        chain(
            &cron("10 2 * * *").with_dst(skip),
            utc("2026-10-02T16:00:00Z"),
            lh,
            1
        ),
        times(&["2026-10-04T15:10:00Z"])
    );
}

#[test]
fn overlap_policies_pick_first_last_or_both() {
    let policy = |overlap| DstPolicy {
        gap: Gap::Shift,
        overlap,
    };
    let london = chrono_tz::Europe::London;
    let from = utc("2026-10-24T12:00:00Z");
    let expr = |o| cron("30 1 * * *").with_dst(policy(o));
    assert_eq!(
        chain(&expr(Overlap::First), from, london, 2),
        times(&["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"])
    );
    assert_eq!(
        chain(&expr(Overlap::Last), from, london, 2),
        times(&["2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"])
    );
    assert_eq!(
        chain(&expr(Overlap::Both), from, london, 3),
        times(&[
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:30:00Z",
            "2026-10-26T01:30:00Z"
        ])
    );
    // Starting between the two occurrences.
    assert_eq!(
        expr(Overlap::Both).next_after(utc("2026-10-25T01:00:00Z"), london),
        Some(utc("2026-10-25T01:30:00Z"))
    );
    // Every 30 minutes through New York's fall-back under `both`: each real instant fires.
    assert_eq!(
        chain(
            &cron("*/30 * * * *").with_dst(policy(Overlap::Both)),
            utc("2026-11-01T04:59:00Z"),
            New_York,
            6
        ),
        times(&[
            "2026-11-01T05:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:30:00Z",
            "2026-11-01T07:00:00Z",
            "2026-11-01T07:30:00Z",
        ])
    );
    // Lord Howe's 30-minute overlap: 01:45 happens at +11:00 and at +10:30.
    let lh = chrono_tz::Australia::Lord_Howe;
    assert_eq!(
        chain(
            &cron("45 1 * * *").with_dst(policy(Overlap::Both)),
            utc("2026-04-04T12:00:00Z"),
            lh,
            2
        ),
        times(&["2026-04-04T14:45:00Z", "2026-04-04T15:15:00Z"])
    );
}

#[test]
fn next_slot_annotates_dst() {
    let slot = cron("30 2 * * *")
        .next_slot(utc("2026-03-08T00:00:00Z"), New_York)
        .unwrap();
    assert_eq!(slot.note, Some(Note::GapShifted));
    assert_eq!(slot.wall, local("2026-03-08 02:30:00"));
    let slot = cron("30 1 * * *")
        .next_slot(utc("2026-11-01T00:00:00Z"), New_York)
        .unwrap();
    assert_eq!(slot.note, Some(Note::OverlapFirst));
    assert_eq!(
        cron("30 1 * * *")
            .next_slot(utc("2026-11-03T00:00:00Z"), New_York)
            .unwrap()
            .note,
        None
    );
}
