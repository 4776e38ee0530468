//! A dead letter as the API shows it, and the filters that select dead letters.
//!
//! Header values are read as UTF-8; when a header occurs more than once (a replayed letter
//! that failed again carries the headers of both failures) the last occurrence wins, so the
//! newest failure is what is shown and filtered on. The wire types ([`Letter`], [`Detail`],
//! [`Filter`], ...) are `sked_api::dlq`'s; this module builds them from Kafka records.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rdkafka::message::{Headers, Message, OwnedMessage};
pub use sked_api::dlq::{Bytes, Filter, Letter, LetterDetail as Detail};
use sked_core::kafka::headers as h;

/// Header added by a replay: `<replay id>:<dlq partition>:<dlq offset>`.
pub const SKED_REPLAY_ID: &str = "sked-replay-id";

/// The last value of header `name`, as UTF-8 (lossy).
pub fn header(msg: &OwnedMessage, name: &str) -> Option<String> {
    msg.headers()?
        .iter()
        .filter(|x| x.key == name)
        .last()?
        .value
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The summary of `msg`.
pub fn of(msg: &OwnedMessage) -> Letter {
    let at_ms = header(msg, h::ERROR_TIMESTAMP)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or_else(|| msg.timestamp().to_millis());
    Letter {
        partition: msg.partition(),
        offset: msg.offset(),
        at: at_ms.and_then(DateTime::<Utc>::from_timestamp_millis),
        app: header(msg, h::SKED_APP),
        stage: header(msg, h::SKED_STAGE),
        reason: header(msg, h::SKED_REASON).or_else(|| header(msg, h::ERROR_REASON)),
        job_id: header(msg, h::SKED_JOB_ID),
        tenant: header(msg, h::SKED_TENANT),
        error: header(msg, h::ERROR_MESSAGE),
        original_topic: header(msg, h::ORIGINAL_TOPIC),
        attempts: header(msg, h::SKED_ATTEMPTS).and_then(|v| v.trim().parse().ok()),
        replay_count: replay_count(msg),
    }
}

/// `sked-replay-count` of `msg`, 0 when absent or unreadable.
pub fn replay_count(msg: &OwnedMessage) -> u32 {
    header(msg, h::SKED_REPLAY_COUNT)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The full view of `msg`.
pub fn detail(msg: &OwnedMessage) -> Detail {
    let mut headers = BTreeMap::new();
    if let Some(hs) = msg.headers() {
        for x in hs.iter() {
            headers.insert(x.key.to_owned(), x.value.map(Bytes::of));
        }
    }
    Detail {
        letter: of(msg),
        timestamp: msg
            .timestamp()
            .to_millis()
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        headers,
        key: msg.key().map(Bytes::of),
        value: msg.payload().map(Bytes::of),
    }
}

/// A validated [`Filter`].
#[derive(Debug, Clone)]
pub struct Matcher {
    filter: Filter,
    error_lower: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
}

impl Matcher {
    /// Validates `filter`; the error names the bad field.
    pub fn new(filter: Filter) -> Result<Matcher, String> {
        if let Some(stage) = &filter.stage
            && !matches!(stage.as_str(), "ingest" | "execute")
        {
            return Err(format!(
                "stage: expected `ingest` or `execute`, found `{stage}`"
            ));
        }
        let since_ms = filter
            .since
            .as_deref()
            .map(|s| instant("since", s))
            .transpose()?;
        let until_ms = filter
            .until
            .as_deref()
            .map(|s| instant("until", s))
            .transpose()?;
        Ok(Matcher {
            error_lower: filter.error.as_ref().map(|e| e.to_lowercase()),
            filter,
            since_ms,
            until_ms,
        })
    }
}

fn instant(field: &str, raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            format!("{field}: expected an RFC 3339 time or epoch milliseconds, found `{raw}`")
        })
}

impl Matcher {
    /// The filter as given.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// `error`, lowercased.
    pub fn error_lower(&self) -> Option<&str> {
        self.error_lower.as_deref()
    }

    /// `since` in epoch milliseconds.
    pub fn since_ms(&self) -> Option<i64> {
        self.since_ms
    }

    /// `until` in epoch milliseconds.
    pub fn until_ms(&self) -> Option<i64> {
        self.until_ms
    }

    /// True when `l` passes every filter.
    pub fn matches(&self, l: &Letter) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        eq(&self.filter.app, &l.app)
            && eq(&self.filter.reason, &l.reason)
            && eq(&self.filter.stage, &l.stage)
            && eq(&self.filter.job_id, &l.job_id)
            && eq(&self.filter.tenant, &l.tenant)
            && self.error_lower.as_ref().is_none_or(|e| {
                l.error
                    .as_ref()
                    .is_some_and(|m| m.to_lowercase().contains(e))
            })
            && self.since_ms.is_none_or(|s| l.at_ms() >= s)
            && self.until_ms.is_none_or(|u| l.at_ms() < u)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn letter(app: &str, at: i64, error: &str) -> Letter {
        Letter {
            partition: 0,
            offset: at,
            at: DateTime::from_timestamp_millis(at),
            app: Some(app.into()),
            stage: Some("execute".into()),
            reason: Some("handler_failed".into()),
            job_id: Some(format!("j-{at}")),
            tenant: None,
            error: Some(error.into()),
            original_topic: Some("sked.due".into()),
            attempts: Some(3),
            replay_count: 0,
        }
    }

    #[test]
    fn filters_combine_and_validate() {
        let f = Filter {
            app: Some("sms".into()),
            error: Some("TIMEOUT".into()),
            since: Some("1000".into()),
            until: Some("1970-01-01T00:00:03Z".into()),
            ..Filter::default()
        };
        let f = Matcher::new(f).unwrap();
        assert!(f.matches(&letter("sms", 2000, "handler timeout after 30s")));
        assert!(!f.matches(&letter("email", 2000, "timeout")));
        assert!(
            !f.matches(&letter("sms", 3000, "timeout")),
            "until is exclusive"
        );
        assert!(!f.matches(&letter("sms", 999, "timeout")));
        assert!(!f.matches(&letter("sms", 2000, "refused")));
        let bad = Filter {
            stage: Some("run".into()),
            ..Filter::default()
        };
        assert!(Matcher::new(bad).unwrap_err().starts_with("stage:"));
        let bad = Filter {
            since: Some("yesterday".into()),
            ..Filter::default()
        };
        assert!(Matcher::new(bad).unwrap_err().starts_with("since:"));
    }
}
