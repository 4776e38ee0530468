//! The records the worker produces about a fire: retry records (same bytes, updated attempt
//! headers) and dead letters (original bytes and key, every original header, and the DLQ
//! header set of ARCHITECTURE.md).

use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use sked_core::kafka::headers as h;

/// Why the worker dead-lettered a fire: the `sked-reason` (and `error-reason`) header value
/// and the `reason` label of `sked_worker_dead_letters_total`. Part of the contract, like
/// `sked_core::reason::Reason` (which holds the ingest reasons).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    /// The record's value is not a job envelope.
    InvalidEnvelope,
    /// The job's app has no handler in this worker: not configured, or its custom handler is
    /// not registered.
    NoHandler,
    /// The handler failed transiently on every attempt the retry policy allows.
    HandlerFailed,
    /// The handler reported an error that retrying cannot fix (e.g. HTTP 400).
    PermanentError,
    /// The last attempt the retry policy allows timed out.
    Timeout,
    /// The fire should be retried, but its retry record is larger than the producer or the
    /// retry topic accepts (`message.max.bytes`, `max.message.bytes`): dead-lettered instead,
    /// so it cannot be retried forever.
    RetryTooLarge,
}

/// An owned record, ready to produce (the same shape as a dead letter).
pub use sked_core::kafka::dlq::Record as Outgoing;

/// Headers a retry record sets itself; earlier values of them are not copied.
const RETRY_OWNED: [&str; 4] = [
    h::SKED_ATTEMPT,
    h::SKED_RETRY_AT,
    h::RETRY_COUNT,
    h::LAST_ERROR,
];

/// What a retry record says.
#[derive(Debug, Clone, Copy)]
pub struct Retry<'a> {
    /// The job id: the key of the retry record.
    pub job_id: &'a str,
    /// The attempt the retry asks for.
    pub next_attempt: u32,
    /// When it is due again, epoch ms.
    pub retry_at_ms: i64,
    /// The error of the attempt that failed.
    pub last_error: &'a str,
}

/// The retry record of `msg`: the same value, key = job id, every original header except the
/// ones it sets, then `sked-attempt` (next attempt), `sked-retry-at`, `retry-count` (executions
/// so far) and `last-error`.
pub fn retry<M: Message>(msg: &M, retry: &Retry<'_>) -> Outgoing {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = msg.headers() {
        for header in original.iter() {
            if !RETRY_OWNED.contains(&header.key) {
                headers = headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
    }
    let attempt = retry.next_attempt.to_string();
    let retry_at = retry.retry_at_ms.to_string();
    let count = retry.next_attempt.saturating_sub(1).to_string();
    for (key, value) in [
        (h::SKED_ATTEMPT, attempt.as_str()),
        (h::SKED_RETRY_AT, retry_at.as_str()),
        (h::RETRY_COUNT, count.as_str()),
        (h::LAST_ERROR, retry.last_error),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    Outgoing {
        key: Some(retry.job_id.as_bytes().to_vec()),
        payload: msg.payload().map(<[u8]>::to_vec),
        headers,
    }
}

/// The value of header `name`, as UTF-8.
pub fn header<'a, M: Message>(msg: &'a M, name: &str) -> Option<&'a str>
where
    M::Headers: 'a,
{
    msg.headers()?
        .iter()
        .find(|x| x.key == name)
        .and_then(|x| x.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// Every header of `msg`, in order, values as UTF-8 (lossy; an absent value is empty), for
/// the job's attempts (`GET /v1/jobs/{id}`); at most `max`.
pub fn headers<M: Message>(msg: &M, max: usize) -> Vec<(String, String)> {
    msg.headers().map_or_else(Vec::new, |hs| {
        hs.iter()
            .take(max)
            .map(|x| {
                (
                    x.key.to_owned(),
                    String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use rdkafka::{Timestamp, message::OwnedMessage};
    use strum::IntoEnumIterator;

    use super::*;

    fn fire() -> OwnedMessage {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: h::SKED_JOB_ID,
                value: Some("j1"),
            })
            .insert(Header {
                key: h::SKED_ATTEMPT,
                value: Some("1"),
            })
            .insert(Header {
                key: h::TRACEPARENT,
                value: Some("00-abc-def-01"),
            });
        OwnedMessage::new(
            Some(b"{\"x\":1}".to_vec()),
            Some(b"j1".to_vec()),
            "due".into(),
            Timestamp::NotAvailable,
            2,
            41,
            Some(headers),
        )
    }

    #[test]
    fn retry_records_keep_bytes_and_headers_and_replace_the_attempt() {
        let msg = fire();
        let out = retry(
            &msg,
            &Retry {
                job_id: "j1",
                next_attempt: 2,
                retry_at_ms: 1234,
                last_error: "http status 503",
            },
        );
        assert_eq!(out.payload.as_deref(), msg.payload());
        assert_eq!(out.key.as_deref(), Some(&b"j1"[..]));
        let hs: Vec<(String, String)> = out
            .headers
            .iter()
            .map(|x| {
                (
                    x.key.to_owned(),
                    String::from_utf8_lossy(x.value.unwrap()).into_owned(),
                )
            })
            .collect();
        let get = |k: &str| {
            hs.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get(h::SKED_ATTEMPT), ["2"]);
        assert_eq!(get(h::SKED_RETRY_AT), ["1234"]);
        assert_eq!(get(h::RETRY_COUNT), ["1"]);
        assert_eq!(get(h::LAST_ERROR), ["http status 503"]);
        assert_eq!(get(h::TRACEPARENT), ["00-abc-def-01"]);
        assert_eq!(get(h::SKED_JOB_ID), ["j1"]);
    }

    #[test]
    fn dead_letters_keep_bytes_key_and_headers() {
        let msg = fire();
        let out = sked_core::kafka::dlq::record(
            &msg,
            &sked_core::kafka::dlq::Failure {
                stage: sked_core::kafka::dlq::Stage::Execute,
                reason: Reason::PermanentError.into(),
                message: "http status 400",
                at: chrono::Utc::now(),
                attempts: 1,
                app: Some("sms"),
                job_id: Some("j1"),
                tenant: None,
            },
        );
        assert_eq!(out.payload.as_deref(), msg.payload());
        assert_eq!(out.key.as_deref(), msg.key());
        let names: Vec<&str> = out.headers.iter().map(|x| x.key).collect();
        for name in [
            h::SKED_JOB_ID,
            h::TRACEPARENT,
            h::ORIGINAL_TOPIC,
            h::ORIGINAL_PARTITION,
            h::ORIGINAL_OFFSET,
            h::ERROR_MESSAGE,
            h::ERROR_TIMESTAMP,
            h::FAILED_AT,
            h::ERROR_REASON,
            h::SKED_STAGE,
            h::SKED_REASON,
            h::SKED_ATTEMPTS,
            h::SKED_APP,
        ] {
            assert!(names.contains(&name), "{name} missing in {names:?}");
        }
        assert_eq!(names.iter().filter(|n| **n == h::SKED_JOB_ID).count(), 1);
    }

    #[test]
    fn reason_strings_are_stable() {
        let all: Vec<&str> = Reason::iter().map(Into::into).collect();
        assert_eq!(
            all,
            [
                "invalid_envelope",
                "no_handler",
                "handler_failed",
                "permanent_error",
                "timeout",
                "retry_too_large"
            ]
        );
    }
}
