//! Durations and the period of an `every` schedule.
//!
//! An `every` interval is an absolute duration: `"1h"` is 3,600 seconds between fires, across
//! DST transitions too, so on the day clocks jump forward an hourly job still fires every 3,600
//! seconds and its local fire times move by an hour. Use a cron expression for wall-clock times.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
