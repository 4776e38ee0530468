//! Schedule math: when does a job fire. Pure functions, no IO, no clock.
//!
//! Instants are `DateTime<Utc>` throughout; a zone ([`Tz`]) only says how to read wall-clock
//! times such as a cron expression or a zone-less `run_at`. Two rules make local times total:
//!
//! - a local time that does not exist (DST gap, clocks jump forward) resolves to the **first
//!   instant after the gap**: 02:30 on 2026-03-08 in America/New_York is 03:00 EDT;
//! - a local time that occurs twice (DST overlap, clocks fall back) resolves to its **first
//!   occurrence**: 01:30 on 2026-11-01 in America/New_York is 01:30 EDT, never 01:30 EST.
//!
//! Cron expressions are evaluated on the wall clock of their zone with those rules, so
//! `0 9 * * *` fires at 09:00 local time every day whatever the offset, a fire time inside a
//! gap fires once right after the gap, and a fire time inside an overlap fires once.
//!
//! What to do with fire times that were missed ([`Misfire`]), how many runs are left
//! (`max_runs`) and jitter are decided by the scheduler; this module only computes nominal
//! fire times.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, MappedLocalTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeStructVariant, Serializer};
use serde::{Deserialize, Serialize};

/// Parses a humane duration: `"30s"`, `"5m"`, `"1h30m"`, `"250ms"`, `"2days"`.
///
/// Shared by configuration and schedule requests so both read durations the same way. A bare
/// number is rejected (its unit would be a guess).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|err| {
        format!("`{s}` is not a duration such as \"30s\", \"15m\" or \"1h30m\": {err}")
    })
}

/// The instant of the local time `naive` in `tz`.
///
/// A local time inside a DST gap resolves to the first instant after the gap (the transition
/// itself); a local time inside a DST overlap resolves to its first (earlier) occurrence.
pub fn resolve_local(naive: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&naive) {
        MappedLocalTime::Single(at) => at.with_timezone(&Utc),
        MappedLocalTime::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
        MappedLocalTime::None => end_of_gap(naive, tz),
    }
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

/// A validated cron expression, evaluated on the wall clock of a zone.
///
/// Accepted forms:
///
/// - **5 fields**, crontab(5): `minute hour day-of-month month day-of-week`. Seconds are 0.
///   Numeric days of week are crontab's: `0`-`6` = Sunday-Saturday, `7` = Sunday too, so
///   `0 9 * * 1-5` is Monday to Friday at 09:00. As in crontab, when both day-of-month and
///   day-of-week are restricted (neither starts with `*` or `?`), a day matches if **either**
///   matches: `0 0 1 * 1` is the 1st of each month and every Monday.
/// - **6 fields**, the `cron` crate's (Quartz-like) form: `second minute hour day-of-month month
///   day-of-week`. Numeric days of week are `1`-`7` = Sunday-Saturday, and both day fields must
///   match. Prefer names (`Mon-Fri`), which mean the same in both forms.
/// - **Macros**: `@yearly` / `@annually` (Jan 1st 00:00), `@monthly` (1st 00:00), `@weekly`
///   (Sunday 00:00), `@daily` / `@midnight` (00:00), `@hourly` (minute 0).
///
/// Seven fields (with a year) are rejected. The original text is kept ([`CronExpr::as_str`]) and
/// is the serde form; deserializing parses and validates it again.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    /// Shared: the compiled form is large and never changes.
    compiled: Arc<Compiled>,
}

/// A [`CronExpr`] in the `cron` crate's terms.
struct Compiled {
    /// The schedule.
    primary: cron::Schedule,
    /// For a 5-field expression with both day fields restricted: the day-of-week half of the
    /// crontab OR (`primary` then holds the day-of-month half).
    alternative: Option<cron::Schedule>,
}

