//! [`explain`]: a cron expression (or an `every` interval) in plain English.
//!
//! `30 2 * * *` in America/New_York is "at 02:30, every day, America/New_York"; `0 9 * * 1-5`
//! in Asia/Dhaka "at 09:00, Monday through Friday, Asia/Dhaka"; `0 0 * * 5L` in UTC "at 00:00
//! on the last Friday of the month, UTC". The text describes the matching wall-clock times; DST
//! handling is not repeated in it.

use chrono_tz::Tz;

use super::cron::{CronExpr, DomDow};
use super::field::Fields;
use super::interval::Interval;

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Describes `expr` evaluated in `tz`, e.g. "at 09:00, Monday through Friday, Asia/Dhaka".
pub fn explain(expr: &CronExpr, tz: Tz) -> String {
    let f = expr.fields();
    let mut out = time_phrase(f);
    match day_phrase(expr, f) {
        Some(day) if day.starts_with("on ") => {
            out.push(' ');
            out.push_str(&day);
        }
        Some(day) => {
            out.push_str(", ");
            out.push_str(&day);
        }
        None if !out.starts_with("every") => out.push_str(", every day"),
        None => {}
    }
    if let Some(months) = list_phrase(f.months, 1, 12, |m| MONTHS[(m - 1) as usize].to_owned()) {
        out.push_str(", in ");
        out.push_str(&months);
    }
    if f.years_restricted {
        let mut years = Vec::new();
        for y in super::field::MIN_YEAR..=super::field::MAX_YEAR {
            if f.year_ok(y) {
                years.push(y.to_string());
            }
        }
        out.push_str(", in ");
        out.push_str(&join_ranges_text(&years));
    }
    out.push_str(", ");
    out.push_str(tz.name());
    out
}

/// Describes a stored schedule: [`explain`] for `cron`, [`explain_every`] for `every`, and
/// "once, at 2026-11-23T10:00:00Z" for a one-shot.
pub fn explain_schedule(schedule: &super::Schedule) -> String {
    match schedule {
        super::Schedule::Once { at } => format!(
            "once, at {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        ),
        super::Schedule::Cron { expr, tz, .. } => explain(expr, *tz),
        super::Schedule::Every { interval_ms, .. } => match Interval::from_millis(*interval_ms) {
            Ok(interval) => explain_every(interval),
            Err(_) => format!("every {interval_ms} ms"),
        },
    }
}

/// Describes an `every` interval: "every 15 minutes", "every 1h 30m".
pub fn explain_every(interval: Interval) -> String {
    let secs = interval.as_millis() / 1000;
    let whole = interval.as_millis() % 1000 == 0;
    let unit = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("every {one}")
        } else {
            format!("every {n} {many}")
        }
    };
    match secs {
        _ if !whole => format!(
            "every {}",
            humantime::format_duration(interval.as_duration())
        ),
        s if s % 86_400 == 0 => unit(s / 86_400, "day", "days"),
        s if s % 3600 == 0 => unit(s / 3600, "hour", "hours"),
        s if s % 60 == 0 => unit(s / 60, "minute", "minutes"),
        s if s < 60 => unit(s, "second", "seconds"),
        _ => format!(
            "every {}",
            humantime::format_duration(interval.as_duration())
        ),
    }
}

/// The values set in `mask` between `min` and `max`.
fn values(mask: u64, min: u32, max: u32) -> Vec<u32> {
    (min..=max).filter(|v| mask & (1u64 << v) != 0).collect()
}

/// `k` if `mask` is exactly `min, min + k, ...` up to `max` with k >= 2.
fn step_of(mask: u64, min: u32, max: u32) -> Option<u32> {
    let v = values(mask, min, max);
    let [first, second, ..] = v[..] else {
        return None;
    };
    let k = second - first;
    (first == min && k >= 2 && v == (min..=max).step_by(k as usize).collect::<Vec<_>>())
        .then_some(k)
}

fn full(mask: u64, min: u32, max: u32) -> bool {
    values(mask, min, max).len() == (max - min + 1) as usize
}

