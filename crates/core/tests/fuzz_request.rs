//! Property tests ("fuzzing") of the schedule-request parser, `sked_core::request::parse`.
//!
//! Properties, on both request shapes (native and Infinite-Scheduler):
//!
//! 1. arbitrary bytes, byte-level mutations of valid requests, and JSON objects built from the
//!    known field names with arbitrary values never panic;
//! 2. every rejection carries a reason of the set `parse` documents (every [`Reason`] but
//!    `unknown_calendar` and `quota_exceeded`, which come after parsing, and `internal`), and a
//!    message that is lowercase, non-empty and without a trailing period; size and UTF-8
//!    rejections come exactly when the bytes are over the limit or not UTF-8;
//! 3. every accepted request respects the limits (app registry, horizon, tenant and label
//!    rules) and its stored form round-trips;
//! 4. generated valid requests parse, and the fields generated come back: app, id, payload
//!    (byte for byte), times, labels, tenant, priority, retry, timeout, calendars.
//!
//! Cases per property: `PROPTEST_CASES`, else a few hundred (`scripts/fuzz.sh` runs millions).
//! Each property prints the cases it ran and the rejection reasons it saw (support/fuzz_runner.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::SubsecRound;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;
use sked_core::job::Priority;
use sked_core::reason::Reason;
use sked_core::request::{
    self, Backoff, Error, Format, JobSpec, Limits, MAX_LABELS, Origin, check_label, check_tenant,
    parse,
};
use sked_core::schedule::Schedule;

#[path = "support/fuzz_runner.rs"]
mod runner;

use runner::Outcome;

fn check<S>(name: &str, default_cases: u32, strategy: S, property: impl Fn(S::Value) -> Outcome)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    runner::check(file!(), name, default_cases, strategy, property);
}

// --- checks of every outcome --------------------------------------------------------------

/// The reasons `parse` may give; the others come from later checks.
fn documented(reason: Reason) -> bool {
    !matches!(
        reason,
        Reason::UnknownCalendar | Reason::QuotaExceeded | Reason::Internal
    )
}

fn check_error(bytes: &[u8], limits: &Limits, err: &Error) -> Result<(), TestCaseError> {
    prop_assert!(documented(err.reason), "undocumented reason: {err}");
    prop_assert!(!err.message.is_empty(), "empty message: {err:?}");
    prop_assert!(
        !err.message.starts_with(char::is_uppercase),
        "message starts upper case: {err}"
    );
    prop_assert!(!err.message.ends_with('.'), "trailing period: {err}");
    let too_large = bytes.len() > limits.max_bytes;
    prop_assert_eq!(err.reason == Reason::PayloadTooLarge, too_large, "{}", err);
    if !too_large {
        let utf8 = std::str::from_utf8(bytes).is_ok();
        prop_assert_eq!(err.reason == Reason::InvalidUtf8, !utf8, "{}", err);
    }
    if err.reason == Reason::UnknownApp {
        prop_assert!(
            limits.apps.is_some(),
            "unknown_app without a registry: {err}"
        );
    }
    Ok(())
}