impl CronExpr {
    /// Parses and validates `text`; the error says what is wrong, in lowercase.
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("cron expression is empty".to_owned());
        }
        let (primary, alternative) = if trimmed.starts_with('@') {
            (macro_fields(trimmed)?.to_owned(), None)
        } else {
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            match fields[..] {
                [minute, hour, dom, month, dow] => {
                    let dow = crontab_days_of_week(dow)?;
                    let restricted = |f: &str| !f.starts_with('*') && !f.starts_with('?');
                    if restricted(dom) && restricted(&dow) {
                        (
                            format!("0 {minute} {hour} {dom} {month} *"),
                            Some(format!("0 {minute} {hour} * {month} {dow}")),
                        )
                    } else {
                        (format!("0 {minute} {hour} {dom} {month} {dow}"), None)
                    }
                }
                [_, _, _, _, _, _] => (fields.join(" "), None),
                [_, _, _, _, _, _, _] => {
                    return Err(
                        "cron expressions with 7 fields (a year) are not supported; \
                                use 5 fields (minute hour day-of-month month day-of-week) or 6 \
                                (second minute hour day-of-month month day-of-week)"
                            .to_owned(),
                    );
                }
                _ => {
                    return Err(format!(
                        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 \
                         (second minute hour day-of-month month day-of-week), found {}",
                        fields.len()
                    ));
                }
            }
        };
        let compile = |fields: &str| {
            cron::Schedule::from_str(fields)
                .map_err(|err| format!("invalid cron expression `{trimmed}`: {err}"))
        };
        Ok(CronExpr {
            text: text.to_owned(),
            compiled: Arc::new(Compiled {
                primary: compile(&primary)?,
                alternative: alternative.as_deref().map(compile).transpose()?,
            }),
        })
    }

    /// The expression as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire instant strictly after `after`, evaluating the expression on the wall
    /// clock of `tz`; `None` if there is none (the `cron` crate stops at year 2100).
    ///
    /// Each matching wall-clock time is mapped with [`resolve_local`]: a time inside a DST gap
    /// fires at the first instant after the gap, a time inside an overlap fires once, at its
    /// first occurrence. Results that are not after `after` are skipped, which also merges a
    /// gap-shifted time with an equal later one. Chained calls are strictly increasing.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // The wall clock of `tz`, represented as a UTC timeline without gaps or overlaps.
        // Wall times before `after`'s own resolve to instants <= `after` (resolution is
        // monotonic), so the search can start there.
        let mut cursor = tz
            .from_utc_datetime(&after.naive_utc())
            .naive_local()
            .and_utc();
        loop {
            let wall = self.next_wall_after(cursor)?;
            let at = resolve_local(wall.naive_utc(), tz);
            if at > after {
                return Some(at);
            }
            cursor = wall;
        }
    }

    /// Whether the wall-clock time `local` matches the expression (sub-second part ignored).
    pub fn includes_local(&self, local: NaiveDateTime) -> bool {
        let at = local.and_utc();
        self.compiled.primary.includes(at)
            || self
                .compiled
                .alternative
                .as_ref()
                .is_some_and(|s| s.includes(at))
    }

    fn next_wall_after(&self, cursor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let primary = self.compiled.primary.after(&cursor).next();
        let alternative = self
            .compiled
            .alternative
            .as_ref()
            .and_then(|s| s.after(&cursor).next());
        match (primary, alternative) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The 6-field (`cron` crate) form of a macro.
fn macro_fields(text: &str) -> Result<&'static str, String> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * Sun",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        _ => {
            return Err(format!(
                "unknown cron macro `{text}`, expected one of @yearly, @annually, @monthly, \
                 @weekly, @daily, @midnight, @hourly"
            ));
        }
    })
}