fn time_phrase(f: &Fields) -> String {
    let secs = values(f.seconds, 0, 59);
    let mins = values(f.minutes, 0, 59);
    let hours = values(f.hours, 0, 23);
    let all_hours = full(f.hours, 0, 23);
    let all_mins = full(f.minutes, 0, 59);
    if let ([s], [m]) = (&secs[..], &mins[..]) {
        if hours.len() <= 4 {
            let times: Vec<String> = hours
                .iter()
                .map(|h| {
                    if *s == 0 {
                        format!("{h:02}:{m:02}")
                    } else {
                        format!("{h:02}:{m:02}:{s:02}")
                    }
                })
                .collect();
            return format!("at {}", join_and(&times));
        }
        let minute = if *s == 0 {
            format!("minute {m}")
        } else {
            format!("{m:02}:{s:02}")
        };
        return if all_hours && *m == 0 && *s == 0 {
            "every hour".to_owned()
        } else if all_hours {
            format!("at {minute} past every hour")
        } else {
            format!("at {minute} past hours {}", number_list(f.hours, 0, 23))
        };
    }
    let hours_part = if all_hours {
        String::new()
    } else {
        format!(" during hours {}", number_list(f.hours, 0, 23))
    };
    if secs == [0] {
        if all_mins {
            return format!("every minute{hours_part}");
        }
        if let Some(k) = step_of(f.minutes, 0, 59) {
            return format!("every {k} minutes{hours_part}");
        }
        return format!(
            "at minutes {} past {}",
            number_list(f.minutes, 0, 59),
            if all_hours {
                "every hour".to_owned()
            } else {
                format!("hours {}", number_list(f.hours, 0, 23))
            }
        );
    }
    let every_minute = all_mins && all_hours;
    if every_minute && full(f.seconds, 0, 59) {
        return "every second".to_owned();
    }
    if every_minute && let Some(k) = step_of(f.seconds, 0, 59) {
        return format!("every {k} seconds");
    }
    format!(
        "at seconds {} of minutes {} of hours {}",
        number_list(f.seconds, 0, 59),
        number_list(f.minutes, 0, 59),
        number_list(f.hours, 0, 23)
    )
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn dom_phrase(f: &Fields) -> Option<String> {
    let d = &f.dom;
    if d.is_every_day() {
        return None;
    }
    let mut parts = Vec::new();
    let days = values(u64::from(d.days), 1, 31);
    match days.len() {
        0 => {}
        1 => parts.push(format!("day {}", days[0])),
        _ => parts.push(format!("days {}", number_list(u64::from(d.days), 1, 31))),
    }
    if d.last {
        parts.push("the last day".to_owned());
    }
    for n in values(u64::from(d.before_last), 1, 30) {
        parts.push(format!(
            "{n} day{} before the last day",
            if n == 1 { "" } else { "s" }
        ));
    }
    for n in values(u64::from(d.nearest), 1, 31) {
        parts.push(format!("the weekday nearest day {n}"));
    }
    if d.last_weekday {
        parts.push("the last weekday".to_owned());
    }
    Some(format!("on {} of the month", join_and(&parts)))
}

fn dow_phrase(f: &Fields) -> Option<String> {
    let w = &f.dow;
    if w.is_every_day() {
        return None;
    }
    let mut special = Vec::new();
    for (wd, name) in WEEKDAYS.iter().enumerate() {
        for k in 1..=5 {
            if w.nth[wd] & (1 << k) != 0 {
                special.push(format!("the {} {name}", ordinal(k)));
            }
        }
        if w.last & (1 << wd) != 0 {
            special.push(format!("the last {name}"));
        }
    }
    // Monday first reads better: rotate Sunday to the end.
    let mask = u64::from(w.days);
    let rotated = (mask >> 1) | ((mask & 1) << 6);
    let plain = list_phrase(rotated, 0, 6, |d| {
        WEEKDAYS[((d + 1) % 7) as usize].to_owned()
    });
    let plain = if w.days == 0 { None } else { plain };
    match (plain, special.is_empty()) {
        (Some(p), true) => Some(p),
        (None, false) => Some(format!("on {} of the month", join_and(&special))),
        (Some(p), false) => Some(format!("on {p} and on {} of the month", join_and(&special))),
        (None, true) => Some("every day".to_owned()),
    }
}

fn day_phrase(expr: &CronExpr, f: &Fields) -> Option<String> {
    let strip = |s: String| s.strip_prefix("on ").map(str::to_owned).unwrap_or(s);
    match (dom_phrase(f), dow_phrase(f), expr.effective_dom_dow()) {
        (None, None, _) => None,
        (Some(d), None, DomDow::And) | (None, Some(d), DomDow::And) => Some(d),
        (Some(_), None, DomDow::Or) | (None, Some(_), DomDow::Or) => None,
        (Some(d), Some(w), DomDow::Or) => Some(format!("{d} or on {}", strip(w))),
        (Some(d), Some(w), DomDow::And) => {
            let w = strip(w);
            let w = match w.rsplit_once(" and ") {
                Some((init, last)) => format!("{init} or {last}"),
                None => w,
            };
            Some(format!("{d}, if it is a {w}"))
        }
    }
}

/// "January", "January through March", "Monday, Wednesday and Friday"; `None` when full.
fn list_phrase(mask: u64, min: u32, max: u32, name: impl Fn(u32) -> String) -> Option<String> {
    if full(mask, min, max) {
        return None;
    }
    let mut parts = Vec::new();
    for (a, b) in runs(mask, min, max) {
        match b - a {
            0 => parts.push(name(a)),
            1 => parts.extend([name(a), name(b)]),
            _ => parts.push(format!("{} through {}", name(a), name(b))),
        }
    }
    Some(join_and(&parts))
}

/// Numbers as runs: "0-5, 10 and 20".
fn number_list(mask: u64, min: u32, max: u32) -> String {
    if let Some(k) = step_of(mask, min, max) {
        return format!("every {k} from {min}");
    }
    let parts: Vec<String> = runs(mask, min, max)
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    join_and(&parts)
}

fn runs(mask: u64, min: u32, max: u32) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for v in values(mask, min, max) {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == v => *b = v,
            _ => out.push((v, v)),
        }
    }
    out
}

