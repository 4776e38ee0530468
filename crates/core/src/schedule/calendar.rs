//! [`Calendar`]: a named set of excluded days (dates, date ranges, weekdays) in a zone. A slot
//! of a schedule that attaches the calendar and falls on such a day does not fire; the
//! scheduler counts it as `excluded`.
//!
//! Pure: where calendars come from (the `[calendars.<name>]` config tables, the
//! `/v1/calendars` API backed by Redis) is the caller's business. The serde form is the same
//! everywhere (TOML config, JSON API, the CLI's `--calendar-file`):
//!
//! ```toml
//! [calendars.holidays]
//! timezone = "Europe/Berlin"           # whose days; default UTC
//! dates = ["2026-12-25", "2026-12-26"] # single days
//! ranges = [{ from = "2026-12-28", to = "2026-12-31" }] # inclusive
//! weekdays = ["sat", "sun"]            # every such weekday
//! ```
//!
//! A day is excluded when the slot's local date in the calendar's zone (not the schedule's)
//! is one of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Most dates plus ranges in one calendar.
pub const MAX_CALENDAR_DAYS: usize = 10_000;

/// Most calendars one schedule attaches.
pub const MAX_ATTACHED: usize = 16;

/// An exclusion calendar. Its serde form is the module doc's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// Zone whose days are meant; default UTC.
    #[serde(default = "utc")]
    pub timezone: Tz,
    /// Excluded days.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<NaiveDate>,
    /// Excluded ranges of days, both ends inclusive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<DateRange>,
    /// Excluded days of the week (`mon`, `Monday`, any case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<Weekday>,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Days `from` to `to`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    /// First excluded day.
    pub from: NaiveDate,
    /// Last excluded day.
    pub to: NaiveDate,
}

fn utc() -> Tz {
    Tz::UTC
}

impl Calendar {
    /// Every problem of the calendar, each naming its field (empty: valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.dates.is_empty() && self.ranges.is_empty() && self.weekdays.is_empty() {
            out.push("excludes nothing: give `dates`, `ranges` or `weekdays`".to_owned());
        }
        if self.dates.len() + self.ranges.len() > MAX_CALENDAR_DAYS {
            out.push(format!(
                "`dates` and `ranges`: at most {MAX_CALENDAR_DAYS} entries in all"
            ));
        }
        for (i, r) in self.ranges.iter().enumerate() {
            if r.to < r.from {
                out.push(format!(
                    "`ranges[{i}]`: `to` {} is before `from` {}",
                    r.to, r.from
                ));
            }
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 1024) {
            out.push("`description`: at most 1024 bytes".to_owned());
        }
        out
    }

    /// Whether the local day of `at` in the calendar's zone is excluded.
    pub fn excludes(&self, at: DateTime<Utc>) -> bool {
        let day = at.with_timezone(&self.timezone).date_naive();
        self.weekdays.contains(&day.weekday())
            || self.dates.contains(&day)
            || self.ranges.iter().any(|r| r.from <= day && day <= r.to)
    }
}

/// Checks a calendar name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("calendar name `{name}`: 1 to 64 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "calendar name `{name}`: `{c}` is not allowed (only A-Z a-z 0-9 . _ -)"
        ));
    }
    Ok(())
}

/// Calendars by name, as the scheduler, the preview and the CLI look them up. Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendars(BTreeMap<String, Arc<Calendar>>);

impl Calendars {
    /// An empty set.
    pub fn new() -> Calendars {
        Calendars::default()
    }

    /// Adds or replaces `name`.
    pub fn insert(&mut self, name: impl Into<String>, calendar: Calendar) {
        self.0.insert(name.into(), Arc::new(calendar));
    }

    /// The calendar `name`, if known.
    pub fn get(&self, name: &str) -> Option<&Arc<Calendar>> {
        self.0.get(name)
    }

    /// Whether `name` is known.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Names and calendars, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Calendar>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The attached calendars of `names` that exist, with their names; names that are not
    /// known (a calendar deleted while attached) are left out: they exclude nothing.
    pub fn resolve(&self, names: &[String]) -> Vec<(String, Arc<Calendar>)> {
        names
            .iter()
            .filter_map(|n| self.0.get(n).map(|c| (n.clone(), c.clone())))
            .collect()
    }
}

/// The first of `attached` that excludes `at`, by name.
pub fn excluded_by(attached: &[(String, Arc<Calendar>)], at: DateTime<Utc>) -> Option<&str> {
    attached
        .iter()
        .find(|(_, c)| c.excludes(at))
        .map(|(n, _)| n.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn calendar_excludes_local_days_of_its_own_zone() {
        let cal: Calendar = toml::from_str(
            r#"
            timezone = "Asia/Tokyo"
            dates = ["2026-12-25"]
            ranges = [{ from = "2026-12-30", to = "2027-01-03" }]
            weekdays = ["sun", "Saturday"]
            "#,
        )
        .unwrap();
        assert!(cal.problems().is_empty());
        // 2026-12-24T15:00Z is 2026-12-25 00:00 in Tokyo.
        assert!(cal.excludes(utc("2026-12-24T15:00:00Z")));
        assert!(!cal.excludes(utc("2026-12-24T14:59:59Z")));
        assert!(
            cal.excludes(utc("2027-01-03T14:59:59Z")),
            "range end inclusive"
        );
        assert!(!cal.excludes(utc("2027-01-04T15:00:00Z")), "a Tuesday");
        assert!(cal.excludes(utc("2026-12-05T12:00:00Z")), "a Saturday");
        assert!(!cal.excludes(utc("2026-12-07T12:00:00Z")), "a Monday");
    }

    #[test]
    fn invalid_calendars_name_the_field() {
        let empty: Calendar = serde_json::from_str("{}").unwrap();
        assert!(empty.problems()[0].contains("excludes nothing"));
        let backwards: Calendar =
            serde_json::from_str(r#"{"ranges": [{"from": "2026-12-31", "to": "2026-12-01"}]}"#)
                .unwrap();
        assert!(backwards.problems()[0].contains("ranges[0]"));
        assert!(serde_json::from_str::<Calendar>(r#"{"dates": ["2026-02-30"]}"#).is_err());
        assert!(serde_json::from_str::<Calendar>(r#"{"weekday": ["mon"]}"#).is_err());
        assert!(serde_json::from_str::<Calendar>(r#"{"weekdays": ["mo"]}"#).is_err());
        assert!(check_name("holidays-2026.de_x").is_ok());
        assert!(check_name("").is_err() && check_name("a b").is_err());
    }

    #[test]
    fn unknown_attached_names_exclude_nothing() {
        let mut set = Calendars::new();
        set.insert(
            "weekends",
            serde_json::from_str(r#"{"weekdays": ["sat", "sun"]}"#).unwrap(),
        );
        let attached = set.resolve(&["gone".to_owned(), "weekends".to_owned()]);
        assert_eq!(attached.len(), 1);
        assert_eq!(
            excluded_by(&attached, utc("2026-12-06T10:00:00Z")),
            Some("weekends")
        );
        assert_eq!(excluded_by(&attached, utc("2026-12-07T10:00:00Z")), None);
    }
}
