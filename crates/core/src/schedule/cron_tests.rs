//! Tests of cron parsing and evaluation: every token, edge months, the day rule, DST policies.

use super::*;
use chrono::{DateTime, Datelike, TimeDelta, Utc, Weekday};
use chrono_tz::{Asia::Dhaka, Tz};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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
fn cron_accepts_five_six_fields_and_macros() {
    for ok in [
        "0 9 * * 1-5",
        "*/15 * * * *",
        "0 0 9 * * Mon-Fri",
        "30 */5 * * * *",
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
        "  0 9 * * *  ",
    ] {
        let expr = CronExpr::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(expr.as_str(), ok);
    }
}

#[test]
fn cron_rejects_other_shapes_with_clear_messages() {
    assert_eq!(
        CronExpr::parse(" ").unwrap_err(),
        "cron expression is empty"
    );
    assert!(
        CronExpr::parse("0 0 9 * * * 2030 1")
            .unwrap_err()
            .contains("found 8")
    );
    assert!(
        CronExpr::parse("0 9 * *")
            .unwrap_err()
            .contains("expected 5 fields")
    );
    assert!(
        CronExpr::parse("@reboot")
            .unwrap_err()
            .contains("`@reboot` is not supported")
    );
    assert!(
        CronExpr::parse("61 * * * *")
            .unwrap_err()
            .starts_with("minute field `61`: `61` is out of range 0-59")
    );
    assert!(
        CronExpr::parse("0 9 * * 8")
            .unwrap_err()
            .contains("out of range 0-7")
    );
    assert!(
        CronExpr::parse("0 9 * * 5-1")
            .unwrap_err()
            .contains("backwards")
    );
    assert!(CronExpr::parse("0 9 * * Mon-Fry").is_err());
    assert!(CronExpr::parse("x y z a b").is_err());
}

#[test]
fn dhaka_weekday_nine_am_is_three_am_utc() {
    let expr = cron("0 0 9 * * Mon-Fri");
    // 2026-06-01 is a Monday.
    let fires = chain(&expr, utc("2026-06-01T00:00:00Z"), Dhaka, 6);
    assert_eq!(
        fires,
        times(&[
            "2026-06-01T03:00:00Z",
            "2026-06-02T03:00:00Z",
            "2026-06-03T03:00:00Z",
            "2026-06-04T03:00:00Z",
            "2026-06-05T03:00:00Z",
            "2026-06-08T03:00:00Z",
        ])
    );
}

#[test]
fn five_field_numeric_days_of_week_follow_crontab() {
    let from = utc("2026-01-01T00:00:00Z");
    let tz = Tz::UTC;
    assert_eq!(
        chain(&cron("0 9 * * 1-5"), from, tz, 40),
        chain(&cron("0 0 9 * * Mon-Fri"), from, tz, 40)
    );
    assert_eq!(
        chain(&cron("0 9 * * Mon-Fri"), from, tz, 40),
        chain(&cron("0 0 9 * * Mon-Fri"), from, tz, 40)
    );
    for sunday in ["0 9 * * 0", "0 9 * * 7", "0 9 * * Sun"] {
        for t in chain(&cron(sunday), from, tz, 5) {
            assert_eq!(t.weekday(), Weekday::Sun, "{sunday}");
        }
    }
    let weekend: Vec<Weekday> = chain(&cron("0 9 * * 6,0"), from, tz, 4)
        .iter()
        .map(|t| t.weekday())
        .collect();
    assert_eq!(
        weekend,
        [Weekday::Sat, Weekday::Sun, Weekday::Sat, Weekday::Sun]
    );
    let every_other: Vec<Weekday> = chain(&cron("0 9 * * */2"), from, tz, 4)
        .iter()
        .map(|t| t.weekday())
        .collect();
    assert_eq!(
        every_other,
        [Weekday::Thu, Weekday::Sat, Weekday::Sun, Weekday::Tue]
    );
    // 6 fields use the cron crate's numbering: 2 = Monday.
    for t in chain(&cron("0 0 9 * * 2"), from, tz, 5) {
        assert_eq!(t.weekday(), Weekday::Mon);
    }
}

#[test]
fn five_field_with_both_day_fields_restricted_matches_either() {
    // 2026-06-01 is a Monday; 1st of July is a Wednesday.
    let fires = chain(&cron("0 0 1 * 1"), utc("2026-06-20T00:00:00Z"), Tz::UTC, 4);
    assert_eq!(
        fires,
        times(&[
            "2026-06-22T00:00:00Z",
            "2026-06-29T00:00:00Z",
            "2026-07-01T00:00:00Z",
            "2026-07-06T00:00:00Z",
        ])
    );
    // A `*` day field keeps plain AND semantics.
    let fires = chain(
        &cron("0 0 */2 * 1"),
        utc("2026-06-01T00:00:00Z"),
        Tz::UTC,
        2,
    );
    assert_eq!(
        fires,
        times(&["2026-06-15T00:00:00Z", "2026-06-29T00:00:00Z"])
    );
}

