//! A dead letter as the API shows it, and the filters that select dead letters.
//!
//! Header values are read as UTF-8; when a header occurs more than once (a replayed letter
//! that failed again carries the headers of both failures) the last occurrence wins, so the
//! newest failure is what is shown and filtered on.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rdkafka::message::{Headers, Message, OwnedMessage};
use serde::{Deserialize, Serialize};
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

/// The summary of one dead letter (a row of `sked dlq ls`).
#[derive(Debug, Clone, Serialize)]
pub struct Letter {
    /// DLQ partition.
    pub partition: i32,
    /// DLQ offset.
    pub offset: i64,
    /// When it failed (`error-timestamp`, else the record's timestamp).
    pub at: Option<DateTime<Utc>>,
    /// `sked-app`.
    pub app: Option<String>,
    /// `sked-stage`: ingest | execute.
    pub stage: Option<String>,
    /// `sked-reason` (else `error-reason`).
    pub reason: Option<String>,
    /// `sked-job-id`.
    pub job_id: Option<String>,
    /// `error-message`.
    pub error: Option<String>,
    /// `original-topic`: where a replay publishes it by default.
    pub original_topic: Option<String>,
    /// `sked-attempts`.
    pub attempts: Option<u32>,
    /// `sked-replay-count` (0 when never replayed).
    pub replay_count: u32,
}

impl Letter {
    /// The summary of `msg`.
    pub fn of(msg: &OwnedMessage) -> Self {
        let at_ms = header(msg, h::ERROR_TIMESTAMP)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .or_else(|| msg.timestamp().to_millis());
        Self {
            partition: msg.partition(),
            offset: msg.offset(),
            at: at_ms.and_then(DateTime::<Utc>::from_timestamp_millis),
            app: header(msg, h::SKED_APP),
            stage: header(msg, h::SKED_STAGE),
            reason: header(msg, h::SKED_REASON).or_else(|| header(msg, h::ERROR_REASON)),
            job_id: header(msg, h::SKED_JOB_ID),
            error: header(msg, h::ERROR_MESSAGE),
            original_topic: header(msg, h::ORIGINAL_TOPIC),
            attempts: header(msg, h::SKED_ATTEMPTS).and_then(|v| v.trim().parse().ok()),
            replay_count: replay_count(msg),
        }
    }

    fn at_ms(&self) -> i64 {
        self.at.map_or(i64::MIN, |t| t.timestamp_millis())
    }
}

/// `sked-replay-count` of `msg`, 0 when absent or unreadable.
pub fn replay_count(msg: &OwnedMessage) -> u32 {
    header(msg, h::SKED_REPLAY_COUNT)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes shown as UTF-8 text when they are valid UTF-8, else as base64.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bytes {
    /// Valid UTF-8.
    Text(String),
    /// Anything else, standard base64 with padding.
    Base64(String),
}

impl Bytes {
    /// Text or base64 of `raw`.
    pub fn of(raw: &[u8]) -> Self {
        match std::str::from_utf8(raw) {
            Ok(s) => Bytes::Text(s.to_owned()),
            Err(_) => Bytes::Base64(base64(raw)),
        }
    }
}

/// One dead letter in full (`sked dlq show`).
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    /// The summary.
    #[serde(flatten)]
    pub letter: Letter,
    /// The record's Kafka timestamp.
    pub timestamp: Option<DateTime<Utc>>,
    /// Every header, by name (the last occurrence wins); values as text, or base64 when not
    /// UTF-8.
    pub headers: BTreeMap<String, Option<Bytes>>,
    /// The key.
    pub key: Option<Bytes>,
    /// The value: the original bytes, unchanged.
    pub value: Option<Bytes>,
}

impl Detail {
    /// The full view of `msg`.
    pub fn of(msg: &OwnedMessage) -> Self {
        let mut headers = BTreeMap::new();
        if let Some(hs) = msg.headers() {
            for x in hs.iter() {
                headers.insert(x.key.to_owned(), x.value.map(Bytes::of));
            }
        }
        Self {
            letter: Letter::of(msg),
            timestamp: msg
                .timestamp()
                .to_millis()
                .and_then(DateTime::<Utc>::from_timestamp_millis),
            headers,
            key: msg.key().map(Bytes::of),
            value: msg.payload().map(Bytes::of),
        }
    }
}

/// Filters of the list, stats and replay calls; every given filter must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// `sked-app` equals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// `sked-reason` equals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `sked-stage` equals (`ingest` or `execute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `error-message` contains this text (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failed at or after: RFC 3339 or epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Failed before: RFC 3339 or epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `sked-job-id` equals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// A validated [`Filter`].
#[derive(Debug, Clone)]
pub struct Matcher {
    filter: Filter,
    error_lower: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
}