fn check_spec(limits: &Limits, origin: &Origin, spec: &JobSpec) -> Result<(), TestCaseError> {
    prop_assert!(!spec.app.is_empty());
    // Every time is one the job record can hold (epoch ms + ns below, no leap second).
    let times = [
        Some(spec.first_due),
        spec.schedule.end_at(),
        start_at(&spec.schedule),
    ];
    for t in times.into_iter().flatten() {
        prop_assert!(
            t.timestamp_subsec_nanos() < 1_000_000_000,
            "leap second {t}"
        );
    }
    if let Some(apps) = &limits.apps {
        prop_assert!(apps.contains(&spec.app), "unregistered app {}", spec.app);
    }
    let limit = TimeDelta::from_std(limits.max_horizon)
        .ok()
        .and_then(|horizon| origin.now.checked_add_signed(horizon));
    if let Some(limit) = limit {
        prop_assert!(
            spec.first_due <= limit,
            "first due {} past the horizon",
            spec.first_due
        );
    }
    if let Some(tenant) = &spec.tenant
        && Some(tenant) != origin.tenant.as_ref()
    {
        prop_assert!(check_tenant(tenant).is_ok(), "bad tenant {tenant:?}");
    }
    prop_assert!(spec.labels.len() <= MAX_LABELS);
    for (k, v) in &spec.labels {
        prop_assert!(check_label(k, v).is_ok(), "bad label {k:?}={v:?}");
    }
    if let Some(key) = &spec.idempotency_key {
        prop_assert!(!key.is_empty() && key.len() <= request::MAX_IDEMPOTENCY_KEY_LEN);
    }
    // Valid JSON, kept as written: numbers out of f64's range are payload too.
    let payload = serde_json::from_str::<serde::de::IgnoredAny>(spec.payload.get());
    prop_assert!(payload.is_ok(), "payload {}", spec.payload.get());
    prop_assert!(spec.timeout_ms != Some(0));
    if let Some(retry) = &spec.retry {
        prop_assert!(retry.initial_ms <= retry.max_ms);
        prop_assert!((0.0..=1.0).contains(&retry.jitter));
    }
    if !spec.schedule.is_recurring() {
        prop_assert!(spec.calendars.is_empty());
    }
    // The stored form (JSON) reads back as the same spec.
    let stored = serde_json::to_string(spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: JobSpec =
        serde_json::from_str(&stored).map_err(|e| TestCaseError::fail(format!("{e}: {stored}")))?;
    prop_assert_eq!(&back, spec);
    Ok(())
}

fn start_at(schedule: &Schedule) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::Once { .. } => None,
        Schedule::Cron { start_at, .. } | Schedule::Every { start_at, .. } => *start_at,
    }
}

/// Parses and checks whatever comes out; the outcome's label.
fn parse_checked(bytes: &[u8], limits: &Limits, origin: &Origin) -> Outcome {
    match parse(bytes, limits, origin) {
        Ok(spec) => {
            check_spec(limits, origin, &spec)?;
            Ok(format!("ok_{}", spec.format))
        }
        Err(err) => {
            check_error(bytes, limits, &err)?;
            Ok(err.reason.to_string())
        }
    }
}

// --- strategies ---------------------------------------------------------------------------

/// A Kafka record timestamp between 1970 and 2200.
fn now() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..7_258_118_400_000).prop_map(|ms| DateTime::from_timestamp_millis(ms).expect("in range"))
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        prop_oneof![6 => Just(1usize << 20), 1 => 0usize..300],
        prop_oneof![
            3 => Just(Duration::from_secs(3650 * 86_400)),
            1 => (0u64..u64::MAX).prop_map(Duration::from_millis),
        ],
        zone(),
        proptest::option::weighted(
            0.2,
            proptest::collection::btree_set(
                prop_oneof![Just("sms".to_owned()), "[a-z]{1,3}"],
                0..3,
            ),
        ),
    )
        .prop_map(|(max_bytes, max_horizon, default_timezone, apps)| Limits {
            max_bytes,
            max_horizon,
            default_timezone,
            apps,
        })
}

fn origin() -> impl Strategy<Value = Origin> {
    (
        now(),
        proptest::option::of("[a-z0-9-]{1,20}"),
        proptest::option::of(prop_oneof![Just("acme".to_owned()), "[A-Za-z0-9._-]{1,64}"]),
    )
        .prop_map(|(now, fallback, tenant)| Origin {
            now,
            fallback_id: fallback.and_then(|id| sked_core::job::JobId::parse(&id).ok()),
            tenant,
        })
}