fn join_ranges_text(items: &[String]) -> String {
    join_and(items)
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Asia::Dhaka};

    fn say(expr: &str, tz: Tz) -> String {
        explain(&CronExpr::parse(expr).unwrap(), tz)
    }

    #[test]
    fn explains_common_expressions() {
        assert_eq!(
            say("30 2 * * *", New_York),
            "at 02:30, every day, America/New_York"
        );
        assert_eq!(
            say("0 9 * * 1-5", Dhaka),
            "at 09:00, Monday through Friday, Asia/Dhaka"
        );
        assert_eq!(
            say("0 0 * * 5L", Tz::UTC),
            "at 00:00 on the last Friday of the month, UTC"
        );
        assert_eq!(
            say("0 0 * * FRI#2", Tz::UTC),
            "at 00:00 on the 2nd Friday of the month, UTC"
        );
        assert_eq!(say("*/15 * * * *", Tz::UTC), "every 15 minutes, UTC");
        assert_eq!(say("@hourly", Tz::UTC), "every hour, UTC");
        assert_eq!(
            say("0 12 L * *", Tz::UTC),
            "at 12:00 on the last day of the month, UTC"
        );
        assert_eq!(
            say("0 12 LW * *", Tz::UTC),
            "at 12:00 on the last weekday of the month, UTC"
        );
        assert_eq!(
            say("0 12 15W * *", Tz::UTC),
            "at 12:00 on the weekday nearest day 15 of the month, UTC"
        );
        assert_eq!(
            say("0 8 1 1,7 *", Tz::UTC),
            "at 08:00 on day 1 of the month, in January and July, UTC"
        );
        assert_eq!(
            say("0 0 1 * MON", Tz::UTC),
            "at 00:00 on day 1 of the month or on Monday, UTC"
        );
        assert_eq!(
            say("0 0 1 * */2", Tz::UTC),
            "at 00:00 on day 1 of the month, if it is a Tuesday, Thursday, Saturday or Sunday, UTC"
        );
        assert_eq!(
            say("0 30 9 ? * 2-6 2027", Tz::UTC),
            "at 09:30, Monday through Friday, in 2027, UTC"
        );
        assert_eq!(
            say("0 9,17 * * SAT,SUN", Tz::UTC),
            "at 09:00 and 17:00, Saturday and Sunday, UTC"
        );
        assert_eq!(say("*/10 * * * * *", Tz::UTC), "every 10 seconds, UTC");
    }

    #[test]
    fn explains_intervals() {
        let say = |s: &str| explain_every(Interval::parse(s).unwrap());
        assert_eq!(say("15m"), "every 15 minutes");
        assert_eq!(say("1h"), "every hour");
        assert_eq!(say("2days"), "every 2 days");
        assert_eq!(say("30s"), "every 30 seconds");
        assert_eq!(say("90m"), "every 90 minutes");
        assert_eq!(say("1500ms"), "every 1s 500ms");
    }
}