#[test]
fn macros_fire_when_expected() {
    let from = utc("2026-06-10T10:15:00Z");
    let next = |s: &str| cron(s).next_after(from, Tz::UTC).unwrap();
    assert_eq!(next("@hourly"), utc("2026-06-10T11:00:00Z"));
    assert_eq!(next("@daily"), utc("2026-06-11T00:00:00Z"));
    assert_eq!(next("@midnight"), utc("2026-06-11T00:00:00Z"));
    assert_eq!(next("@weekly"), utc("2026-06-14T00:00:00Z"));
    assert_eq!(next("@monthly"), utc("2026-07-01T00:00:00Z"));
    assert_eq!(next("@yearly"), utc("2027-01-01T00:00:00Z"));
    assert_eq!(next("@annually"), utc("2027-01-01T00:00:00Z"));
    assert_eq!(next("@HOURLY"), utc("2026-06-10T11:00:00Z"));
}

#[test]
fn next_after_is_strictly_after() {
    let expr = cron("0 9 * * *");
    let at = utc("2026-06-10T09:00:00Z");
    assert_eq!(
        expr.next_after(at, Tz::UTC),
        Some(utc("2026-06-11T09:00:00Z"))
    );
    assert_eq!(
        expr.next_after(at - TimeDelta::milliseconds(1), Tz::UTC),
        Some(at)
    );
    let every_second = cron("* * * * * *");
    assert_eq!(
        every_second.next_after(utc("2026-06-10T09:00:00.5Z"), Tz::UTC),
        Some(utc("2026-06-10T09:00:01Z"))
    );
}

#[test]
fn cron_that_never_matches_has_no_fire() {
    assert_eq!(
        cron("0 0 30 2 *").next_after(utc("2026-01-01T00:00:00Z"), Tz::UTC),
        None
    );
}

