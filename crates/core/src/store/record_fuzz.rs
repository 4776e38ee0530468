//! Property tests ("fuzzing") of the binary job record (record.rs):
//!
//! 1. `decode` never panics, on arbitrary bytes, on a valid head followed by arbitrary bytes,
//!    and on damaged encodings, with or without keys, opening the payload or not; every error
//!    says what is wrong;
//! 2. `decode(encode(x)) == x` for generated specs in every state, in clear and sealed, to the
//!    nanosecond and byte for byte in the payload; `Payload::Skip` gives the same spec with a
//!    `null` payload.
//!
//! Cases per property: `PROPTEST_CASES`, else a few hundred (`scripts/fuzz.sh` runs millions).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use serde_json::value::RawValue;
use strum::IntoEnumIterator;

use super::record::{DecodeError, JobState, Payload, decode, encode};
use super::seal::Keyring;
use super::seal::tests::keyring;
use crate::job::{JobId, Priority};
use crate::request::{Backoff, Format, JobSpec, RetryOf, RetryPolicy};
use crate::schedule::{CronExpr, DomDow, DstPolicy, Gap, Misfire, Overlap, Schedule};

#[path = "../../tests/support/fuzz_runner.rs"]
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

/// Any instant from year 0 to 9999 (what requests can name), to the nanosecond.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_167_219_200i64..253_402_300_800, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap())
}

fn job_id() -> impl Strategy<Value = JobId> {
    "[!-.0-~\u{a1}-\u{2fff}]{0,60}".prop_map(|id| {
        let id: String = id.chars().filter(|c| !c.is_whitespace()).collect();
        JobId::parse(&format!("j{id}")).unwrap()
    })
}

/// JSON text as a client may send it: any value, compact or pretty, or with odd spacing.
fn payload() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::String),
    ];
    let value = leaf.prop_recursive(3, 20, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        value.clone().prop_map(|v| v.to_string()),
        value.prop_map(|v| serde_json::to_string_pretty(&v).unwrap()),
        Just(r#" {"n": 12345678901234567890123, "f": 1.50, "s": "\u00e9\ud83d\ude00"} "#.into()),
    ]
}

const CRONS: &[&str] = &[
    "* * * * *",
    "0 9 * * 1-5",
    "*/15 * * * *",
    "@daily",
    "0 0 1 * +MON",
    "0 0 12 ? * MON#5 2099",
    "30 2 * * *",
];

fn misfire() -> impl Strategy<Value = Misfire> {
    prop_oneof![
        Just(Misfire::FireOnce),
        Just(Misfire::Skip),
        (1u32..=u32::MAX).prop_map(|cap| Misfire::FireAll { cap }),
    ]
}

type Bounds = (
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<NonZeroU32>,
    Misfire,
    Option<u64>,
);

/// `start_at`, `end_at`, `max_runs`, `misfire`, `jitter_ms` of a recurring schedule.
fn bounds() -> impl Strategy<Value = Bounds> {
    (
        proptest::option::of(instant()),
        proptest::option::of(instant()),
        proptest::option::of(any::<NonZeroU32>()),
        misfire(),
        proptest::option::of(any::<u64>()),
    )
}

fn schedule(first_due: DateTime<Utc>) -> impl Strategy<Value = Schedule> {
    let zones = proptest::sample::select(
        &[
            chrono_tz::UTC,
            chrono_tz::Asia::Dhaka,
            chrono_tz::America::New_York,
            chrono_tz::Australia::Lord_Howe,
        ][..],
    );
    let dst = (
        proptest::sample::select(&[Gap::Shift, Gap::Skip][..]),
        proptest::sample::select(&[Overlap::First, Overlap::Both, Overlap::Last][..]),
    )
        .prop_map(|(gap, overlap)| DstPolicy { gap, overlap });
    prop_oneof![
        Just(Schedule::Once { at: first_due }),
        instant().prop_map(|at| Schedule::Once { at }),
        (
            proptest::sample::select(CRONS),
            proptest::option::of(proptest::sample::select(&[DomDow::Or, DomDow::And][..])),
            dst,
            zones,
            bounds(),
        )
            .prop_map(
                |(text, dom_dow, dst, tz, (start_at, end_at, max_runs, misfire, jitter_ms))| {
                    Schedule::Cron {
                        expr: CronExpr::parse(text)
                            .unwrap()
                            .with_dom_dow(dom_dow)
                            .with_dst(dst),
                        tz,
                        start_at,
                        end_at,
                        max_runs,
                        misfire,
                        jitter_ms,
                    }
                }
            ),
        (any::<u64>(), bounds()).prop_map(
            |(interval_ms, (start_at, end_at, max_runs, misfire, jitter_ms))| Schedule::Every {
                interval_ms,
                start_at,
                end_at,
                max_runs,
                misfire,
                jitter_ms,
            }
        ),
    ]
}

