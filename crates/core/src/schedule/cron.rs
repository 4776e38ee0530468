//! [`CronExpr`]: a cron expression, evaluated on the wall clock of a zone with a day rule
//! ([`DomDow`]) and a DST policy ([`DstPolicy`]).
//!
//! The matcher is sked's own (see the module doc of [`crate::schedule`] for why): the fields are
//! compiled into bit sets once ([`super::field`]), and the next wall-clock match is found by
//! carrying from seconds up to years, so one search costs a handful of bit operations plus, per
//! month visited, one pass over its days. Wall times are then mapped to instants by
//! [`classify`] and the policy.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::dst::{DstPolicy, Gap, LocalTime, Overlap, classify, offset_secs};
use super::field::{Fields, Form, MAX_YEAR, month_shape};

/// How day-of-month and day-of-week combine.
///
/// Default (no explicit rule), for 5-field expressions and macros the Vixie/cronie rule: if
/// either day field starts with `*` (or `?`) it is unrestricted and the two are **and**-ed (so
/// `0 0 1 * */2` is the 1st *and* a Sunday, Tuesday, Thursday or Saturday); if both are
/// restricted they are **or**-ed (`0 0 1 * MON` is the 1st and every Monday). A day-of-week
/// field written with a leading `+` (OCPS 1.4, `0 0 1 * +MON`) asks for **and**. 6- and 7-field
/// (Quartz-style) expressions always **and** by default, as sked has always evaluated them.
/// An explicit rule applies literally: `or` with a `*` field matches every day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomDow {
    /// A day matches if either field matches.
    Or,
    /// A day matches if both fields match.
    And,
}

/// A validated cron expression, evaluated on the wall clock of a zone.
///
/// Accepted forms (names of months and weekdays work everywhere a number does, any case):
///
/// - **5 fields**, crontab(5): `minute hour day-of-month month day-of-week`; seconds are 0.
///   Days of week `0`-`7`, 0 and 7 = Sunday: `0 9 * * 1-5` is Monday to Friday at 09:00.
/// - **6 fields**, Quartz: `second minute hour day-of-month month day-of-week`, and **7 fields**
///   with a trailing year (`1970`-`2199`). Days of week `1`-`7` = Sunday-Saturday, as in Quartz
///   and as sked always read 6 fields: `0 0 9 ? * 2-6` is Monday to Friday at 09:00.
/// - **Macros** (any case): `@yearly` / `@annually`, `@monthly`, `@weekly` (Sunday),
///   `@daily` / `@midnight`, `@hourly`.
///
/// Quartz tokens: day-of-month `L` (last day), `L-n` (n days before the last), `nW` (the weekday
/// nearest day n, never leaving the month: `1W` on Saturday the 1st is Monday the 3rd), `LW`
/// (last weekday); day-of-week `xL` or `x#L` (last weekday x of the month: `5L` / `FRIL` in 5
/// fields, `6L` in 6), `x#k` (k-th weekday x, `FRI#2`); `?` in either day field means "any".
/// How the two day fields combine: [`DomDow`].
///
/// The original text is kept ([`CronExpr::as_str`]) and is the serde form; deserializing parses
/// it again. The day rule and DST policy travel beside it (see [`super::Schedule`]).
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    /// Shared: compiled once, never changed.
    fields: Arc<Fields>,
    dom_dow: Option<DomDow>,
    dst: DstPolicy,
}

/// One fire instant found by [`CronExpr::next_slot`], with the wall time that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// When it fires.
    pub at: DateTime<Utc>,
    /// The matching wall-clock time (for a shifted slot, the time inside the gap).
    pub wall: NaiveDateTime,
    /// How DST shaped it.
    pub note: Option<Note>,
}

/// How a daylight-saving transition shaped a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Note {
    /// The wall time fell in a gap; fired at the first instant after it.
    GapShifted,
    /// The wall time occurs twice; this is the first occurrence.
    OverlapFirst,
    /// The wall time occurs twice; this is the second occurrence.
    OverlapSecond,
    /// The wall time fell in a gap and the policy skips it (nothing fires).
    Skipped,
    /// The slot is on a day of an attached calendar (nothing fires; counted as `excluded`).
    Excluded,
}