const ZONES: &[Tz] = &[
    Tz::UTC,
    chrono_tz::Asia::Dhaka,
    chrono_tz::America::New_York,
    chrono_tz::Europe::Berlin,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Pacific::Chatham,
    chrono_tz::America::Santiago,
    chrono_tz::Pacific::Kiritimati,
];

fn zone() -> impl Strategy<Value = Tz> {
    proptest::sample::select(ZONES)
}

/// Strings that mean something to some field, valid or nearly so.
const TOKENS: &[&str] = &[
    "",
    " ",
    "sms",
    "email",
    "a/b",
    "x y",
    "2026-06-10T10:00:00Z",
    "2026-06-10T10:00:00+06:00",
    "2026-06-10T10:00:00.123456789-13:59",
    "2026-06-10 10:00",
    "2026-06-10T10:00:00",
    "2026-03-08T02:30:00",
    "2026-11-01 01:30:00.5",
    "2016-12-31T23:59:60Z",
    "2026-02-30T10:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999999-23:59",
    "0000-01-01T00:00:00Z",
    "0000-01-01 00:00",
    "1969-07-20T20:17:40Z",
    "2026-06-10T25:00",
    "2026-06-10T10:00:00.",
    "2026-06-10T10:00:00.1234567891",
    "2026-06-10T10:00:0é",
    "1s",
    "0s",
    "15m",
    "1h30m",
    "2d",
    "1000000000y",
    "18446744073709551615ms",
    "99999999999999999999999s",
    "-1s",
    "1 fortnight",
    "@daily",
    "@yearly",
    "@hourly",
    "@reboot",
    "* * * * *",
    "0 9 * * 1-5",
    "0 0 30 2 *",
    "0 0 29 2 *",
    "*/0 * * * *",
    "0 0 1 * +MON",
    "0 0 12 ? * MON#5 2099",
    "0 0 0 L * ? *",
    "59 59 23 31 12 ? 9999",
    "0 0 0 1 1 ? 1970",
    "0 9 * * 8",
    "Asia/Dhaka",
    "America/New_York",
    "Mars/Olympus",
    "utc",
    "high",
    "NORMAL",
    "low",
    "urgent",
    "fire_once",
    "skip",
    "fire_all",
    "or",
    "and",
    "shift",
    "first",
    "both",
    "last",
    "exponential",
    "Fixed",
    "acme",
    "ACME.team-1_x",
    "null",
    "{",
    "\u{0}",
    "\u{7f}",
    "\u{2028}",
    "é",
];

/// Field names of either shape, of the nested objects, and a few strangers.
const KEYS: &[&str] = &[
    "id",
    "app",
    "run_at",
    "delay",
    "cron",
    "every",
    "timezone",
    "dst",
    "dom_dow",
    "calendars",
    "start_at",
    "end_at",
    "max_runs",
    "misfire",
    "jitter",
    "payload",
    "idempotency_key",
    "priority",
    "timeout",
    "retry",
    "labels",
    "tenant",
    "requestId",
    "appName",
    "scheduledTime",
    "jobData",
    "idempotencyKey",
    "max_attempts",
    "backoff",
    "initial",
    "max",
    "gap",
    "overlap",
    "fire_all",
    "cap",
    "dealy",
    "",
];

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(TOKENS).prop_map(str::to_owned),
        1 => any::<String>(),
        1 => "[0-9a-zA-Z:+. TZ@*/#?,-]{0,30}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..100_000_000).prop_map(Value::from),
        proptest::sample::select(&[0u64, 1, 999, 1000, 31_622_400_000, 31_622_400_001][..])
            .prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0.0f64..=1.0).prop_map(Value::from),
    ]
}