impl Filter {
    /// Validates the filter; the error names the bad field.
    pub fn compile(self) -> Result<Matcher, String> {
        if let Some(stage) = &self.stage
            && !matches!(stage.as_str(), "ingest" | "execute")
        {
            return Err(format!(
                "stage: expected `ingest` or `execute`, found `{stage}`"
            ));
        }
        let since_ms = self
            .since
            .as_deref()
            .map(|s| instant("since", s))
            .transpose()?;
        let until_ms = self
            .until
            .as_deref()
            .map(|s| instant("until", s))
            .transpose()?;
        Ok(Matcher {
            error_lower: self.error.as_ref().map(|e| e.to_lowercase()),
            filter: self,
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

    /// True when `l` passes every filter.
    pub fn matches(&self, l: &Letter) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        eq(&self.filter.app, &l.app)
            && eq(&self.filter.reason, &l.reason)
            && eq(&self.filter.stage, &l.stage)
            && eq(&self.filter.job_id, &l.job_id)
            && self.error_lower.as_ref().is_none_or(|e| {
                l.error
                    .as_ref()
                    .is_some_and(|m| m.to_lowercase().contains(e))
            })
            && self.since_ms.is_none_or(|s| l.at_ms() >= s)
            && self.until_ms.is_none_or(|u| l.at_ms() < u)
    }
}

/// Order of a list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Newest failure first (`error-timestamp` descending, then partition and offset).
    #[default]
    Newest,
    /// DLQ order: partition, then offset, ascending.
    Offset,
}

/// The first `limit` letters in `order`, holding at most about `2 * limit` at once.
pub struct TopN {
    order: Order,
    limit: usize,
    items: Vec<Letter>,
    /// Letters offered, matched or not.
    pub matched: u64,
}

impl TopN {
    /// An empty selection.
    pub fn new(order: Order, limit: usize) -> Self {
        Self {
            order,
            limit,
            items: Vec::new(),
            matched: 0,
        }
    }

    /// Offers one matching letter.
    pub fn push(&mut self, l: Letter) {
        self.matched += 1;
        self.items.push(l);
        if self.items.len() >= self.limit.saturating_mul(2).max(64) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        match self.order {
            Order::Newest => self.items.sort_by(|a, b| {
                (b.at_ms(), b.partition, b.offset).cmp(&(a.at_ms(), a.partition, a.offset))
            }),
            Order::Offset => self.items.sort_by_key(|l| (l.partition, l.offset)),
        }
        self.items.truncate(self.limit);
    }

    /// The selection, in order.
    pub fn finish(mut self) -> Vec<Letter> {
        self.trim();
        self.items
    }
}

/// Counts by app, reason and stage.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Letters counted.
    pub total: u64,
    /// By `sked-app` (`-` when absent).
    pub by_app: BTreeMap<String, u64>,
    /// By `sked-reason` (`-` when absent).
    pub by_reason: BTreeMap<String, u64>,
    /// By `sked-stage` (`-` when absent).
    pub by_stage: BTreeMap<String, u64>,
}

impl Stats {
    /// Counts one letter.
    pub fn add(&mut self, l: &Letter) {
        self.total += 1;
        let key = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        *self.by_app.entry(key(&l.app)).or_default() += 1;
        *self.by_reason.entry(key(&l.reason)).or_default() += 1;
        *self.by_stage.entry(key(&l.stage)).or_default() += 1;
    }
}

/// Standard base64 with padding.
pub fn base64(raw: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(raw.len().div_ceil(3) * 4);
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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
            error: Some(error.into()),
            original_topic: Some("sked.due".into()),
            attempts: Some(3),
            replay_count: 0,
        }
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x80]), "//4AgA==");
    }

    #[test]
    fn filters_combine_and_validate() {
        let f = Filter {
            app: Some("sms".into()),
            error: Some("TIMEOUT".into()),
            since: Some("1000".into()),
            until: Some("1970-01-01T00:00:03Z".into()),
            ..Filter::default()
        }
        .compile()
        .unwrap();
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
        assert!(bad.compile().unwrap_err().starts_with("stage:"));
        let bad = Filter {
            since: Some("yesterday".into()),
            ..Filter::default()
        };
        assert!(bad.compile().unwrap_err().starts_with("since:"));
    }

    #[test]
    fn top_n_keeps_the_newest_in_bounded_memory() {
        let mut top = TopN::new(Order::Newest, 3);
        for at in 0..1000 {
            top.push(letter("a", at, "e"));
            assert!(top.items.len() <= 64);
        }
        let got: Vec<i64> = top.finish().iter().map(|l| l.offset).collect();
        assert_eq!(got, [999, 998, 997]);
        let mut top = TopN::new(Order::Offset, 2);
        for at in (0..10).rev() {
            top.push(letter("a", at, "e"));
        }
        assert_eq!(top.matched, 10);
        let got: Vec<i64> = top.finish().iter().map(|l| l.offset).collect();
        assert_eq!(got, [0, 1]);
    }
}