fn retry() -> impl Strategy<Value = RetryPolicy> {
    (
        any::<NonZeroU32>(),
        proptest::sample::select(&[Backoff::Exponential, Backoff::Fixed][..]),
        any::<u64>(),
        any::<u64>(),
        prop_oneof![Just(0.2), Just(0.0), Just(1.0), 0.0f64..=1.0],
    )
        .prop_map(|(max_attempts, backoff, a, b, jitter)| RetryPolicy {
            max_attempts,
            backoff,
            initial_ms: a.min(b),
            max_ms: a.max(b),
            jitter,
        })
}

fn spec() -> impl Strategy<Value = JobSpec> {
    instant().prop_flat_map(|first_due| {
        (
            (
                job_id(),
                any::<String>(),
                proptest::option::of(any::<String>()),
                payload(),
                schedule(first_due),
                proptest::sample::select(&[Priority::High, Priority::Normal, Priority::Low][..]),
                proptest::option::of(any::<u64>()),
            ),
            (
                proptest::option::of(retry()),
                proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4),
                proptest::option::of(".{1,64}"),
                proptest::collection::vec(any::<String>(), 0..3),
                proptest::sample::select(&[Format::Native, Format::InfiniteScheduler][..]),
                proptest::option::of((job_id(), any::<String>(), any::<u32>())),
                proptest::option::of(any::<String>()),
            ),
        )
            .prop_map(
                move |(
                    (id, app, idempotency_key, payload, schedule, priority, timeout_ms),
                    (retry, labels, tenant, calendars, format, retry_of, traceparent),
                )| JobSpec {
                    id,
                    app,
                    idempotency_key,
                    payload: RawValue::from_string(payload).unwrap(),
                    schedule,
                    first_due,
                    priority,
                    timeout_ms,
                    retry,
                    labels,
                    tenant,
                    calendars,
                    format,
                    retry_of: retry_of.map(|(job_id, fire_id, attempt)| RetryOf {
                        job_id,
                        fire_id,
                        attempt,
                    }),
                    traceparent,
                },
            )
    })
}

fn state() -> impl Strategy<Value = JobState> {
    proptest::sample::select(JobState::iter().collect::<Vec<_>>())
}

/// The keyrings a store may run with: none, sealing with k1, sealing with k2 and opening k1.
fn keys(which: u8) -> Keyring {
    match which % 3 {
        0 => Keyring::none(),
        1 => keyring(Some("k1"), &["k1"]),
        _ => keyring(Some("k2"), &["k1", "k2"]),
    }
}

/// A short label of a decode error, for the tally: its words up to the first detail.
fn label(err: &DecodeError) -> String {
    match err {
        DecodeError::UnknownKey(_) => "unknown_key".into(),
        DecodeError::Corrupt(why) => {
            let head: String = why
                .chars()
                .take_while(|c| !matches!(c, ':' | '(' | '`' | '\'' | '0'..='9'))
                .collect();
            let head = head.trim_end_matches(|c: char| !c.is_alphanumeric());
            format!("corrupt({})", head.replace(' ', "_"))
        }
    }
}

fn decode_checked(id: &JobId, raw: &[u8], keys: &Keyring, payload: Payload) -> Outcome {
    match decode(id, raw, keys, payload) {
        Ok(_) => Ok("ok".into()),
        Err(err) => {
            prop_assert!(!err.to_string().is_empty(), "{err:?}");
            Ok(label(&err))
        }
    }
}

// --- properties ---------------------------------------------------------------------------