/// Any JSON value, with strings and numbers that fields care about.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        token().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// JSON text of an object; `entries` may repeat a key (written as is, not deduplicated).
fn object_text(entries: &[(String, Value)]) -> String {
    let fields: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// A request-like object: known field names with arbitrary values, most often around the
/// skeleton of one shape (an app and a time) so that the checks past it are reached.
fn request_like() -> impl Strategy<Value = String> {
    let loose = proptest::collection::vec((key(), json()), 0..10);
    let field = |names: &'static [&'static str]| {
        (
            proptest::sample::select(names).prop_map(str::to_owned),
            json(),
        )
    };
    let app = prop_oneof![3 => Just(Value::from("sms")), 1 => json()];
    let native = (
        app.clone(),
        proptest::collection::vec(field(&["run_at", "delay", "cron", "every"]), 1..3),
        proptest::collection::vec(field(&KEYS[..22]), 0..6),
    )
        .prop_map(|(app, when, rest)| {
            let mut entries = vec![("app".to_owned(), app)];
            entries.extend(when);
            entries.extend(rest);
            entries
        });
    let infinite = (
        app,
        json(),
        json(),
        proptest::collection::vec(
            field(&[
                "requestId",
                "priority",
                "idempotencyKey",
                "appName",
                "jobData",
            ]),
            0..3,
        ),
    )
        .prop_map(|(app, time, data, rest)| {
            let mut entries = vec![
                ("appName".to_owned(), app),
                ("scheduledTime".to_owned(), time),
                ("jobData".to_owned(), data),
            ];
            entries.extend(rest);
            entries
        });
    prop_oneof![1 => loose, 3 => native, 2 => infinite].prop_map(|entries| object_text(&entries))
}

/// A JobId-valid id.
fn id() -> impl Strategy<Value = String> {
    "[!-.0-~]{1,40}"
}

fn app_name() -> impl Strategy<Value = String> {
    prop_oneof![Just("sms".to_owned()), "[^\u{0}]{1,20}"]
}

/// A time within `-10y ..= +9y` of `now` (inside the default horizon), RFC 3339 in some offset.
fn rfc3339_near(now: DateTime<Utc>) -> impl Strategy<Value = (String, DateTime<Utc>)> {
    (
        -315_360_000_000_000_000i64..283_824_000_000_000_000,
        -86_399i32..86_400,
        proptest::sample::select(
            &[
                SecondsFormat::Secs,
                SecondsFormat::Millis,
                SecondsFormat::Micros,
                SecondsFormat::Nanos,
                SecondsFormat::AutoSi,
            ][..],
        ),
        any::<bool>(),
    )
        .prop_map(move |(ns, offset, format, z)| {
            let at = now + TimeDelta::nanoseconds(ns);
            let at = match format {
                SecondsFormat::Secs => at.with_timezone(&Utc).trunc_subsecs(0),
                SecondsFormat::Millis => at.trunc_subsecs(3),
                SecondsFormat::Micros => at.trunc_subsecs(6),
                _ => at,
            };
            let offset = chrono::FixedOffset::east_opt(offset).expect("within a day");
            // RFC 3339 offsets have whole minutes.
            let offset = chrono::FixedOffset::east_opt(offset.local_minus_utc() / 60 * 60)
                .expect("within a day");
            let text = at.with_timezone(&offset).to_rfc3339_opts(format, z);
            (text, at)
        })
}

/// What a generated native request should come back as.
#[derive(Debug, Clone)]
struct Native {
    text: String,
    now: DateTime<Utc>,
    id: Option<String>,
    app: String,
    when: When,
    payload: Option<String>,
    labels: BTreeMap<String, String>,
    tenant: Option<String>,
    priority: Option<(String, Priority)>,
    idempotency_key: Option<String>,
    timeout_ms: Option<u64>,
    retry: Option<(u32, Backoff, u64, u64)>,
}

#[derive(Debug, Clone)]
enum When {
    RunAt(DateTime<Utc>),
    Delay(u64),
    Cron {
        expr: &'static str,
        tz: Tz,
        calendars: Vec<String>,
    },
    Every {
        ms: u64,
        max_runs: Option<u32>,
        calendars: Vec<String>,
    },
}

