//! Property tests ("fuzzing") of how the replayer reads a dead letter (letter.rs): arbitrary
//! headers, with names among sked's (crates/core/src/kafka/headers.rs) or anything else, values
//! that are not UTF-8, huge, absent (`null`), repeated or missing altogether, and arbitrary
//! filters.
//!
//! Properties: nothing panics; the summary ([`letter::of`]) and the detail ([`letter::detail`])
//! always come out and agree with a model written here from the documented rules (the last
//! occurrence of a header wins, values read as lossy UTF-8, numbers trimmed and parsed or left
//! out, `error-reason` when `sked-reason` is absent, the record timestamp when
//! `error-timestamp` is unreadable), and both serialize to JSON; a filter is accepted or
//! refused with an error naming its field, and matching never panics.
//!
//! librdkafka keeps header names as C strings: a name with a NUL byte reads back cut at it,
//! which the model follows. Names that are not UTF-8 cannot be built through rdkafka's safe API
//! (`Header::key` is a `&str`), so they are out of reach here.
//!
//! Cases per property: `PROPTEST_CASES`, else a few hundred (`scripts/fuzz.sh` runs millions).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use rdkafka::Timestamp;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use sked_core::kafka::headers as h;

use crate::letter::{self, Bytes, Filter, Matcher, SKED_REPLAY_ID};

#[path = "../../../crates/core/tests/support/fuzz_runner.rs"]
mod runner;

use runner::Outcome;

fn check<S>(name: &str, default_cases: u32, strategy: S, property: impl Fn(S::Value) -> Outcome)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    runner::check(file!(), name, default_cases, strategy, property);
}

// --- strategies ---------------------------------------------------------------------------

const NAMES: &[&str] = &[
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
    h::SKED_JOB_ID,
    h::SKED_TENANT,
    h::TRACEPARENT,
    h::SKED_ATTEMPT,
    h::SKED_REPLAY_COUNT,
    h::SKED_REPLAYED_AT,
    h::SKED_TRUNCATED,
    SKED_REPLAY_ID,
    "SKED-APP",
    "sked-app\0shadow",
    "\0",
    "",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        24 => proptest::sample::select(NAMES).prop_map(str::to_owned),
        6 => any::<String>(),
        1 => (any::<char>(), 1usize..20_000).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// Values that filters look for, in headers and filters alike.
const WORDS: &[&str] = &[
    "sms",
    "ingest",
    "execute",
    "handler_failed",
    "invalid_json",
    "acme",
    "Handler TIMEOUT after 30s",
    "timeout",
];

/// Header values: numbers as sked writes them and as it should not, text, bytes that are not
/// UTF-8, huge ones, and none at all.
fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| format!(" {n}\n")),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("+7".to_owned()),
        Just("1e3".to_owned()),
        Just("2026-06-10T10:00:00Z".to_owned()),
        Just("".to_owned()),
    ];
    let word = proptest::sample::select(WORDS).prop_map(|w| Some(w.as_bytes().to_vec()));
    prop_oneof![
        4 => Just(None),
        12 => number.prop_map(|s| Some(s.into_bytes())),
        12 => word,
        12 => any::<String>().prop_map(|s| Some(s.into_bytes())),
        12 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        1 => (any::<u8>(), 0usize..100_000).prop_map(|(b, n)| Some(vec![b; n])),
    ]
}

type Headers = Option<Vec<(String, Option<Vec<u8>>)>>;

fn headers() -> impl Strategy<Value = Headers> {
    proptest::option::weighted(0.95, proptest::collection::vec((name(), value()), 0..12))
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        Just(Timestamp::NotAvailable),
        any::<i64>().prop_map(Timestamp::CreateTime),
        (0i64..4_102_444_800_000).prop_map(Timestamp::LogAppendTime),
        Just(Timestamp::CreateTime(-1)),
    ]
}

#[derive(Debug, Clone)]
struct Record {
    headers: Headers,
    timestamp: Timestamp,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    partition: i32,
    offset: i64,
}

fn record() -> impl Strategy<Value = Record> {
    (
        headers(),
        timestamp(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
        any::<i32>(),
        any::<i64>(),
    )
        .prop_map(
            |(headers, timestamp, key, value, partition, offset)| Record {
                headers,
                timestamp,
                key,
                value,
                partition,
                offset,
            },
        )
}

fn message(r: &Record) -> OwnedMessage {
    let headers = r.headers.as_ref().map(|list| {
        list.iter().fold(OwnedHeaders::new(), |hs, (key, value)| {
            hs.insert(Header {
                key: key.as_str(),
                value: value.as_deref(),
            })
        })
    });
    OwnedMessage::new(
        r.value.clone(),
        r.key.clone(),
        "sked.dlq".into(),
        r.timestamp,
        r.partition,
        r.offset,
        headers,
    )
}

// --- the model ----------------------------------------------------------------------------

/// The name librdkafka hands back: up to the first NUL.
fn stored_name(name: &str) -> &str {
    name.split('\0').next().unwrap_or_default()
}

/// The value of the last header named `name`: absent, `null`, or bytes.
fn last<'a>(r: &'a Record, name: &str) -> Option<Option<&'a [u8]>> {
    r.headers
        .as_ref()?
        .iter()
        .rev()
        .find(|(k, _)| stored_name(k) == name)
        .map(|(_, v)| v.as_deref())
}