#[test]
fn decode_never_panics_on_arbitrary_bytes() {
    let raw = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        // A valid head (state, layout) followed by anything: reaches the field readers.
        (
            any::<[u8; 8]>(),
            proptest::sample::select(b"sSrRpPfFdcx".to_vec()),
            proptest::sample::select(b"2349".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(fp, state, layout, rest)| {
                let mut raw = fp.to_vec();
                raw.extend([state, layout]);
                raw.extend(rest);
                raw
            }),
    ];
    check(
        "record/arbitrary_bytes",
        1000,
        (job_id(), raw, any::<u8>(), any::<bool>()),
        |(id, raw, which, skip)| {
            let payload = if skip { Payload::Skip } else { Payload::Open };
            decode_checked(&id, &raw, &keys(which), payload)
        },
    );
}

#[test]
fn decode_never_panics_on_damaged_records() {
    let edits =
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..5);
    check(
        "record/damaged_records",
        500,
        (spec(), state(), any::<u8>(), edits, any::<bool>()),
        |(spec, state, which, edits, skip)| {
            let keys = keys(which);
            let (_, mut raw) = encode(&spec, 7, state, &keys).unwrap();
            for (at, byte, op) in edits {
                if raw.is_empty() {
                    break;
                }
                let i = at.index(raw.len());
                match op {
                    0 => raw[i] = byte,
                    1 => raw.insert(i, byte),
                    2 => {
                        raw.remove(i);
                    }
                    _ => raw.truncate(i),
                }
            }
            let payload = if skip { Payload::Skip } else { Payload::Open };
            decode_checked(&spec.id, &raw, &keys, payload)
        },
    );
}

#[test]
fn decode_of_encode_is_the_identity() {
    check(
        "record/round_trip",
        500,
        (spec(), state(), any::<u64>(), any::<u8>()),
        |(spec, state, fingerprint, which)| {
            let keys = keys(which);
            let (fp, raw) = encode(&spec, fingerprint, state, &keys).unwrap();
            prop_assert_eq!(fp, fingerprint.to_be_bytes());
            prop_assert_eq!(&raw[..8], &fp[..]);
            let (got_state, back) = decode(&spec.id, &raw, &keys, Payload::Open)
                .map_err(|e| TestCaseError::fail(format!("{e}: {raw:?}")))?;
            prop_assert_eq!(got_state, state);
            prop_assert_eq!(&back, &spec);
            prop_assert_eq!(back.first_due, spec.first_due, "to the nanosecond");
            prop_assert_eq!(back.payload.get(), spec.payload.get(), "payload bytes");
            prop_assert_eq!(&back.traceparent, &spec.traceparent);
            // Without opening the payload: every other field, and a null payload.
            let (_, meta) = decode(&spec.id, &raw, &keys, Payload::Skip)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut want = spec.clone();
            if keys.seals() {
                want.payload = RawValue::from_string("null".into()).unwrap();
            }
            prop_assert_eq!(&meta, &want);
            let layout = if keys.seals() { "sealed" } else { "clear" };
            Ok(format!("ok_{layout}"))
        },
    );
}

/// The first due time is stored as epoch ms plus the nanoseconds below: any instant of the
/// domain survives, at both ends of it.
#[test]
fn first_due_survives_at_the_ends_of_the_range() {
    let spec = |at: DateTime<Utc>| JobSpec {
        id: JobId::parse("edge").unwrap(),
        app: "a".into(),
        idempotency_key: None,
        payload: RawValue::from_string("null".into()).unwrap(),
        schedule: Schedule::Once { at },
        first_due: at,
        priority: Priority::Normal,
        timeout_ms: None,
        retry: None,
        labels: BTreeMap::new(),
        tenant: None,
        calendars: Vec::new(),
        format: Format::Native,
        retry_of: None,
        traceparent: None,
    };
    let lo = DateTime::from_timestamp(-62_167_219_200, 0).unwrap();
    let hi = DateTime::from_timestamp(253_402_300_799, 999_999_999).unwrap();
    for at in [lo, hi, DateTime::UNIX_EPOCH - TimeDelta::nanoseconds(1)] {
        let s = spec(at);
        let (_, raw) = encode(&s, 0, JobState::Scheduled, &Keyring::none()).unwrap();
        let (_, back) = decode(&s.id, &raw, &Keyring::none(), Payload::Open).unwrap();
        assert_eq!(back.first_due, at);
    }
}
