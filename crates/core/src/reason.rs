//! Machine-readable reasons why sked refused or dead-lettered something.
//!
//! The snake_case string form of a [`Reason`] is part of the contract: it is the value of the
//! `sked-reason` Kafka header on DLQ records, the `code` of HTTP error bodies, and a bounded
//! metric label (`sked_dlq_messages_total{reason}`). Renaming a variant is a breaking change.

use serde::{Deserialize, Serialize};

/// Why a schedule request (or a job) was rejected.
///
/// String forms come from `strum` and `serde` (both snake_case), never from a hand-written match:
///
/// ```
/// use sked_core::reason::Reason;
///
/// assert_eq!(Reason::TooFarInFuture.to_string(), "too_far_in_future");
/// assert_eq!("invalid_cron".parse::<Reason>().ok(), Some(Reason::InvalidCron));
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    /// The request is not valid JSON, is not a JSON object, or repeats a field.
    InvalidJson,
    /// A required field is absent (or `null`), e.g. `app`, or none of `run_at`, `delay`, `cron`,
    /// `every` was given.
    MissingField,
    /// A field that the native request shape does not know (usually a typo).
    UnknownField,
    /// A field has the wrong type or an out-of-range value, or fields conflict with each other.
    InvalidField,
    /// The job id (`id` / `requestId`) is empty, too long or contains forbidden characters.
    InvalidId,
    /// A time (`run_at`, `scheduledTime`, `start_at`, `end_at`, `delay`) cannot be parsed, or a
    /// recurring schedule has no fire time left.
    InvalidTime,
    /// The `timezone` is not an IANA time zone name.
    InvalidTimezone,
    /// The `cron` expression cannot be parsed or never matches.
    InvalidCron,
    /// The `every` interval cannot be parsed or is out of range.
    InvalidInterval,
    /// The app is not in the configured app registry.
    UnknownApp,
    /// The request is larger than the configured size limit.
    PayloadTooLarge,
    /// The first fire time is beyond the configured scheduling horizon.
    TooFarInFuture,
    /// The request bytes are not valid UTF-8.
    InvalidUtf8,
    /// A calendar named in `calendars` is neither configured nor created through the API.
    UnknownCalendar,
    /// The tenant or app is over a quota of `[quotas]` (pending jobs or submissions per
    /// second).
    QuotaExceeded,
    /// sked itself failed; not the sender's fault.
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn string_forms_agree_between_strum_and_serde() {
        for reason in Reason::iter() {
            let text: &'static str = reason.into();
            assert_eq!(reason.to_string(), text);
            assert_eq!(reason.as_ref(), text);
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(text.parse::<Reason>().unwrap(), reason);
            assert_eq!(
                serde_json::from_str::<Reason>(&format!("\"{text}\"")).unwrap(),
                reason
            );
        }
    }

    #[test]
    fn string_forms_are_stable() {
        let all: Vec<&str> = Reason::iter().map(Into::into).collect();
        assert_eq!(
            all,
            [
                "invalid_json",
                "missing_field",
                "unknown_field",
                "invalid_field",
                "invalid_id",
                "invalid_time",
                "invalid_timezone",
                "invalid_cron",
                "invalid_interval",
                "unknown_app",
                "payload_too_large",
                "too_far_in_future",
                "invalid_utf8",
                "unknown_calendar",
                "quota_exceeded",
                "internal",
            ]
        );
    }
}
