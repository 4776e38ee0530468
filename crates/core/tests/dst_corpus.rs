//! DST corpus: cron fire times around every transition of ten zones, for every DST policy,
//! checked against a brute-force reference written here from the documented rules
//! (`docs/schedules.md`), not from the implementation:
//!
//! 1. enumerate every UTC minute of a window around the transition and read its wall time;
//! 2. every wall minute that matches the expression (a predicate written independently of the
//!    parser) is an *occurrence list*: the UTC minutes that show it (one, two in an overlap,
//!    none in a gap);
//! 3. none (gap): `shift` fires at the first instant whose wall time is later, `skip` does not
//!    fire; two (overlap): `first` / `last` / `both`;
//! 4. the fire set is sorted and deduplicated (a shifted slot and a real one on the same
//!    instant fire once).
//!
//! The zones cover 30-minute DST (Lord Howe), transitions at midnight (Santiago, Havana),
//! negative DST in the tz database (Dublin), a 45-minute offset (Chatham), a zone without DST
//! today but with a 2009 transition at 23:00 (Dhaka), and the usual New York / London / Berlin /
//! Adelaide.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use sked_core::schedule::{CronExpr, DstPolicy, Gap, Overlap};

type Matches = fn(NaiveDateTime) -> bool;

/// Expressions and independent predicates for the wall times they match.
const EXPRESSIONS: &[(&str, Matches)] = &[
    ("*/15 * * * *", |w| w.minute() % 15 == 0),
    ("30 2 * * *", |w| w.hour() == 2 && w.minute() == 30),
    ("0 0 * * *", |w| w.hour() == 0 && w.minute() == 0),
    ("30 1 * * *", |w| w.hour() == 1 && w.minute() == 30),
    ("45 2,3 * * *", |w| {
        (w.hour() == 2 || w.hour() == 3) && w.minute() == 45
    }),
    ("10 23,0 * * *", |w| {
        (w.hour() == 23 || w.hour() == 0) && w.minute() == 10
    }),
    ("0 * * * 0", |w| {
        w.minute() == 0 && w.weekday() == chrono::Weekday::Sun
    }),
];

const ZONES: &[Tz] = &[
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::America::Santiago,
    chrono_tz::America::Havana,
    chrono_tz::Europe::Dublin,
    chrono_tz::Pacific::Chatham,
    chrono_tz::America::New_York,
    chrono_tz::Europe::London,
    chrono_tz::Asia::Dhaka,
    chrono_tz::Europe::Berlin,
    chrono_tz::Australia::Adelaide,
];

fn policies() -> Vec<DstPolicy> {
    let mut out = Vec::new();
    for gap in [Gap::Shift, Gap::Skip] {
        for overlap in [Overlap::First, Overlap::Both, Overlap::Last] {
            out.push(DstPolicy { gap, overlap });
        }
    }
    out
}