/// Translates a crontab day-of-week field (`0`-`7`, 0 and 7 = Sunday) into the `cron` crate's
/// numbering (`1`-`7` = Sunday-Saturday).
///
/// Numeric items (`N`, `N-M`, `*/S`, `N/S`, `N-M/S`; `*` and `N/S` span 0-7 as in cronie) are
/// expanded to an explicit list; names, `*` and `?` pass through unchanged.
fn crontab_days_of_week(field: &str) -> Result<String, String> {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let day = |s: &str| -> Result<u32, String> {
        match s.parse::<u32>() {
            Ok(n) if n <= 7 => Ok(n),
            _ => Err(format!(
                "day of week `{s}` is out of range 0-7 (0 and 7 are Sunday)"
            )),
        }
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        let (start, end) = match (base, base.split_once('-'), step) {
            ("*", _, Some(_)) => (0, 7),
            (_, Some((a, b)), _) if numeric(a) && numeric(b) => (day(a)?, day(b)?),
            (n, None, Some(_)) if numeric(n) => (day(n)?, 7),
            (n, None, None) if numeric(n) => (day(n)?, day(n)?),
            _ => {
                items.push(item.to_owned());
                continue;
            }
        };
        if start > end {
            return Err(format!("day-of-week range `{base}` runs backwards"));
        }
        let step = match step {
            None => 1,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(format!("day-of-week step `{s}` is not a positive number")),
            },
        };
        let mut days: Vec<u32> = (start..=end).step_by(step).map(|d| d % 7 + 1).collect();
        days.sort_unstable();
        days.dedup();
        items.extend(days.iter().map(u32::to_string));
    }
    Ok(items.join(","))
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronExpr").field(&self.text).finish()
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for CronExpr {}

impl FromStr for CronExpr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronExpr::parse(s)
    }
}

impl Serialize for CronExpr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CronExpr::parse(&text).map_err(de::Error::custom)
    }
}

/// The period of an `every` schedule: at least 1 second, at most 366 days, whole milliseconds.
///
/// Parsed from a humane string (`"30s"`, `"15m"`, `"1h30m"`) or from integer milliseconds;
/// serialized as integer milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval(Duration);

impl Interval {
    /// Shortest interval.
    pub const MIN: Duration = Duration::from_secs(1);
    /// Longest interval.
    pub const MAX: Duration = Duration::from_secs(366 * 86_400);

    /// Checks the bounds; sub-millisecond parts are dropped.
    pub fn new(duration: Duration) -> Result<Interval, String> {
        let duration =
            Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
        if duration < Self::MIN {
            return Err(format!(
                "interval {} is shorter than the minimum of 1s",
                humantime::format_duration(duration)
            ));
        }
        if duration > Self::MAX {
            return Err(format!(
                "interval {} is longer than the maximum of 366days",
                humantime::format_duration(duration)
            ));
        }
        Ok(Interval(duration))
    }

    /// An interval of `ms` milliseconds.
    pub fn from_millis(ms: u64) -> Result<Interval, String> {
        Interval::new(Duration::from_millis(ms))
    }

    /// Parses a humane string such as `"15m"`.
    pub fn parse(s: &str) -> Result<Interval, String> {
        Interval::new(parse_duration(s)?)
    }

    /// The interval in milliseconds.
    pub fn as_millis(self) -> u64 {
        // Bounded by MAX, which fits easily.
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// The interval as a duration.
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl FromStr for Interval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interval::parse(s)
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.as_millis())
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntervalVisitor;

        impl Visitor<'_> for IntervalVisitor {
            type Value = Interval;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"15m\" or a number of milliseconds")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Interval, E> {
                Interval::parse(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Interval, E> {
                Interval::from_millis(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Interval, E> {
                let ms = u64::try_from(v).map_err(|_| E::custom("interval is negative"))?;
                self.visit_u64(ms)
            }
        }

        deserializer.deserialize_any(IntervalVisitor)
    }
}

/// What a recurring job does about fire times that passed while it could not fire (scheduler
/// down, backlog). One-shot jobs always fire, however late.
///
/// Serde form: `"fire_once"`, `"skip"`, `"fire_all"` (cap 100), or `{"fire_all": {"cap": N}}`
/// with `N >= 1`. The first three are also the [`FromStr`] forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Misfire {
    /// Fire once for all missed times, then continue with the next future time (the default).
    #[default]
    FireOnce,
    /// Drop missed times; continue with the next future time.
    Skip,
    /// Fire every missed time, oldest first, but at most `cap` of them; then continue.
    FireAll {
        /// Most missed fires to catch up on.
        cap: u32,
    },
}