const CRONS: &[&str] = &[
    "* * * * *",
    "0 9 * * 1-5",
    "*/15 * * * *",
    "@daily",
    "0 0 1 * *",
];

fn when(now: DateTime<Utc>) -> impl Strategy<Value = (Vec<(String, String)>, When)> {
    let calendars = proptest::collection::vec("[a-z][a-z0-9_-]{0,10}", 0..4);
    prop_oneof![
        rfc3339_near(now).prop_map(|(text, at)| {
            (
                vec![("run_at".into(), Value::from(text).to_string())],
                When::RunAt(at),
            )
        }),
        (0u64..10 * 365 * 86_400_000, any::<bool>()).prop_map(|(ms, as_text)| {
            let raw = if as_text {
                Value::from(humantime::format_duration(Duration::from_millis(ms)).to_string())
                    .to_string()
            } else {
                ms.to_string()
            };
            (vec![("delay".into(), raw)], When::Delay(ms))
        }),
        (proptest::sample::select(CRONS), zone(), calendars.clone()).prop_map(
            |(expr, tz, calendars)| {
                let mut fields = vec![
                    ("cron".to_owned(), Value::from(expr).to_string()),
                    ("timezone".to_owned(), Value::from(tz.name()).to_string()),
                ];
                if !calendars.is_empty() {
                    fields.push(("calendars".into(), serde_json::json!(calendars).to_string()));
                }
                (
                    fields,
                    When::Cron {
                        expr,
                        tz,
                        calendars,
                    },
                )
            }
        ),
        (
            1_000u64..=366 * 86_400_000,
            proptest::option::of(1u32..1000),
            calendars
        )
            .prop_map(|(ms, max_runs, calendars)| {
                let mut fields = vec![("every".to_owned(), ms.to_string())];
                if let Some(n) = max_runs {
                    fields.push(("max_runs".into(), n.to_string()));
                }
                if !calendars.is_empty() {
                    fields.push(("calendars".into(), serde_json::json!(calendars).to_string()));
                }
                (
                    fields,
                    When::Every {
                        ms,
                        max_runs,
                        calendars,
                    },
                )
            }),
    ]
}

fn label_key() -> impl Strategy<Value = String> {
    "[^=,\\s\\p{Cc}]{1,20}"
}

fn label_value() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{0,30}"
}

fn payload() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        json().prop_map(|v| v.to_string()),
        json().prop_map(|v| serde_json::to_string_pretty(&v).expect("serializable")),
        Just(r#"{"n": 12345678901234567890123, "f": 1.50, "s": "\u00e9\ud83d\ude00"}"#.to_owned()),
    ])
    // `null` is no payload (and a `jobData` of `null` is missing): an object instead, without
    // a filter, which would count against proptest's reject limits over millions of cases.
    .prop_map(|p| {
        p.map(|p| {
            if p.trim() == "null" {
                "{}".to_owned()
            } else {
                p
            }
        })
    })
}