impl CronExpr {
    /// Parses and validates `text`; the error names the field and the problem, in lowercase.
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("cron expression is empty".to_owned());
        }
        let fields = if trimmed.starts_with('@') {
            if trimmed.contains(char::is_whitespace) {
                return Err(format!(
                    "`{trimmed}`: a macro cannot be combined with fields"
                ));
            }
            Fields::parse_macro(trimmed)?
        } else {
            let parts: Vec<&str> = trimmed.split_whitespace().collect();
            Fields::parse(&parts)?
        };
        Ok(CronExpr {
            text: text.to_owned(),
            fields: Arc::new(fields),
            dom_dow: None,
            dst: DstPolicy::default(),
        })
    }

    /// This expression with an explicit day rule (`None`: the default rule, see [`DomDow`]).
    pub fn with_dom_dow(mut self, rule: Option<DomDow>) -> CronExpr {
        self.dom_dow = rule;
        self
    }

    /// This expression with a DST policy.
    pub fn with_dst(mut self, dst: DstPolicy) -> CronExpr {
        self.dst = dst;
        self
    }

    /// The expression as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The explicit day rule, if one was given.
    pub fn dom_dow(&self) -> Option<DomDow> {
        self.dom_dow
    }

    /// The DST policy.
    pub fn dst(&self) -> DstPolicy {
        self.dst
    }

    /// Whether the day-of-week field starts with `+` (asks for [`DomDow::And`]).
    pub fn has_plus(&self) -> bool {
        self.fields.dow.plus
    }

    /// The day rule in effect: the explicit one, else the default for the form.
    pub fn effective_dom_dow(&self) -> DomDow {
        if let Some(rule) = self.dom_dow {
            return rule;
        }
        let f = &self.fields;
        match f.form {
            _ if f.dow.plus => DomDow::And,
            Form::Quartz => DomDow::And,
            Form::Crontab | Form::Macro if f.dom.star || f.dow.star => DomDow::And,
            Form::Crontab | Form::Macro => DomDow::Or,
        }
    }

    pub(crate) fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The first fire instant strictly after `after` on the wall clock of `tz`, under the
    /// expression's DST policy; `None` if there is none before the year 2200.
    ///
    /// Chained calls are strictly increasing. A gap-shifted slot that lands on the same instant
    /// as a later match fires once.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.scan(after, tz, |_| {}).map(|slot| slot.at)
    }

    /// Like [`CronExpr::next_after`], with the matching wall time and how DST shaped it.
    pub fn next_slot(&self, after: DateTime<Utc>, tz: Tz) -> Option<Slot> {
        self.scan(after, tz, |_| {})
    }

    /// The search behind [`CronExpr::next_slot`]; `skipped` sees every matching wall time in a
    /// gap that the policy skips, whose gap ends after `after` and before the returned slot.
    pub(crate) fn scan(
        &self,
        after: DateTime<Utc>,
        tz: Tz,
        mut skipped: impl FnMut(Slot),
    ) -> Option<Slot> {
        let wall_now = tz.from_utc_datetime(&after.naive_utc()).naive_local();
        // Under `first`, a wall time before `after`'s own resolves to an instant <= `after`
        // (resolution is monotonic), so the search starts there. Under `last`/`both` a wall
        // time up to the coming fall-back's size earlier can still occur after `after`.
        let mut cursor = match self.dst.overlap {
            Overlap::First => wall_now,
            Overlap::Last | Overlap::Both => wall_now
                .checked_sub_signed(lookback(after, tz))
                .unwrap_or(wall_now),
        };
        let mut best: Option<Slot> = None;
        loop {
            let wall = self.next_wall_after(cursor)?;
            cursor = wall;
            let local = classify(wall, tz);
            if best.is_some_and(|b| local.earliest() >= b.at) {
                return best;
            }
            let mut offer = |at: DateTime<Utc>, note: Option<Note>| {
                if at > after && best.is_none_or(|b| at < b.at) {
                    best = Some(Slot { at, wall, note });
                }
            };
            match local {
                LocalTime::Unique(at) => offer(at, None),
                LocalTime::Gap(end) => match self.dst.gap {
                    Gap::Shift => offer(end, Some(Note::GapShifted)),
                    Gap::Skip if end > after => skipped(Slot {
                        at: end,
                        wall,
                        note: Some(Note::Skipped),
                    }),
                    Gap::Skip => {}
                },
                LocalTime::Ambiguous(a, b) => match self.dst.overlap {
                    Overlap::First => offer(a, Some(Note::OverlapFirst)),
                    Overlap::Last => offer(b, Some(Note::OverlapSecond)),
                    Overlap::Both => {
                        offer(a, Some(Note::OverlapFirst));
                        offer(b, Some(Note::OverlapSecond));
                    }
                },
            }
            if self.dst.overlap == Overlap::First && best.is_some() {
                return best;
            }
        }
    }

    /// Whether the wall-clock time `local` matches the expression (sub-second part ignored).
    pub fn includes_local(&self, local: NaiveDateTime) -> bool {
        let f = &*self.fields;
        let bit = |mask: u64, v: u32| mask & (1u64 << v) != 0;
        if !(f.year_ok(local.year())
            && bit(f.months, local.month())
            && bit(f.hours, local.hour())
            && bit(f.minutes, local.minute())
            && bit(f.seconds, local.second()))
        {
            return false;
        }
        month_shape(local.year(), local.month())
            .is_some_and(|(len, wd)| self.day_mask(len, wd) & (1 << local.day()) != 0)
    }

    /// The days of a month of `len` days starting on weekday `first_weekday` that match.
    fn day_mask(&self, len: u32, first_weekday: u32) -> u32 {
        let f = &*self.fields;
        let dom = f.dom_mask(len, first_weekday);
        let dow = f.dow_mask(len, first_weekday);
        match self.effective_dom_dow() {
            DomDow::And => dom & dow,
            DomDow::Or => dom | dow,
        }
    }

    /// The first whole-second wall time strictly after `cursor` that matches.
    pub(crate) fn next_wall_after(&self, cursor: NaiveDateTime) -> Option<NaiveDateTime> {
        let f = &*self.fields;
        let start = cursor
            .with_nanosecond(0)?
            .checked_add_signed(TimeDelta::seconds(1))?;
        let (mut y, mut mo, mut d) = (start.year(), start.month(), start.day());
        let (mut h, mut mi, mut s) = (start.hour(), start.minute(), start.second());
        let mut shape: Option<(i32, u32, u32)> = None;
        loop {
            if y > MAX_YEAR {
                return None;
            }
            if !f.year_ok(y) {
                (y, mo, d, h, mi, s) = (y + 1, 1, 1, 0, 0, 0);
                continue;
            }
            let Some(m) = next_bit(f.months, mo) else {
                (y, mo, d, h, mi, s) = (y + 1, 1, 1, 0, 0, 0);
                continue;
            };
            if m != mo {
                (mo, d, h, mi, s) = (m, 1, 0, 0, 0);
            }
            let days = match shape {
                Some((sy, smo, mask)) if sy == y && smo == mo => mask,
                _ => {
                    let (len, wd) = month_shape(y, mo)?;
                    let mask = self.day_mask(len, wd);
                    shape = Some((y, mo, mask));
                    mask
                }
            };
            let Some(day) = next_bit(u64::from(days), d) else {
                (mo, d, h, mi, s) = (mo + 1, 1, 0, 0, 0);
                if mo > 12 {
                    (y, mo) = (y + 1, 1);
                }
                continue;
            };
            if day != d {
                (d, h, mi, s) = (day, 0, 0, 0);
            }
            let Some(hour) = next_bit(f.hours, h) else {
                (d, h, mi, s) = (d + 1, 0, 0, 0);
                continue;
            };
            if hour != h {
                (h, mi, s) = (hour, 0, 0);
            }
            let Some(minute) = next_bit(f.minutes, mi) else {
                (h, mi, s) = (h + 1, 0, 0);
                continue;
            };
            if minute != mi {
                (mi, s) = (minute, 0);
            }
            let Some(second) = next_bit(f.seconds, s) else {
                (mi, s) = (mi + 1, 0);
                continue;
            };
            return NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h, mi, second);
        }
    }
}

/// The smallest set bit of `mask` at or above `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let m = mask & (u64::MAX << from);
    (m != 0).then(|| m.trailing_zeros())
}

/// How far before `after`'s wall time a wall time may lie and still occur after `after`: the
/// size of a fall-back within the next day (0 when the offset does not decrease), plus a second.
fn lookback(after: DateTime<Utc>, tz: Tz) -> TimeDelta {
    let now = offset_secs(after, tz);
    let later = [TimeDelta::hours(12), TimeDelta::hours(25)]
        .iter()
        .filter_map(|d| after.checked_add_signed(*d))
        .map(|t| offset_secs(t, tz))
        .min()
        .unwrap_or(now);
    TimeDelta::seconds(i64::from((now - later).max(0)) + 1)
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = f.debug_tuple("CronExpr");
        t.field(&self.text);
        if let Some(rule) = self.dom_dow {
            t.field(&rule);
        }
        if !self.dst.is_default() {
            t.field(&self.dst);
        }
        t.finish()
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.dom_dow == other.dom_dow && self.dst == other.dst
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