fn offset(tz: Tz, t: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

fn wall(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    tz.from_utc_datetime(&t.naive_utc()).naive_local()
}

/// Transition instants (to the minute) of `tz` between the two years, found by scanning.
fn transitions(tz: Tz, from_year: i32, to_year: i32) -> Vec<DateTime<Utc>> {
    let start = Utc
        .with_ymd_and_hms(from_year, 1, 1, 0, 0, 0)
        .single()
        .expect("year start");
    let end = Utc
        .with_ymd_and_hms(to_year + 1, 1, 1, 0, 0, 0)
        .single()
        .expect("year end");
    let mut out = Vec::new();
    let mut t = start;
    while t < end {
        let next = t + TimeDelta::hours(1);
        if offset(tz, t) != offset(tz, next) {
            let mut m = t;
            while offset(tz, m) == offset(tz, t) {
                m += TimeDelta::minutes(1);
            }
            out.push(m);
        }
        t = next;
    }
    out
}

/// Every UTC minute of a window with its wall time, and each wall minute's occurrences.
struct Window {
    tz: Tz,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    scan: Vec<(DateTime<Utc>, NaiveDateTime)>,
    occurrences: BTreeMap<NaiveDateTime, Vec<DateTime<Utc>>>,
}

impl Window {
    fn new(tz: Tz, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Window {
        let margin = TimeDelta::days(1);
        let mut scan = Vec::new();
        let mut t = lo - margin;
        while t <= hi + margin {
            scan.push((t, wall(tz, t)));
            t += TimeDelta::minutes(1);
        }
        let mut occurrences: BTreeMap<NaiveDateTime, Vec<DateTime<Utc>>> = BTreeMap::new();
        for (t, w) in &scan {
            occurrences.entry(*w).or_default().push(*t);
        }
        Window {
            tz,
            lo,
            hi,
            scan,
            occurrences,
        }
    }
}

/// The reference fire times in `(lo, hi]` of the window.
fn reference(window: &Window, matches: Matches, policy: DstPolicy) -> Vec<DateTime<Utc>> {
    let Window {
        tz,
        lo,
        hi,
        scan,
        occurrences,
    } = window;
    let first_wall = scan.iter().map(|(_, w)| *w).min().expect("window");
    let last_wall = scan.iter().map(|(_, w)| *w).max().expect("window");
    let mut fires = Vec::new();
    let mut w = first_wall;
    while w <= last_wall {
        if matches(w) {
            match occurrences.get(&w).map(Vec::as_slice) {
                Some([one]) => fires.push(*one),
                Some([a, b]) => match policy.overlap {
                    Overlap::First => fires.push(*a),
                    Overlap::Last => fires.push(*b),
                    Overlap::Both => fires.extend([*a, *b]),
                },
                Some(other) => panic!("{tz}: {w} occurs {} times", other.len()),
                None if policy.gap == Gap::Shift => {
                    let end = scan
                        .iter()
                        .find(|(_, later)| *later > w)
                        .map(|(t, _)| *t)
                        .expect("the window ends after the gap");
                    fires.push(end);
                }
                None => {}
            }
        }
        w += TimeDelta::minutes(1);
    }
    fires.sort();
    fires.dedup();
    fires.retain(|t| t > lo && t <= hi);
    fires
}

fn actual(expr: &CronExpr, tz: Tz, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = lo;
    while let Some(next) = expr.next_after(t, tz) {
        assert!(next > t, "{expr} in {tz}: {next} not after {t}");
        if next > hi {
            break;
        }
        out.push(next);
        t = next;
    }
    out
}

#[test]
fn cron_fires_match_the_brute_force_reference_around_every_transition() {
    let mut windows = 0;
    for &tz in ZONES {
        let mut found = transitions(tz, 2025, 2026);
        if tz == chrono_tz::Asia::Dhaka {
            found = transitions(tz, 2009, 2009);
        }
        assert!(
            found.len() >= 2,
            "{tz}: expected transitions, found {found:?}"
        );
        for transition in found {
            let lo = transition - TimeDelta::hours(30);
            let hi = transition + TimeDelta::hours(30);
            let window = Window::new(tz, lo, hi);
            for policy in policies() {
                for (text, matches) in EXPRESSIONS {
                    let expr = CronExpr::parse(text)
                        .expect("corpus expression")
                        .with_dst(policy);
                    let want = reference(&window, *matches, policy);
                    let got = actual(&expr, tz, lo, hi);
                    assert_eq!(
                        got, want,
                        "`{text}` in {tz} around {transition} with {policy:?}"
                    );
                }
            }
            windows += 1;
        }
    }
    assert!(windows >= 20, "only {windows} transition windows");
}

#[test]
fn corpus_zones_have_the_transitions_they_are_here_for() {
    // Lord Howe moves 30 minutes, Chatham sits at +12:45 / +13:45.
    let lh = chrono_tz::Australia::Lord_Howe;
    let t = transitions(lh, 2026, 2026)[0];
    assert_eq!(
        (offset(lh, t) - offset(lh, t - TimeDelta::minutes(1))).abs(),
        1800
    );
    let chatham = chrono_tz::Pacific::Chatham;
    assert_eq!(
        offset(chatham, transitions(chatham, 2026, 2026)[0]) % 3600,
        45 * 60
    );
    // Havana's clocks change at midnight.
    let havana = chrono_tz::America::Havana;
    let t = transitions(havana, 2026, 2026)[0];
    assert_eq!(
        wall(havana, t - TimeDelta::minutes(1)).time().to_string(),
        "23:59:00"
    );
}