impl Misfire {
    /// The `cap` of `"fire_all"` written without one.
    pub const DEFAULT_CAP: u32 = 100;

    fn from_name(name: &str) -> Option<Misfire> {
        match name {
            "fire_once" => Some(Misfire::FireOnce),
            "skip" => Some(Misfire::Skip),
            "fire_all" => Some(Misfire::FireAll {
                cap: Self::DEFAULT_CAP,
            }),
            _ => None,
        }
    }
}

const MISFIRE_EXPECTED: &str =
    "one of \"fire_once\", \"skip\", \"fire_all\" or {\"fire_all\": {\"cap\": N}}";

impl FromStr for Misfire {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Misfire::from_name(s)
            .ok_or_else(|| format!("unknown misfire policy `{s}`, expected {MISFIRE_EXPECTED}"))
    }
}

impl Serialize for Misfire {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Misfire::FireOnce => serializer.serialize_unit_variant("Misfire", 0, "fire_once"),
            Misfire::Skip => serializer.serialize_unit_variant("Misfire", 1, "skip"),
            Misfire::FireAll { cap } => {
                let mut variant =
                    serializer.serialize_struct_variant("Misfire", 2, "fire_all", 1)?;
                variant.serialize_field("cap", &cap)?;
                variant.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Misfire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FireAllOptions {
            #[serde(default = "default_cap")]
            cap: u32,
        }

        fn default_cap() -> u32 {
            Misfire::DEFAULT_CAP
        }

        struct MisfireVisitor;

        impl<'de> Visitor<'de> for MisfireVisitor {
            type Value = Misfire;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(MISFIRE_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Misfire, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Misfire, A::Error> {
                let key: Option<String> = map.next_key()?;
                if key.as_deref() != Some("fire_all") {
                    return Err(de::Error::custom(format_args!(
                        "expected {MISFIRE_EXPECTED}"
                    )));
                }
                let options: FireAllOptions = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(format_args!(
                        "expected {MISFIRE_EXPECTED}"
                    )));
                }
                if options.cap == 0 {
                    return Err(de::Error::custom("misfire `cap` must be at least 1"));
                }
                Ok(Misfire::FireAll { cap: options.cap })
            }
        }

        deserializer.deserialize_any(MisfireVisitor)
    }
}