fn text(r: &Record, name: &str) -> Option<String> {
    last(r, name)
        .flatten()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn number<T: std::str::FromStr>(r: &Record, name: &str) -> Option<T> {
    text(r, name).and_then(|v| v.trim().parse().ok())
}

// --- properties ---------------------------------------------------------------------------

#[test]
fn any_headers_give_a_letter_that_follows_the_documented_rules() {
    check("letter/summary_and_detail", 500, record(), |r| {
        let msg = message(&r);
        let l = letter::of(&msg);
        prop_assert_eq!(l.partition, r.partition);
        prop_assert_eq!(l.offset, r.offset);
        prop_assert_eq!(&l.app, &text(&r, h::SKED_APP));
        prop_assert_eq!(&l.stage, &text(&r, h::SKED_STAGE));
        prop_assert_eq!(
            &l.reason,
            &text(&r, h::SKED_REASON).or_else(|| text(&r, h::ERROR_REASON))
        );
        prop_assert_eq!(&l.job_id, &text(&r, h::SKED_JOB_ID));
        prop_assert_eq!(&l.tenant, &text(&r, h::SKED_TENANT));
        prop_assert_eq!(&l.error, &text(&r, h::ERROR_MESSAGE));
        prop_assert_eq!(&l.original_topic, &text(&r, h::ORIGINAL_TOPIC));
        prop_assert_eq!(l.attempts, number::<u32>(&r, h::SKED_ATTEMPTS));
        prop_assert_eq!(
            l.replay_count,
            number::<u32>(&r, h::SKED_REPLAY_COUNT).unwrap_or(0)
        );
        prop_assert_eq!(l.replay_count, letter::replay_count(&msg));
        let at_ms = number::<i64>(&r, h::ERROR_TIMESTAMP).or_else(|| r.timestamp.to_millis());
        prop_assert_eq!(l.at, at_ms.and_then(DateTime::<Utc>::from_timestamp_millis));
        let _ = l.at_ms();

        let d = letter::detail(&msg);
        prop_assert_eq!(&d.letter, &l);
        let mut want: BTreeMap<String, Option<Bytes>> = BTreeMap::new();
        for (k, v) in r.headers.iter().flatten() {
            want.insert(stored_name(k).to_owned(), v.as_deref().map(Bytes::of));
        }
        prop_assert_eq!(&d.headers, &want);
        for (raw, shown) in [(&r.key, &d.key), (&r.value, &d.value)] {
            match (raw, shown) {
                (None, None) => {}
                (Some(raw), Some(Bytes::Text(t))) => prop_assert_eq!(t.as_bytes(), &raw[..]),
                (Some(raw), Some(Bytes::Base64(b))) => {
                    prop_assert!(std::str::from_utf8(raw).is_err());
                    prop_assert_eq!(b, &sked_api::dlq::base64(raw));
                }
                (raw, shown) => prop_assert!(false, "{raw:?} shown as {shown:?}"),
            }
        }
        // What the API answers with.
        let json = serde_json::to_string(&d).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
        let outcome = match (&r.headers, &l.reason) {
            (None, _) => "no_headers",
            (Some(_), None) => "letter_without_reason",
            (Some(_), Some(_)) => "letter",
        };
        Ok(outcome.into())
    });
}

fn filter_field() -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(
        0.3,
        prop_oneof![
            4 => proptest::sample::select(WORDS).prop_map(str::to_owned),
            1 => any::<i64>().prop_map(|n| n.to_string()),
            1 => Just("2026-06-10T10:00:00Z".to_owned()),
            1 => Just(" 1000 ".to_owned()),
            1 => any::<String>(),
        ],
    )
}

#[test]
fn any_filter_is_accepted_or_refused_by_name_and_matching_never_panics() {
    let filter = (
        (
            filter_field(),
            filter_field(),
            filter_field(),
            filter_field(),
        ),
        (
            filter_field(),
            filter_field(),
            filter_field(),
            filter_field(),
        ),
    )
        .prop_map(
            |((app, reason, stage, error), (since, until, job_id, tenant))| Filter {
                app,
                reason,
                stage,
                error,
                since,
                until,
                job_id,
                tenant,
            },
        );
    check(
        "letter/filters",
        500,
        (filter, record()),
        |(filter, r)| match Matcher::new(filter) {
            Ok(m) => {
                let l = letter::of(&message(&r));
                Ok(if m.matches(&l) {
                    "matched"
                } else {
                    "not_matched"
                }
                .into())
            }
            Err(why) => {
                prop_assert!(
                    ["stage: ", "since: ", "until: "]
                        .iter()
                        .any(|field| why.starts_with(field)),
                    "error names no field: {why}"
                );
                Ok(format!(
                    "refused_{}",
                    why.split(':').next().unwrap_or_default()
                ))
            }
        },
    );
}