fn native() -> impl Strategy<Value = Native> {
    // Cron evaluation stops before 2200 (`MAX_YEAR`): a monthly job made in December 2199
    // rightly has no fire time, so the clock of valid requests stays well before.
    (0i64..5_680_281_600_000)
        .prop_map(|ms| DateTime::from_timestamp_millis(ms).expect("in range"))
        .prop_flat_map(|now| {
        (
            (
                proptest::option::of(id()),
                app_name(),
                when(now),
                payload(),
                proptest::collection::btree_map(label_key(), label_value(), 0..=MAX_LABELS),
                proptest::option::of("[A-Za-z0-9._-]{1,64}"),
            ),
            (
                proptest::option::of(
                    proptest::sample::select(&["high", "NORMAL", "Low", "normal"][..]),
                ),
                proptest::option::of("[^\u{0}]{1,40}"),
                proptest::option::of(1u64..86_400_000),
                proptest::option::of((1u32..20, any::<bool>(), 0u64..10_000, 0u64..10_000)),
                Just((0..12).collect::<Vec<usize>>()).prop_shuffle(),
            ),
        )
            .prop_map(
                move |(
                    (id, app, (when_fields, when), payload, labels, tenant),
                    (priority, key, timeout_ms, retry, order),
                )| {
                    let mut fields: Vec<(String, String)> = Vec::new();
                    let js = |s: &str| Value::from(s).to_string();
                    if let Some(id) = &id {
                        fields.push(("id".into(), js(id)));
                    }
                    fields.push(("app".into(), js(&app)));
                    fields.extend(when_fields);
                    if let Some(p) = &payload {
                        fields.push(("payload".into(), p.clone()));
                    }
                    if !labels.is_empty() {
                        fields.push(("labels".into(), serde_json::json!(labels).to_string()));
                    }
                    if let Some(t) = &tenant {
                        fields.push(("tenant".into(), js(t)));
                    }
                    let priority = priority.map(|p| {
                        fields.push(("priority".into(), js(p)));
                        (p.to_owned(), p.parse::<Priority>().expect("valid priority"))
                    });
                    if let Some(k) = &key {
                        fields.push(("idempotency_key".into(), js(k)));
                    }
                    if let Some(ms) = timeout_ms {
                        fields.push(("timeout".into(), ms.to_string()));
                    }
                    let retry = retry.map(|(n, fixed, a, b)| {
                        let (initial, max) = (a.min(b), a.max(b));
                        let backoff = if fixed {
                            Backoff::Fixed
                        } else {
                            Backoff::Exponential
                        };
                        fields.push((
                            "retry".into(),
                            format!(
                                r#"{{"max_attempts":{n},"backoff":"{backoff}","initial":{initial},"max":{max}}}"#
                            ),
                        ));
                        (n, backoff, initial, max)
                    });
                    assert!(fields.len() <= 12, "the order covers 12 fields");
                    // Field order does not matter: a shuffled order.
                    let mut order = order;
                    order.retain(|i| *i < fields.len());
                    let text = format!(
                        "{{{}}}",
                        order
                            .iter()
                            .map(|&i| format!("{}: {}", js(&fields[i].0), fields[i].1))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    Native {
                        text,
                        now,
                        id,
                        app,
                        when,
                        payload,
                        labels,
                        tenant,
                        priority,
                        idempotency_key: key,
                        timeout_ms,
                        retry,
                    }
                },
            )
    })
}

/// What a generated Infinite-Scheduler request should come back as.
#[derive(Debug, Clone)]
struct Infinite {
    text: String,
    now: DateTime<Utc>,
    request_id: Option<String>,
    app: String,
    at: DateTime<Utc>,
    job_data: String,
    idempotency_key: Option<String>,
    tenant: Option<String>,
    zone: Tz,
}

fn infinite() -> impl Strategy<Value = Infinite> {
    (now(), zone()).prop_flat_map(|(now, zone)| {
        (
            proptest::option::of(id()),
            app_name(),
            prop_oneof![
                rfc3339_near(now),
                // A zone-less local time in the default zone, whole seconds.
                (-315_360_000i64..283_824_000).prop_map(move |s| {
                    let local = (now + TimeDelta::seconds(s)).trunc_subsecs(0).naive_utc();
                    let text = local.format("%Y-%m-%dT%H:%M:%S").to_string();
                    let at = sked_core::schedule::resolve_local(local, zone);
                    (text, at)
                }),
            ],
            payload().prop_map(|p| p.unwrap_or_else(|| "{}".to_owned())),
            proptest::option::of("[^\u{0}]{1,40}"),
            proptest::option::of("[A-Za-z0-9._-]{1,64}"),
            any::<bool>(),
        )
            .prop_map(
                move |(request_id, app, (time, at), job_data, key, tenant, nulls)| {
                    let js = |s: &str| Value::from(s).to_string();
                    let mut fields = vec![
                        format!(r#""appName": {}"#, js(&app)),
                        format!(r#""scheduledTime": {}"#, js(&time)),
                        format!(r#""jobData": {job_data}"#),
                        // Unknown fields are ignored in this shape.
                        r#""callbackUrl": "http://x", "extra": [1, {"a": null}]"#.to_owned(),
                    ];
                    if let Some(r) = &request_id {
                        fields.push(format!(r#""requestId": {}"#, js(r)));
                    }
                    if let Some(k) = &key {
                        fields.push(format!(r#""idempotencyKey": {}"#, js(k)));
                    }
                    if nulls {
                        fields.push(r#""priority": null"#.to_owned());
                        if request_id.is_none() {
                            fields.push(r#""requestId": null"#.to_owned());
                        }
                    }
                    Infinite {
                        text: format!("{{{}}}", fields.join(", ")),
                        now,
                        request_id,
                        app,
                        at,
                        job_data,
                        idempotency_key: key,
                        tenant,
                        zone,
                    }
                },
            )
    })
}

/// Byte-level damage to a valid request: flips, inserts, deletions, a cut.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            native().prop_map(|n| n.text),
            infinite().prop_map(|i| i.text)
        ],
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop_oneof![3 => 0x20u8..0x7f, 1 => any::<u8>()],
                0u8..4,
            ),
            1..6,
        ),
    )
        .prop_map(|(text, edits)| {
            let mut bytes = text.into_bytes();
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    2 => {
                        bytes.remove(i);
                    }
                    _ => bytes.truncate(i),
                }
            }
            bytes
        })
}

// --- properties ---------------------------------------------------------------------------

#[test]
fn arbitrary_bytes_are_rejected_with_a_documented_reason() {
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        any::<String>().prop_map(String::into_bytes),
    ];
    check(
        "request/arbitrary_bytes",
        1000,
        (bytes, limits(), origin()),
        |(bytes, limits, origin)| parse_checked(&bytes, &limits, &origin),
    );
}

#[test]
fn damaged_valid_requests_are_rejected_with_a_documented_reason() {
    check(
        "request/damaged_requests",
        500,
        (mutated(), limits(), origin()),
        |(bytes, limits, origin)| parse_checked(&bytes, &limits, &origin),
    );
}

#[test]
fn objects_with_arbitrary_field_values_are_parsed_or_rejected_with_a_documented_reason() {
    check(
        "request/arbitrary_fields",
        1000,
        (request_like(), limits(), origin()),
        |(text, limits, origin)| parse_checked(text.as_bytes(), &limits, &origin),
    );
}

#[test]
fn valid_native_requests_round_trip_their_fields() {
    check("request/valid_native", 500, native(), |n| {
        let origin = Origin::new(n.now);
        let limits = Limits::default();
        let spec = parse(n.text.as_bytes(), &limits, &origin)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", n.text)))?;
        check_spec(&limits, &origin, &spec)?;
        prop_assert_eq!(spec.format, Format::Native);
        prop_assert_eq!(&spec.app, &n.app);
        match (&n.id, &n.idempotency_key) {
            (Some(id), _) => prop_assert_eq!(spec.id.as_str(), id),
            (None, Some(key)) if sked_core::job::JobId::parse(key).is_ok() => {
                prop_assert_eq!(spec.id.as_str(), key)
            }
            _ => {}
        }
        prop_assert_eq!(
            spec.payload.get(),
            n.payload.as_deref().unwrap_or("null"),
            "payload kept byte for byte"
        );
        prop_assert_eq!(&spec.labels, &n.labels);
        prop_assert_eq!(&spec.tenant, &n.tenant);
        prop_assert_eq!(spec.priority, n.priority.map(|p| p.1).unwrap_or_default());
        prop_assert_eq!(&spec.idempotency_key, &n.idempotency_key);
        prop_assert_eq!(spec.timeout_ms, n.timeout_ms);
        match (&spec.retry, &n.retry) {
            (None, None) => {}
            (Some(got), Some((attempts, backoff, initial, max))) => {
                prop_assert_eq!(got.max_attempts.get(), *attempts);
                prop_assert_eq!(got.backoff, *backoff);
                prop_assert_eq!((got.initial_ms, got.max_ms), (*initial, *max));
                prop_assert_eq!(got.jitter, 0.2, "default jitter");
            }
            (got, want) => prop_assert!(false, "retry {got:?}, wanted {want:?}"),
        }
        match (&n.when, &spec.schedule) {
            (When::RunAt(at), Schedule::Once { at: got }) => {
                prop_assert_eq!(got, at);
                prop_assert_eq!(spec.first_due, *at);
            }
            (When::Delay(ms), Schedule::Once { at }) => {
                let want = n.now + TimeDelta::milliseconds(i64::try_from(*ms).expect("small"));
                prop_assert_eq!(*at, want);
            }
            (
                When::Cron {
                    expr,
                    tz,
                    calendars,
                },
                Schedule::Cron {
                    expr: got, tz: t, ..
                },
            ) => {
                let want = sked_core::schedule::CronExpr::parse(expr).expect("valid cron");
                prop_assert_eq!(got, &want);
                prop_assert_eq!(t, tz);
                prop_assert!(spec.first_due > n.now);
                prop_assert_eq!(&spec.calendars, &dedup(calendars));
            }
            (
                When::Every {
                    ms,
                    max_runs,
                    calendars,
                },
                Schedule::Every {
                    interval_ms,
                    max_runs: got_runs,
                    ..
                },
            ) => {
                prop_assert_eq!(interval_ms, ms);
                prop_assert_eq!(got_runs.map(|n| n.get()), *max_runs);
                let step = TimeDelta::milliseconds(i64::try_from(*ms).expect("small"));
                prop_assert_eq!(spec.first_due, n.now + step);
                prop_assert_eq!(&spec.calendars, &dedup(calendars));
            }
            (want, got) => prop_assert!(false, "schedule {got:?}, wanted {want:?}"),
        }
        Ok("ok_native".into())
    });
}

#[test]
fn valid_infinite_scheduler_requests_round_trip_their_fields() {
    check("request/valid_infinite_scheduler", 500, infinite(), |r| {
        let origin = Origin {
            tenant: r.tenant.clone(),
            ..Origin::new(r.now)
        };
        let limits = Limits {
            default_timezone: r.zone,
            ..Limits::default()
        };
        let spec = parse(r.text.as_bytes(), &limits, &origin)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", r.text)))?;
        check_spec(&limits, &origin, &spec)?;
        prop_assert_eq!(spec.format, Format::InfiniteScheduler);
        prop_assert_eq!(&spec.app, &r.app);
        if let Some(id) = &r.request_id {
            prop_assert_eq!(spec.id.as_str(), id);
        }
        prop_assert_eq!(spec.payload.get(), r.job_data.as_str());
        prop_assert_eq!(spec.first_due, r.at);
        prop_assert_eq!(&spec.schedule, &Schedule::Once { at: r.at });
        prop_assert_eq!(&spec.idempotency_key, &r.idempotency_key);
        prop_assert_eq!(&spec.tenant, &r.tenant, "the tenant is the origin's");
        prop_assert_eq!(spec.priority, Priority::Normal);
        prop_assert!(spec.labels.is_empty() && spec.retry.is_none());
        Ok("ok_infinite_scheduler".into())
    });
}

fn dedup(names: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}

/// `PROPTEST_CASES` overrides the default count (scripts/fuzz.sh depends on it); read, not
/// set, here: tests never mutate the process environment.
#[test]
fn case_count_defaults_apply_without_proptest_cases() {
    let want = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    assert_eq!(runner::config(file!(), 7).cases, want);
}