/// When a job fires: the form stored with the job (serde, tagged by `kind`).
///
/// `end_at` is inclusive. Fire times are nominal (before jitter); `max_runs` is counted by the
/// caller, which stops asking for [`Schedule::next_after`] when the runs are used up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
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
    use chrono::{Datelike, Weekday};
    use chrono_tz::{America::New_York, Asia::Dhaka, Europe::Berlin};
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
        assert_eq!(resolve_local(local("2026-03-08 02:30:17.5"), New_York), at);
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
            utc("2026-03-29T01:00:00Z"),
            "gap: 03:00 CEST"
        );
        assert_eq!(
            resolve_local(local("2026-10-25 02:30:00"), Berlin),
            utc("2026-10-25T00:30:00Z"),
            "overlap: 02:30 CEST"
        );
        assert_eq!(
            resolve_local(local("2026-07-01 12:00:00"), Berlin),
            utc("2026-07-01T10:00:00Z")
        );
    }

    #[test]
    fn half_hour_and_whole_day_gaps_resolve_to_their_transition() {
        // Lord Howe Island moves 30 minutes: 02:00 +10:30 -> 02:30 +11:00.
        assert_eq!(
            resolve_local(
                local("2026-10-04 02:15:00"),
                chrono_tz::Australia::Lord_Howe
            ),
            utc("2026-10-03T15:30:00Z")
        );
        // Samoa skipped 2011-12-30 entirely.
        assert_eq!(
            resolve_local(local("2011-12-30 12:00:00"), chrono_tz::Pacific::Apia),
            utc("2011-12-30T10:00:00Z")
        );
    }

    #[test]
    fn parse_duration_reads_humane_strings() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "30", "abc", "5 parsecs", "-1s"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("`{bad}` is not a duration")),
                "{err}"
            );
        }
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
            CronExpr::parse("0 0 9 * * * 2030")
                .unwrap_err()
                .contains("7 fields")
        );
        assert!(
            CronExpr::parse("0 9 * *")
                .unwrap_err()
                .contains("expected 5 fields")
        );
        assert!(
            CronExpr::parse("@reboot")
                .unwrap_err()
                .contains("unknown cron macro `@reboot`")
        );
        assert!(
            CronExpr::parse("61 * * * *")
                .unwrap_err()
                .starts_with("invalid cron expression")
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

    #[test]
    fn interval_bounds_and_forms() {
        assert_eq!(Interval::parse("30s").unwrap().as_millis(), 30_000);
        assert_eq!(Interval::parse("1h30m").unwrap().as_millis(), 5_400_000);
        assert_eq!(
            Interval::from_millis(1000).unwrap().as_duration(),
            Duration::from_secs(1)
        );
        assert!(
            Interval::from_millis(999)
                .unwrap_err()
                .contains("shorter than the minimum")
        );
        assert!(
            Interval::parse("367d")
                .unwrap_err()
                .contains("longer than the maximum")
        );
        assert!(Interval::parse("366d").is_ok());
        assert!(Interval::parse("soon").is_err());
        assert_eq!(
            serde_json::from_str::<Interval>(r#""15m""#).unwrap(),
            serde_json::from_str::<Interval>("900000").unwrap()
        );
        assert!(serde_json::from_str::<Interval>("-5").is_err());
        assert_eq!(
            serde_json::to_string(&Interval::parse("15m").unwrap()).unwrap(),
            "900000"
        );
    }

    #[test]
    fn misfire_serde_forms() {
        let read = |s: &str| serde_json::from_str::<Misfire>(s);
        assert_eq!(Misfire::default(), Misfire::FireOnce);
        assert_eq!(read(r#""fire_once""#).unwrap(), Misfire::FireOnce);
        assert_eq!(read(r#""skip""#).unwrap(), Misfire::Skip);
        assert_eq!(
            read(r#""fire_all""#).unwrap(),
            Misfire::FireAll { cap: 100 }
        );
        assert_eq!(
            read(r#"{"fire_all": {"cap": 5}}"#).unwrap(),
            Misfire::FireAll { cap: 5 }
        );
        assert_eq!(
            read(r#"{"fire_all": {}}"#).unwrap(),
            Misfire::FireAll { cap: 100 }
        );
        assert!(read(r#"{"fire_all": {"cap": 0}}"#).is_err());
        assert!(read(r#"{"fire_all": {"cap": 5, "x": 1}}"#).is_err());
        assert!(read(r#"{"skip": {}}"#).is_err());
        assert!(read(r#"{"fire_all": {}, "skip": {}}"#).is_err());
        assert!(
            read(r#""later""#)
                .unwrap_err()
                .to_string()
                .contains("unknown misfire policy")
        );
        assert!(read("3").is_err());
        for m in [
            Misfire::FireOnce,
            Misfire::Skip,
            Misfire::FireAll { cap: 7 },
        ] {
            assert_eq!(read(&serde_json::to_string(&m).unwrap()).unwrap(), m);
        }
        assert_eq!(
            serde_json::to_string(&Misfire::FireAll { cap: 7 }).unwrap(),
            r#"{"fire_all":{"cap":7}}"#
        );
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
        at - before > TimeDelta::seconds(1)
            && expr
                .next_wall_after(before.and_utc())
                .is_some_and(|w| w.naive_utc() < at)
    }

    proptest! {
        #[test]
        fn chained_cron_fires_increase_and_match(
            e in 0..EXPRESSIONS.len(),
            z in 0..ZONES.len(),
            start in 1_577_836_800i64..1_893_456_000,
        ) {
            let expr = cron(EXPRESSIONS[e]);
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