#[test]
fn cron_serde_is_the_original_text() {
    let expr = cron("0 9 * * 1-5");
    let json = serde_json::to_string(&expr).unwrap();
    assert_eq!(json, r#""0 9 * * 1-5""#);
    assert_eq!(serde_json::from_str::<CronExpr>(&json).unwrap(), expr);
    assert!(serde_json::from_str::<CronExpr>(r#""0 0 0 9 * * * *""#).is_err());
}

/// Local dates (`%Y-%m-%d`) of the first `n` fires after `from`, in UTC.
fn dates(expr: &str, from: &str, n: usize) -> Vec<String> {
    chain(&cron(expr), utc(from), Tz::UTC, n)
        .iter()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .collect()
}

#[test]
fn last_day_of_month_in_leap_and_common_years() {
    assert_eq!(
        dates("0 0 L * *", "2024-01-15T00:00:00Z", 4),
        ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]
    );
    assert_eq!(
        dates("0 0 L * *", "2025-01-15T00:00:00Z", 4),
        ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30"]
    );
    assert_eq!(
        dates("0 0 L-2 * *", "2024-01-15T00:00:00Z", 4),
        ["2024-01-29", "2024-02-27", "2024-03-29", "2024-04-28"]
    );
    assert_eq!(
        dates("0 0 L-2 2 *", "2025-01-01T00:00:00Z", 1),
        ["2025-02-26"]
    );
    assert_eq!(
        dates("0 0 0 L 2 ?", "2027-03-01T00:00:00Z", 2),
        ["2028-02-29", "2029-02-28"]
    );
    // 1 and L together: first and last of each month.
    assert_eq!(
        dates("0 0 1,L * *", "2026-04-15T00:00:00Z", 3),
        ["2026-04-30", "2026-05-01", "2026-05-31"]
    );
}

#[test]
fn nearest_weekday_stays_inside_the_month() {
    // 2026-08-01 is a Saturday: 1W is Monday the 3rd, never Friday July 31st.
    assert_eq!(
        dates("0 0 1W * *", "2026-07-15T00:00:00Z", 1),
        ["2026-08-03"]
    );
    // 2026-11-01 is a Sunday: Monday the 2nd.
    assert_eq!(
        dates("0 0 1W 11 *", "2026-07-15T00:00:00Z", 1),
        ["2026-11-02"]
    );
    // 2026-05-31 is a Sunday and the last day: Friday the 29th, never Monday June 1st.
    assert_eq!(
        dates("0 0 31W 5 *", "2026-01-01T00:00:00Z", 1),
        ["2026-05-29"]
    );
    // 2026-01-31 is a Saturday: Friday the 30th. April has no 31st: no fire.
    assert_eq!(
        dates("0 0 31W * *", "2026-01-01T00:00:00Z", 3),
        ["2026-01-30", "2026-03-31", "2026-05-29"]
    );
    // 2026-08-15 is a Saturday: Friday the 14th; 2025-06-15 a Sunday: Monday the 16th.
    assert_eq!(
        dates("0 0 15W 8 *", "2026-01-01T00:00:00Z", 1),
        ["2026-08-14"]
    );
    assert_eq!(
        dates("0 0 15W 6 *", "2025-01-01T00:00:00Z", 1),
        ["2025-06-16"]
    );
    // A weekday stays itself.
    assert_eq!(
        dates("0 0 15W 7 *", "2026-01-01T00:00:00Z", 1),
        ["2026-07-15"]
    );
}

#[test]
fn last_weekday_of_month() {
    // Jan 31 2026 Sat -> 30; Feb 28 2026 Sat -> 27; Mar 31 Tue; Apr 30 Thu; May 31 Sun -> 29.
    assert_eq!(
        dates("0 0 LW * *", "2026-01-01T00:00:00Z", 5),
        [
            "2026-01-30",
            "2026-02-27",
            "2026-03-31",
            "2026-04-30",
            "2026-05-29"
        ]
    );
    // Feb 29 2024 is a Thursday.
    assert_eq!(
        dates("0 0 LW 2 *", "2024-01-01T00:00:00Z", 1),
        ["2024-02-29"]
    );
}

#[test]
fn last_friday_in_months_with_four_and_five_fridays() {
    // January 2026 has five Fridays (2..30), February four (6..27), May five (1..29).
    for expr in [
        "0 0 * * 5L",
        "0 0 * * FRIL",
        "0 0 * * fri#L",
        "0 0 0 ? * 6L",
        "0 0 0 ? * FRI#L",
    ] {
        assert_eq!(
            dates(expr, "2026-01-01T00:00:00Z", 5),
            [
                "2026-01-30",
                "2026-02-27",
                "2026-03-27",
                "2026-04-24",
                "2026-05-29"
            ],
            "{expr}"
        );
    }
    assert_eq!(
        dates("0 0 * * 5L", "2025-02-01T00:00:00Z", 1),
        ["2025-02-28"]
    );
}

#[test]
fn nth_weekday_of_month() {
    assert_eq!(
        dates("0 0 * * FRI#2", "2026-01-01T00:00:00Z", 3),
        ["2026-01-09", "2026-02-13", "2026-03-13"]
    );
    // Only months with five Fridays have a fifth.
    assert_eq!(
        dates("0 0 * * 5#5", "2026-01-01T00:00:00Z", 4),
        ["2026-01-30", "2026-05-29", "2026-07-31", "2026-10-30"]
    );
    // 6 fields: 6 = Friday, as in Quartz.
    assert_eq!(
        dates("0 0 0 ? * 6#2", "2026-01-01T00:00:00Z", 1),
        ["2026-01-09"]
    );
    assert_eq!(
        dates("0 0 * * TUE#3", "2025-06-01T00:00:00Z", 1),
        ["2025-06-17"]
    );
    assert_eq!(
        dates("0 0 * * MON#1,FRI#L", "2026-02-01T00:00:00Z", 2),
        ["2026-02-02", "2026-02-27"]
    );
}

#[test]
fn question_mark_years_and_names() {
    assert_eq!(
        dates("0 0 0 1 1 ? 2027-2029", "2026-06-01T00:00:00Z", 5),
        ["2027-01-01", "2028-01-01", "2029-01-01"]
    );
    assert_eq!(
        dates("0 0 0 1 1 ? 1970-2199/2", "2025-06-01T00:00:00Z", 1),
        ["2026-01-01"]
    );
    assert_eq!(
        dates("0 0 1 jan-MAR ?", "2026-01-15T00:00:00Z", 2),
        ["2026-02-01", "2026-03-01"]
    );
    assert_eq!(
        dates("0 0 ? * monday", "2026-01-01T00:00:00Z", 1),
        ["2026-01-05"]
    );
    assert_eq!(
        dates("0 0 0 ? FEB,december SUN", "2026-01-01T00:00:00Z", 1),
        ["2026-02-01"]
    );
    assert_eq!(
        cron("0 0 0 1 1 ? 2030").next_after(utc("2031-01-01T00:00:00Z"), Tz::UTC),
        None
    );
}

#[test]
fn day_fields_follow_the_vixie_rule_by_default() {
    // `*/2` starts with `*`: unrestricted, so the 1st AND one of Sun, Tue, Thu, Sat.
    // Jan 1 2026 Thu, Feb 1 Sun, Mar 1 Sun, Apr 1 Wed, May 1 Fri, Jun 1 Mon, Jul 1 Wed, Aug 1 Sat.
    assert_eq!(
        dates("0 0 1 * */2", "2025-12-31T00:00:00Z", 4),
        ["2026-01-01", "2026-02-01", "2026-03-01", "2026-08-01"]
    );
    // Both restricted: OR (OCPS 1.0/1.4 vectors).
    assert_eq!(
        dates("0 12 1 * MON", "2025-08-31T00:00:00Z", 3),
        ["2025-09-01", "2025-09-08", "2025-09-15"]
    );
    assert_eq!(
        dates("0 12 1-31 * MON", "2025-10-07T00:00:00Z", 1),
        ["2025-10-07"]
    );
    // `+` asks for AND.
    assert_eq!(
        dates("0 12 1 * +MON", "2025-08-31T00:00:00Z", 2),
        ["2025-09-01", "2025-12-01"]
    );
    // 6 fields keep AND.
    assert_eq!(
        dates("0 0 12 1 * MON", "2025-08-31T00:00:00Z", 1),
        ["2025-09-01"]
    );
    assert_eq!(cron("0 0 1 * */2").effective_dom_dow(), DomDow::And);
    assert_eq!(cron("0 0 1 * 2").effective_dom_dow(), DomDow::Or);
    assert_eq!(cron("0 0 ? * 2").effective_dom_dow(), DomDow::And);
}

#[test]
fn explicit_day_rule_applies_literally() {
    let or = cron("0 0 1 * */2").with_dom_dow(Some(DomDow::Or));
    let got: Vec<String> = chain(&or, utc("2025-12-31T01:00:00Z"), Tz::UTC, 4)
        .iter()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .collect();
    assert_eq!(
        got,
        ["2026-01-01", "2026-01-03", "2026-01-04", "2026-01-06"]
    );
    let and = cron("0 12 1 * MON").with_dom_dow(Some(DomDow::And));
    assert_eq!(
        chain(&and, utc("2025-08-31T00:00:00Z"), Tz::UTC, 1),
        times(&["2025-09-01T12:00:00Z"])
    );
    let six_or = cron("0 0 12 1 * MON").with_dom_dow(Some(DomDow::Or));
    assert_eq!(
        chain(&six_or, utc("2025-09-01T13:00:00Z"), Tz::UTC, 1),
        times(&["2025-09-08T12:00:00Z"])
    );
}

#[test]
fn invalid_expressions_name_the_field_and_the_problem() {
    for (expr, message) in [
        ("60 0 * * *", "minute field `60`: `60` is out of range 0-59"),
        ("0 24 * * *", "hour field `24`: `24` is out of range 0-23"),
        (
            "0 0 32 * *",
            "day-of-month field `32`: `32` is out of range 1-31",
        ),
        ("0 0 0 * * *", ""),
        ("0 0 * 13 *", "month field `13`: `13` is out of range 1-12"),
        (
            "0 0 10-5 * *",
            "day-of-month field `10-5`: range `10-5` runs backwards",
        ),
        (
            "0 0 /30 * *",
            "day-of-month field `/30`: `/30` has nothing before `/`",
        ),
        ("0 0 */0 * *", "step `0` in `*/0` is not a positive number"),
        (
            "0 0 1-15W * *",
            "`W` takes a single day, not a range or step",
        ),
        ("0 0 L-31 * *", "needs a day count in 1-30 after `L-`"),
        (
            "0 0 * * FRI#6",
            "needs a week number in 1-5 or `L` after `#`",
        ),
        ("0 0 * * L", "`L` alone is ambiguous"),
        (
            "0 0 * * 8",
            "day-of-week field `8`: `8` is out of range 0-7",
        ),
        (
            "0 0 0 * * 0",
            "day-of-week field `0`: `0` is out of range 1-7",
        ),
        (
            "? 12 * * *",
            "minute field `?`: `?` is only allowed in the day-of-month and day-of-week",
        ),
        ("0 0 * * +", "nothing after `+`"),
        ("0 12 +1 * MON", "day-of-month field `+1`"),
        (
            "0 0 1,,2 * *",
            "day-of-month field `1,,2`: empty item in the list",
        ),
        (
            "0 0 * FOO *",
            "month field `FOO`: `FOO` is neither a number in 1-12 nor a name",
        ),
        (
            "0 0 0 1 1 ? 1969",
            "year field `1969`: `1969` is out of range 1970-2199",
        ),
        ("0 0 15X * *", "day-of-month field `15X`"),
        ("@daily 0 0 * * *", "a macro cannot be combined with fields"),
        ("@Reboot", "`@reboot` is not supported"),
    ] {
        match CronExpr::parse(expr) {
            Ok(_) if message.is_empty() => {}
            Ok(_) => panic!("{expr} was accepted"),
            Err(err) => assert!(err.contains(message), "{expr}: {err}"),
        }
    }
}
