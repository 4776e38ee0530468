//! Schedule requests: the JSON value on `sked.ingest` (or a REST body) turned into a [`JobSpec`].
//!
//! Two shapes are accepted, told apart by their fields: if any of `appName`, `scheduledTime`,
//! `jobData` or `requestId` is present the request is read in the Infinite-Scheduler shape,
//! otherwise in the native shape. Every rejection carries a machine-readable [`Reason`] and a
//! message naming the field; nothing here is worth retrying.
//!
//! In both shapes a field whose value is JSON `null` counts as absent (Java producers write
//! unset fields as `null`).
//!
//! Native shape (unknown fields are rejected):
//!
//! | field | value |
//! |---|---|
//! | `id` | job id ([`JobId`] rules) |
//! | `app` | required, non-empty; must be registered when [`Limits::apps`] is set |
//! | `run_at` | RFC 3339 with offset, or a local date-time in `timezone` (see [`parse_time`]) |
//! | `delay` | `"15m"` or milliseconds, from [`Origin::now`] |
//! | `cron` | [`CronExpr`] on the wall clock of `timezone` |
//! | `every` | [`Interval`]: `"30s"` or milliseconds |
//! | `timezone` | IANA zone of `cron` and of local `run_at` / `start_at` / `end_at`; default [`Limits::default_timezone`] |
//! | `dst` | [`DstPolicy`] `{"gap": "shift" \| "skip", "overlap": "first" \| "both" \| "last"}`; `cron` and local `run_at` only |
//! | `dom_dow` | [`DomDow`] `"or"` / `"and"`; `cron` only; default the Vixie rule |
//! | `calendars` | names of exclusion calendars ([`schedule::Calendar`]), at most 16; `cron` / `every` only; a slot on an excluded day does not fire. The names must exist: the services check that after parsing ([`Reason::UnknownCalendar`]) |
//! | `start_at`, `end_at` | times like `run_at`; `cron` / `every` only; `end_at` inclusive |
//! | `max_runs` | positive integer; `cron` / `every` only |
//! | `misfire` | see [`Misfire`]; `cron` / `every` only |
//! | `jitter` | `"30s"` or milliseconds; `cron` / `every` only |
//! | `payload` | any JSON, kept as written; default `null` |
//! | `idempotency_key` | non-empty string, at most 1024 bytes |
//! | `priority` | `high` / `normal` / `low` (any case) |
//! | `timeout` | `"30s"` or milliseconds, positive |
//! | `retry` | `{"max_attempts", "backoff", "initial", "max", "jitter"}`, see [`RetryPolicy`] |
//! | `labels` | object of string values |
//! | `tenant` | the team or customer the job belongs to: 1 to 64 of `A-Z a-z 0-9 . _ -`; default [`Origin::tenant`] |
//!
//! Exactly one of `run_at`, `delay`, `cron`, `every` is required.
//!
//! Infinite-Scheduler shape (unknown fields are ignored): `requestId`, `appName` (required),
//! `scheduledTime` (required; local times in [`Limits::default_timezone`]), `jobData`
//! (required), `priority`, `idempotencyKey`. The tenant is [`Origin::tenant`] (configured per
//! ingest topic).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::job::{JobId, Priority};
use crate::reason::Reason;
use crate::schedule::{self, CronExpr, DomDow, DstPolicy, Interval, Misfire, Schedule};

/// Limits and defaults applied to every request (from configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest accepted request, in bytes (default 1 MiB).
    pub max_bytes: usize,
    /// How far after [`Origin::now`] the first fire may be (default 3650 days).
    pub max_horizon: Duration,
    /// Zone of zone-less local times and of cron expressions without `timezone` (default UTC).
    pub default_timezone: Tz,
    /// Registered apps; `Some` rejects any other app with [`Reason::UnknownApp`].
    pub apps: Option<BTreeSet<String>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_horizon: Duration::from_secs(3650 * 86_400),
            default_timezone: Tz::UTC,
            apps: None,
        }
    }
}

/// Where a request came from: what makes parsing it deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The reference instant for `delay`, `every` and `cron` (and the horizon), e.g. the Kafka
    /// record's timestamp, so a redelivered record resolves to the same times.
    pub now: DateTime<Utc>,
    /// The id of a request without `id` / `requestId` / usable idempotency key, e.g.
    /// [`JobId::derived`] from topic, partition and offset. `None` gives a new UUID v7.
    pub fallback_id: Option<JobId>,
    /// The tenant of a request that names none: from the ingest topic it came on (the
    /// Infinite-Scheduler shape has no tenant field).
    pub tenant: Option<String>,
}

impl Origin {
    /// An origin at `now` without fallback id or tenant.
    pub fn new(now: DateTime<Utc>) -> Origin {
        Origin {
            now,
            fallback_id: None,
            tenant: None,
        }
    }
}

/// Longest tenant name, in bytes.
pub const MAX_TENANT_LEN: usize = 64;

/// Checks a tenant name: 1 to [`MAX_TENANT_LEN`] of `A-Z a-z 0-9 . _ -`, so it can stand in
/// Redis key names, label selectors and URLs unescaped.
pub fn check_tenant(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_TENANT_LEN {
        return Err(format!(
            "is {} bytes long, over the limit of {MAX_TENANT_LEN}",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "contains {c:?}; a tenant is made of A-Z a-z 0-9 . _ -"
        )),
        None => Ok(()),
    }
}

/// A rejected request: why (machine-readable) and what exactly is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Error {
    /// The machine-readable reason (`sked-reason` header, HTTP error `code`).
    pub reason: Reason,
    /// Lowercase explanation naming the field, e.g. ``field `run_at`: …``.
    pub message: String,
}

impl Error {
    /// An error with `reason` and `message`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Error {
        Error {
            reason,
            message: message.into(),
        }
    }
}

/// Which request shape a job came in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::AsRefStr,
    Default,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Format {
    /// sked's own shape.
    #[default]
    Native,
    /// The Infinite-Scheduler `ScheduleJobRequest` shape.
    InfiniteScheduler,
}

/// How the delay between attempts grows.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::AsRefStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
pub enum Backoff {
    /// `initial * 2^(attempt - 1)`, capped at `max` (the default).
    #[default]
    Exponential,
    /// Always `initial`.
    Fixed,
}

/// A job's own retry policy, overriding its app's.
///
/// Request form: `{"max_attempts": 5, "backoff": "exponential", "initial": "1s", "max": "5m",
/// "jitter": 0.2}`; every field is optional and defaults to [`RetryPolicy::default`]
/// (3 attempts, exponential, 1s, 5m, 0.2). Durations are humane strings or milliseconds.
/// The serde form (stored with the job) uses the field names below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Most attempts in total, the first one included.
    pub max_attempts: NonZeroU32,
    /// How the delay grows.
    pub backoff: Backoff,
    /// Delay before the second attempt, in milliseconds.
    pub initial_ms: u64,
    /// Largest delay, in milliseconds; at least `initial_ms`.
    pub max_ms: u64,
    /// Random spread of each delay, as a fraction in `0..=1`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: NonZeroU32::MIN.saturating_add(2),
            backoff: Backoff::Exponential,
            initial_ms: 1_000,
            max_ms: 300_000,
            jitter: 0.2,
        }
    }
}

/// A validated schedule request: everything needed to store the job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job's id (see [`parse`] for where it comes from).
    pub id: JobId,
    /// The app whose handler runs the job.
    pub app: String,
    /// The client's idempotency key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The payload exactly as sent (`null` when absent): numbers keep their digits, strings
    /// their escapes.
    pub payload: Box<RawValue>,
    /// When the job fires.
    pub schedule: Schedule,
    /// The first fire time (nominal, before jitter). May be in the past: it then fires at once.
    pub first_due: DateTime<Utc>,
    /// Priority among jobs due at the same time.
    #[serde(default, skip_serializing_if = "is_default")]
    pub priority: Priority,
    /// Handler timeout in milliseconds; `None` uses the app's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retry policy; `None` uses the app's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The tenant (team, customer) the job belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Exclusion calendars of a recurring job, by name: a slot on a day one of them excludes
    /// does not fire (counted as `excluded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calendars: Vec<String>,
    /// The shape the request came in.
    #[serde(default, skip_serializing_if = "is_default")]
    pub format: Format,
    /// Set on the one-shot jobs the replayer stores for retries: the fire they retry. The
    /// scheduler fires them under the original job id, fire id and this attempt number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<RetryOf>,
    /// W3C trace context of the span that stored the job (ingest, or the worker attempt a
    /// retry job comes from): the scheduler's fire span is its child. Not part of equality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The fire a retry job re-runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOf {
    /// The original job.
    pub job_id: JobId,
    /// The original fire id.
    pub fire_id: String,
    /// The attempt this retry asks for (2 = first retry).
    pub attempt: u32,
}

/// Stored records leave out fields at their defaults (they are read back as the default).
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl PartialEq for JobSpec {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.app == other.app
            && self.idempotency_key == other.idempotency_key
            && self.payload.get() == other.payload.get()
            && self.schedule == other.schedule
            && self.first_due == other.first_due
            && self.priority == other.priority
            && self.timeout_ms == other.timeout_ms
            && self.retry == other.retry
            && self.labels == other.labels
            && self.tenant == other.tenant
            && self.calendars == other.calendars
            && self.format == other.format
            && self.retry_of == other.retry_of
    }
}

/// Longest accepted idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 1024;

const NATIVE_FIELDS: &[&str] = &[
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
];
const WHEN_FIELDS: &[&str] = &["run_at", "delay", "cron", "every"];
const RECURRING_FIELDS: &[&str] = &[
    "start_at",
    "end_at",
    "max_runs",
    "misfire",
    "jitter",
    "calendars",
];
const INFINITE_SCHEDULER_MARKERS: &[&str] = &["appName", "scheduledTime", "jobData", "requestId"];
const RETRY_FIELDS: &[&str] = &["max_attempts", "backoff", "initial", "max", "jitter"];

/// Parses and validates a schedule request.
///
/// Checks, in order: size ([`Reason::PayloadTooLarge`], before anything is parsed), UTF-8,
/// JSON object, then the fields of the detected shape, the app registry and the horizon.
///
/// The job id is `id` / `requestId` if present, else the idempotency key if it is a valid
/// [`JobId`], else [`Origin::fallback_id`], else a new UUID v7. A `run_at` in the past is
/// accepted (the job fires at once).
pub fn parse(bytes: &[u8], limits: &Limits, origin: &Origin) -> Result<JobSpec, Error> {
    if bytes.len() > limits.max_bytes {
        return Err(Error::new(
            Reason::PayloadTooLarge,
            format!(
                "request is {} bytes, over the limit of {} bytes",
                bytes.len(),
                limits.max_bytes
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|err| {
        Error::new(
            Reason::InvalidUtf8,
            format!("request is not valid utf-8: {err}"),
        )
    })?;
    let fields = read_object(text)?;
    if INFINITE_SCHEDULER_MARKERS
        .iter()
        .any(|name| fields.0.contains_key(*name))
    {
        infinite_scheduler(&fields, limits, origin)
    } else {
        native(&fields, limits, origin)
    }
}

/// Parses a time: RFC 3339 with an offset (`2025-11-03T22:00:00Z`, `2025-11-03T22:00:00+06:00`)
/// or a zone-less local date-time in `tz`, resolved with [`schedule::resolve_local`] (DST gap:
/// first instant after it; overlap: first occurrence).
///
/// Local forms: `2025-11-03T22:00:00`, `2025-11-03 22:00:00`, `2025-11-03T22:00`,
/// `2025-11-03 22:00`, and seconds with 1 to 9 fractional digits (`2025-10-28T04:05:03.901939568`).
///
/// A leap second (`23:59:60.5Z`, which RFC 3339 allows) is read as the same instant of the next
/// second (`00:00:00.5Z`): the job record holds epoch milliseconds, which cannot tell them apart.
pub fn parse_time(s: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Some(local) = parse_local(s) {
        return Ok(schedule::resolve_local(local, tz));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| fold_leap_second(t.with_timezone(&Utc)))
        .map_err(|_| {
            format!(
                "`{s}` is not an RFC 3339 time (2025-11-03T22:00:00Z, 2025-11-03T22:00:00+06:00) \
                 or a local date-time (2025-11-03T22:00:00, 2025-11-03 22:00:00, 2025-11-03T22:00)"
            )
        })
}

/// chrono keeps a leap second as nanoseconds past 1e9 of the second before.
fn fold_leap_second(t: DateTime<Utc>) -> DateTime<Utc> {
    match t.timestamp_subsec_nanos().checked_sub(1_000_000_000) {
        Some(nanos) => DateTime::from_timestamp(t.timestamp() + 1, nanos).unwrap_or(t),
        None => t,
    }
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.f{1,9}]]`, nothing else.
fn parse_local(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() < 16
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
    {
        return None;
    }
    let digits = |part: &str| -> Option<u32> {
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let num = |from: usize, to: usize| s.get(from..to).and_then(digits);
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 7)?, num(8, 10)?)?;
    let (hour, minute) = (num(11, 13)?, num(14, 16)?);
    let rest = s.get(16..)?;
    let (second, nano) = if rest.is_empty() {
        (0, 0)
    } else {
        let rest = rest.strip_prefix(':')?;
        let second = digits(rest.get(..2)?)?;
        let nano = match rest.get(2..)? {
            "" => 0,
            fraction => {
                let fraction = fraction.strip_prefix('.')?;
                if fraction.is_empty() || fraction.len() > 9 {
                    return None;
                }
                let scale = 10u32.pow(9 - u32::try_from(fraction.len()).ok()?);
                digits(fraction)? * scale
            }
        };
        (second, nano)
    };
    NaiveTime::from_hms_nano_opt(hour, minute, second, nano).map(|time| date.and_time(time))
}

/// The top-level fields of a request, in a map that rejects duplicates.
struct Fields<'a>(BTreeMap<String, &'a RawValue>);

impl<'a> Fields<'a> {
    /// The value of `name`, `None` if absent or `null`.
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.get(name).copied().filter(|raw| raw.get() != "null")
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    if fields.contains_key(&key) {
                        return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                    fields.insert(key, value);
                }
                Ok(Fields(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

fn read_object(text: &str) -> Result<Fields<'_>, Error> {
    let invalid = |err: serde_json::Error| {
        Error::new(
            Reason::InvalidJson,
            format!("request is not valid JSON: {err}"),
        )
    };
    let raw: &RawValue = serde_json::from_str(text).map_err(invalid)?;
    if !raw.get().trim_start().starts_with('{') {
        return Err(Error::new(
            Reason::InvalidJson,
            format!("request must be a JSON object, found {}", describe(raw)),
        ));
    }
    serde_json::from_str(raw.get()).map_err(invalid)
}

/// What a JSON value is, for messages: `a string`, `an array`, `` `-5` ``.
fn describe(raw: &RawValue) -> String {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'{') => "an object".to_owned(),
        Some(b'[') => "an array".to_owned(),
        Some(b'"') if text.len() <= 40 => format!("the string {text}"),
        Some(b'"') => "a string".to_owned(),
        Some(b'n') => "null".to_owned(),
        _ if text.len() <= 40 => format!("`{text}`"),
        _ => "a number".to_owned(),
    }
}

/// A serde_json error message without its ` at line 1 column 5` suffix.
fn serde_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

fn field_error(reason: Reason, name: &str, message: impl fmt::Display) -> Error {
    Error::new(reason, format!("field `{name}`: {message}"))
}

fn missing(name: &str) -> Error {
    Error::new(Reason::MissingField, format!("field `{name}` is required"))
}

fn string(name: &str, raw: &RawValue, reason: Reason) -> Result<String, Error> {
    serde_json::from_str(raw.get()).map_err(|_| {
        field_error(
            reason,
            name,
            format_args!("expected a string, found {}", describe(raw)),
        )
    })
}

fn job_id(name: &str, raw: &RawValue) -> Result<JobId, Error> {
    let id = string(name, raw, Reason::InvalidId)?;
    JobId::parse(&id).map_err(|err| field_error(Reason::InvalidId, name, err))
}

fn app(fields: &Fields<'_>, name: &str, limits: &Limits) -> Result<String, Error> {
    let raw = fields.get(name).ok_or_else(|| missing(name))?;
    let app = string(name, raw, Reason::InvalidField)?;
    if app.is_empty() {
        return Err(field_error(Reason::InvalidField, name, "must not be empty"));
    }
    if let Some(apps) = &limits.apps
        && !apps.contains(&app)
    {
        return Err(field_error(
            Reason::UnknownApp,
            name,
            format_args!("app `{app}` is not registered"),
        ));
    }
    Ok(app)
}

fn time(name: &str, raw: &RawValue, tz: Tz) -> Result<DateTime<Utc>, Error> {
    let text = string(name, raw, Reason::InvalidTime)?;
    parse_time(&text, tz).map_err(|err| field_error(Reason::InvalidTime, name, err))
}

/// A humane duration string or a whole number of milliseconds.
fn duration(name: &str, raw: &RawValue, reason: Reason) -> Result<Duration, Error> {
    if raw.get().starts_with('"') {
        let text = string(name, raw, reason)?;
        return schedule::parse_duration(&text).map_err(|err| field_error(reason, name, err));
    }
    serde_json::from_str::<u64>(raw.get())
        .map(Duration::from_millis)
        .map_err(|_| {
            field_error(
                reason,
                name,
                format_args!(
                    "expected a duration such as \"30s\" or a whole number of milliseconds, \
                     found {}",
                    describe(raw)
                ),
            )
        })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A `run_at`: RFC 3339, or a zone-less local time in `tz` resolved under `dst`.
fn local_run_at(raw: &RawValue, tz: Tz, dst: DstPolicy) -> Result<DateTime<Utc>, Error> {
    let text = string("run_at", raw, Reason::InvalidTime)?;
    match parse_local(&text) {
        Some(local) => schedule::resolve_local_with(local, tz, dst)
            .map_err(|err| field_error(Reason::InvalidTime, "run_at", err)),
        None => {
            parse_time(&text, tz).map_err(|err| field_error(Reason::InvalidTime, "run_at", err))
        }
    }
}

fn dst_policy(raw: &RawValue) -> Result<DstPolicy, Error> {
    serde_json::from_str::<DstPolicy>(raw.get()).map_err(|err| {
        field_error(
            Reason::InvalidField,
            "dst",
            format_args!(
                "expected {{\"gap\": \"shift\" | \"skip\", \"overlap\": \"first\" | \"both\" | \
                 \"last\"}}: {}",
                serde_message(&err)
            ),
        )
    })
}

fn dom_dow(raw: &RawValue) -> Result<DomDow, Error> {
    serde_json::from_str::<DomDow>(raw.get()).map_err(|_| {
        field_error(
            Reason::InvalidField,
            "dom_dow",
            format_args!("expected \"or\" or \"and\", found {}", describe(raw)),
        )
    })
}

fn calendar_names(raw: &RawValue) -> Result<Vec<String>, Error> {
    let names = serde_json::from_str::<Vec<String>>(raw.get()).map_err(|_| {
        field_error(
            Reason::InvalidField,
            "calendars",
            format_args!(
                "expected an array of calendar names, found {}",
                describe(raw)
            ),
        )
    })?;
    if names.len() > schedule::MAX_ATTACHED {
        return Err(field_error(
            Reason::InvalidField,
            "calendars",
            format_args!("at most {} calendars", schedule::MAX_ATTACHED),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        schedule::check_calendar_name(&name)
            .map_err(|err| field_error(Reason::InvalidField, "calendars", err))?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Checks that every calendar `spec` attaches is one of `known`: [`Reason::UnknownCalendar`]
/// naming the first that is not.
pub fn check_calendars(spec: &JobSpec, known: &schedule::Calendars) -> Result<(), Error> {
    match spec.calendars.iter().find(|name| !known.contains(name)) {
        Some(name) => Err(field_error(
            Reason::UnknownCalendar,
            "calendars",
            format_args!(
                "no calendar named `{name}`: define it in `[calendars.{name}]` or with PUT                  /v1/calendars/{name} first"
            ),
        )),
        None => Ok(()),
    }
}

fn timezone(raw: &RawValue) -> Result<Tz, Error> {
    let name = string("timezone", raw, Reason::InvalidTimezone)?;
    name.parse().map_err(|_| {
        field_error(
            Reason::InvalidTimezone,
            "timezone",
            format_args!("`{name}` is not an IANA time zone name such as \"Asia/Dhaka\""),
        )
    })
}

fn priority(name: &str, raw: &RawValue) -> Result<Priority, Error> {
    let text = string(name, raw, Reason::InvalidField)?;
    text.parse().map_err(|_| {
        field_error(
            Reason::InvalidField,
            name,
            format_args!("unknown priority `{text}`, expected one of high, normal, low"),
        )
    })
}

fn idempotency_key(name: &str, raw: &RawValue) -> Result<String, Error> {
    let key = string(name, raw, Reason::InvalidField)?;
    if key.is_empty() {
        return Err(field_error(Reason::InvalidField, name, "must not be empty"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(field_error(
            Reason::InvalidField,
            name,
            format_args!(
                "is {} bytes long, over the limit of {MAX_IDEMPOTENCY_KEY_LEN} bytes",
                key.len()
            ),
        ));
    }
    Ok(key)
}

fn null_payload() -> Result<Box<RawValue>, Error> {
    RawValue::from_string("null".to_owned()).map_err(|err| {
        Error::new(
            Reason::Internal,
            format!("cannot build a null payload: {err}"),
        )
    })
}

/// The id: explicit, else a valid idempotency key, else the fallback, else a new UUID v7.
fn choose_id(explicit: Option<JobId>, key: Option<&str>, origin: &Origin) -> JobId {
    explicit
        .or_else(|| key.and_then(|key| JobId::parse(key).ok()))
        .or_else(|| origin.fallback_id.clone())
        .unwrap_or_else(JobId::new_v7)
}

/// Rejects a first fire time beyond the horizon.
fn check_horizon(
    name: &str,
    first_due: DateTime<Utc>,
    limits: &Limits,
    origin: &Origin,
) -> Result<(), Error> {
    let limit = TimeDelta::from_std(limits.max_horizon)
        .ok()
        .and_then(|horizon| origin.now.checked_add_signed(horizon));
    match limit {
        Some(limit) if first_due > limit => Err(too_far(name, limits)),
        _ => Ok(()),
    }
}

fn too_far(name: &str, limits: &Limits) -> Error {
    field_error(
        Reason::TooFarInFuture,
        name,
        format_args!(
            "the first fire time is more than {} from now",
            humantime::format_duration(limits.max_horizon)
        ),
    )
}

fn native(fields: &Fields<'_>, limits: &Limits, origin: &Origin) -> Result<JobSpec, Error> {
    let unknown: Vec<&str> = fields
        .0
        .keys()
        .map(String::as_str)
        .filter(|name| !NATIVE_FIELDS.contains(name))
        .collect();
    if let Some(first) = unknown.first() {
        return Err(Error::new(
            Reason::UnknownField,
            format!(
                "unknown field `{first}`{}, expected one of {}",
                if unknown.len() > 1 {
                    format!(" (and {} more)", unknown.len() - 1)
                } else {
                    String::new()
                },
                NATIVE_FIELDS.join(", ")
            ),
        ));
    }

    let id = fields.get("id").map(|raw| job_id("id", raw)).transpose()?;
    let app = app(fields, "app", limits)?;
    let tz = fields
        .get("timezone")
        .map(timezone)
        .transpose()?
        .unwrap_or(limits.default_timezone);

    let when: Vec<&str> = WHEN_FIELDS
        .iter()
        .copied()
        .filter(|name| fields.get(name).is_some())
        .collect();
    let (when_name, when_raw) = match when[..] {
        [name] => match fields.get(name) {
            Some(raw) => (name, raw),
            None => return Err(missing(name)),
        },
        [] => {
            return Err(Error::new(
                Reason::MissingField,
                "one of `run_at`, `delay`, `cron` or `every` is required",
            ));
        }
        [a, b, ..] => {
            return Err(Error::new(
                Reason::InvalidField,
                format!(
                    "fields `{a}` and `{b}` cannot be combined: give exactly one of `run_at`, \
                     `delay`, `cron` or `every`"
                ),
            ));
        }
    };

    let dst = fields.get("dst").map(dst_policy).transpose()?;
    if let Some(name) = ["dst", "dom_dow"]
        .into_iter()
        .find(|name| fields.get(name).is_some())
    {
        let applies = match (name, when_name) {
            ("dst", "run_at" | "cron") | ("dom_dow", "cron") => None,
            ("dst", _) => Some("applies only to `cron` and zone-less `run_at` times"),
            _ => Some("applies only to `cron` schedules"),
        };
        if let Some(message) = applies {
            return Err(field_error(Reason::InvalidField, name, message));
        }
    }

    let schedule = match when_name {
        "run_at" | "delay" => {
            if let Some(name) = RECURRING_FIELDS
                .iter()
                .find(|name| fields.get(name).is_some())
            {
                return Err(field_error(
                    Reason::InvalidField,
                    name,
                    "applies only to `cron` and `every` schedules",
                ));
            }
            let at = if when_name == "run_at" {
                local_run_at(when_raw, tz, dst.unwrap_or_default())?
            } else {
                let delay = duration("delay", when_raw, Reason::InvalidTime)?;
                TimeDelta::from_std(delay)
                    .ok()
                    .and_then(|delay| origin.now.checked_add_signed(delay))
                    .ok_or_else(|| too_far("delay", limits))?
            };
            Schedule::Once { at }
        }
        _ => recurring(fields, when_name, when_raw, tz, dst.unwrap_or_default())?,
    };

    let first_due = schedule
        .first_fire(origin.now)
        .ok_or_else(|| no_fire(&schedule, when_name))?;
    check_horizon(when_name, first_due, limits, origin)?;

    let payload = match fields.get("payload") {
        Some(raw) => raw.to_owned(),
        None => null_payload()?,
    };
    let idempotency_key = fields
        .get("idempotency_key")
        .map(|raw| idempotency_key("idempotency_key", raw))
        .transpose()?;
    let priority = fields
        .get("priority")
        .map(|raw| priority("priority", raw))
        .transpose()?
        .unwrap_or_default();
    let timeout_ms = fields.get("timeout").map(timeout).transpose()?;
    let retry = fields.get("retry").map(retry).transpose()?;
    let labels = fields
        .get("labels")
        .map(labels)
        .transpose()?
        .unwrap_or_default();
    let tenant = match fields.get("tenant") {
        Some(raw) => Some(tenant(raw)?),
        None => origin.tenant.clone(),
    };
    let calendars = fields
        .get("calendars")
        .map(calendar_names)
        .transpose()?
        .unwrap_or_default();

    Ok(JobSpec {
        id: choose_id(id, idempotency_key.as_deref(), origin),
        app,
        idempotency_key,
        payload,
        schedule,
        first_due,
        priority,
        timeout_ms,
        retry,
        labels,
        tenant,
        calendars,
        format: Format::Native,
        retry_of: None,
        traceparent: None,
    })
}

/// A `cron` or `every` schedule with its options.
fn recurring(
    fields: &Fields<'_>,
    when_name: &str,
    when_raw: &RawValue,
    tz: Tz,
    dst: DstPolicy,
) -> Result<Schedule, Error> {
    let start_at = fields
        .get("start_at")
        .map(|raw| time("start_at", raw, tz))
        .transpose()?;
    let end_at = fields
        .get("end_at")
        .map(|raw| time("end_at", raw, tz))
        .transpose()?;
    if let (Some(start), Some(end)) = (start_at, end_at)
        && end < start
    {
        return Err(field_error(
            Reason::InvalidTime,
            "end_at",
            format_args!(
                "{} is before `start_at` {}",
                end.to_rfc3339(),
                start.to_rfc3339()
            ),
        ));
    }
    let max_runs = fields
        .get("max_runs")
        .map(|raw| {
            serde_json::from_str::<NonZeroU32>(raw.get()).map_err(|_| {
                field_error(
                    Reason::InvalidField,
                    "max_runs",
                    format_args!("expected a positive whole number, found {}", describe(raw)),
                )
            })
        })
        .transpose()?;
    let misfire = fields
        .get("misfire")
        .map(|raw| {
            serde_json::from_str::<Misfire>(raw.get())
                .map_err(|err| field_error(Reason::InvalidField, "misfire", serde_message(&err)))
        })
        .transpose()?
        .unwrap_or_default();
    let jitter_ms = fields
        .get("jitter")
        .map(|raw| duration("jitter", raw, Reason::InvalidField).map(millis))
        .transpose()?;

    if when_name == "cron" {
        let text = string("cron", when_raw, Reason::InvalidCron)?;
        let expr =
            CronExpr::parse(&text).map_err(|err| field_error(Reason::InvalidCron, "cron", err))?;
        let dom_dow = fields.get("dom_dow").map(dom_dow).transpose()?;
        if dom_dow == Some(DomDow::Or) && expr.has_plus() {
            return Err(field_error(
                Reason::InvalidField,
                "dom_dow",
                "\"or\" contradicts the `+` before the day-of-week field of `cron`",
            ));
        }
        let expr = expr.with_dom_dow(dom_dow).with_dst(dst);
        Ok(Schedule::Cron {
            expr,
            tz,
            start_at,
            end_at,
            max_runs,
            misfire,
            jitter_ms,
        })
    } else {
        let interval = if when_raw.get().starts_with('"') {
            let text = string("every", when_raw, Reason::InvalidInterval)?;
            Interval::parse(&text)
        } else {
            serde_json::from_str::<u64>(when_raw.get())
                .map_err(|_| {
                    format!(
                        "expected an interval such as \"15m\" or a whole number of \
                         milliseconds, found {}",
                        describe(when_raw)
                    )
                })
                .and_then(Interval::from_millis)
        }
        .map_err(|err| field_error(Reason::InvalidInterval, "every", err))?;
        Ok(Schedule::Every {
            interval_ms: interval.as_millis(),
            start_at,
            end_at,
            max_runs,
            misfire,
            jitter_ms,
        })
    }
}

/// Why a recurring schedule has no first fire time.
fn no_fire(schedule: &Schedule, when_name: &str) -> Error {
    match (schedule, schedule.end_at()) {
        (_, Some(end)) => field_error(
            Reason::InvalidTime,
            "end_at",
            format_args!(
                "the schedule has no fire time left before {}",
                end.to_rfc3339()
            ),
        ),
        (Schedule::Cron { expr, .. }, None) => field_error(
            Reason::InvalidCron,
            "cron",
            format_args!("`{expr}` matches no future time"),
        ),
        _ => field_error(
            Reason::InvalidTime,
            when_name,
            "the schedule has no fire time",
        ),
    }
}

fn timeout(raw: &RawValue) -> Result<u64, Error> {
    let ms = millis(duration("timeout", raw, Reason::InvalidField)?);
    if ms == 0 {
        return Err(field_error(
            Reason::InvalidField,
            "timeout",
            "must be at least 1ms",
        ));
    }
    Ok(ms)
}

fn labels(raw: &RawValue) -> Result<BTreeMap<String, String>, Error> {
    let labels: BTreeMap<String, String> = serde_json::from_str(raw.get()).map_err(|_| {
        field_error(
            Reason::InvalidField,
            "labels",
            format_args!(
                "expected an object of string values, found {}",
                describe(raw)
            ),
        )
    })?;
    if labels.len() > MAX_LABELS {
        return Err(field_error(
            Reason::InvalidField,
            "labels",
            format_args!(
                "has {} labels, over the limit of {MAX_LABELS}",
                labels.len()
            ),
        ));
    }
    for (key, value) in &labels {
        check_label(key, value)
            .map_err(|err| field_error(Reason::InvalidField, &format!("labels.{key}"), err))?;
    }
    Ok(labels)
}

/// Most labels on one job (each is an entry in a secondary index).
pub const MAX_LABELS: usize = 16;

/// Checks one label: the key is 1 to 128 bytes without `=`, `,`, whitespace or control
/// characters (selectors are `key=value`, joined by commas); the value is at most 256 bytes
/// without control characters.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 128 {
        return Err("key must be 1 to 128 bytes long".into());
    }
    if let Some(c) = key
        .chars()
        .find(|c| matches!(c, '=' | ',') || c.is_whitespace() || c.is_control())
    {
        return Err(format!("key contains {c:?}"));
    }
    if value.len() > 256 {
        return Err(format!(
            "value is {} bytes long, over the limit of 256",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("value contains a control character".into());
    }
    Ok(())
}

fn tenant(raw: &RawValue) -> Result<String, Error> {
    let name = string("tenant", raw, Reason::InvalidField)?;
    check_tenant(&name).map_err(|err| field_error(Reason::InvalidField, "tenant", err))?;
    Ok(name)
}

fn retry(raw: &RawValue) -> Result<RetryPolicy, Error> {
    let fields: Fields<'_> = serde_json::from_str(raw.get()).map_err(|_| {
        field_error(
            Reason::InvalidField,
            "retry",
            format_args!("expected an object, found {}", describe(raw)),
        )
    })?;
    if let Some(name) = fields
        .0
        .keys()
        .find(|name| !RETRY_FIELDS.contains(&name.as_str()))
    {
        return Err(Error::new(
            Reason::UnknownField,
            format!(
                "unknown field `retry.{name}`, expected one of {}",
                RETRY_FIELDS.join(", ")
            ),
        ));
    }
    let mut policy = RetryPolicy::default();
    if let Some(raw) = fields.get("max_attempts") {
        policy.max_attempts = serde_json::from_str(raw.get()).map_err(|_| {
            field_error(
                Reason::InvalidField,
                "retry.max_attempts",
                format_args!("expected a positive whole number, found {}", describe(raw)),
            )
        })?;
    }
    if let Some(raw) = fields.get("backoff") {
        let text = string("retry.backoff", raw, Reason::InvalidField)?;
        policy.backoff = text.parse().map_err(|_| {
            field_error(
                Reason::InvalidField,
                "retry.backoff",
                format_args!("unknown backoff `{text}`, expected exponential or fixed"),
            )
        })?;
    }
    if let Some(raw) = fields.get("initial") {
        policy.initial_ms = millis(duration("retry.initial", raw, Reason::InvalidField)?);
    }
    if let Some(raw) = fields.get("max") {
        policy.max_ms = millis(duration("retry.max", raw, Reason::InvalidField)?);
    }
    if let Some(raw) = fields.get("jitter") {
        policy.jitter = serde_json::from_str::<f64>(raw.get())
            .ok()
            .filter(|jitter| (0.0..=1.0).contains(jitter))
            .ok_or_else(|| {
                field_error(
                    Reason::InvalidField,
                    "retry.jitter",
                    format_args!("expected a number from 0 to 1, found {}", describe(raw)),
                )
            })?;
    }
    if policy.max_ms < policy.initial_ms {
        return Err(field_error(
            Reason::InvalidField,
            "retry.max",
            format_args!(
                "{}ms is less than `retry.initial` {}ms",
                policy.max_ms, policy.initial_ms
            ),
        ));
    }
    Ok(policy)
}

fn infinite_scheduler(
    fields: &Fields<'_>,
    limits: &Limits,
    origin: &Origin,
) -> Result<JobSpec, Error> {
    let id = fields
        .get("requestId")
        .map(|raw| job_id("requestId", raw))
        .transpose()?;
    let app = app(fields, "appName", limits)?;
    let at = time(
        "scheduledTime",
        fields
            .get("scheduledTime")
            .ok_or_else(|| missing("scheduledTime"))?,
        limits.default_timezone,
    )?;
    let payload = fields
        .get("jobData")
        .ok_or_else(|| missing("jobData"))?
        .to_owned();
    check_horizon("scheduledTime", at, limits, origin)?;
    let priority = fields
        .get("priority")
        .map(|raw| priority("priority", raw))
        .transpose()?
        .unwrap_or_default();
    let idempotency_key = fields
        .get("idempotencyKey")
        .map(|raw| idempotency_key("idempotencyKey", raw))
        .transpose()?;

    Ok(JobSpec {
        id: choose_id(id, idempotency_key.as_deref(), origin),
        app,
        idempotency_key,
        payload,
        schedule: Schedule::Once { at },
        first_due: at,
        priority,
        timeout_ms: None,
        retry: None,
        labels: BTreeMap::new(),
        tenant: origin.tenant.clone(),
        calendars: Vec::new(),
        format: Format::InfiniteScheduler,
        retry_of: None,
        traceparent: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Asia::Dhaka};
    use strum::IntoEnumIterator;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn now() -> DateTime<Utc> {
        utc("2026-06-10T10:00:00Z")
    }

    fn origin() -> Origin {
        Origin::new(now())
    }

    fn limits_in(tz: Tz) -> Limits {
        Limits {
            default_timezone: tz,
            ..Limits::default()
        }
    }

    fn ok(json: &str) -> JobSpec {
        parse(json.as_bytes(), &Limits::default(), &origin())
            .unwrap_or_else(|err| panic!("{json}: {err}"))
    }

    fn err(json: &str) -> Error {
        err_with(json, &Limits::default())
    }

    fn err_with(json: &str, limits: &Limits) -> Error {
        match parse(json.as_bytes(), limits, &origin()) {
            Ok(spec) => panic!("{json} was accepted: {spec:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn architecture_example_parses() {
        let spec = ok(r#"{
            "id": "order-123-reminder",
            "app": "sms",
            "run_at": "2026-11-23T10:00:00Z",
            "payload": {"phone": "+8801712345678", "text": "Your order shipped"},
            "idempotency_key": "order-123-reminder",
            "priority": "normal",
            "timeout": "30s",
            "retry": {"max_attempts": 5, "backoff": "exponential", "initial": "1s", "max": "5m", "jitter": 0.2},
            "labels": {"tenant": "acme"}
        }"#);
        assert_eq!(spec.id.as_str(), "order-123-reminder");
        assert_eq!(spec.app, "sms");
        assert_eq!(
            spec.schedule,
            Schedule::Once {
                at: utc("2026-11-23T10:00:00Z")
            }
        );
        assert_eq!(spec.first_due, utc("2026-11-23T10:00:00Z"));
        assert_eq!(
            spec.payload.get(),
            r#"{"phone": "+8801712345678", "text": "Your order shipped"}"#
        );
        assert_eq!(spec.idempotency_key.as_deref(), Some("order-123-reminder"));
        assert_eq!(spec.priority, Priority::Normal);
        assert_eq!(spec.timeout_ms, Some(30_000));
        assert_eq!(
            spec.retry,
            Some(RetryPolicy {
                max_attempts: NonZeroU32::new(5).unwrap(),
                backoff: Backoff::Exponential,
                initial_ms: 1_000,
                max_ms: 300_000,
                jitter: 0.2,
            })
        );
        assert_eq!(spec.labels["tenant"], "acme");
        assert_eq!(spec.format, Format::Native);
    }

    #[test]
    fn infinite_scheduler_example_parses() {
        let json = r#"{
            "requestId": "auto-generated-uuid",
            "appName": "sms",
            "scheduledTime": "2025-11-03T22:00:00",
            "priority": "normal",
            "idempotencyKey": "sms-12345-unique",
            "jobData": {"phoneNumber": "+8801712345678", "message": "Hello World!", "senderId": "MyApp"}
        }"#;
        let spec = parse(json.as_bytes(), &limits_in(Dhaka), &origin()).unwrap();
        assert_eq!(spec.id.as_str(), "auto-generated-uuid");
        assert_eq!(spec.app, "sms");
        assert_eq!(spec.first_due, utc("2025-11-03T16:00:00Z"));
        assert_eq!(spec.schedule, Schedule::Once { at: spec.first_due });
        assert_eq!(spec.idempotency_key.as_deref(), Some("sms-12345-unique"));
        assert_eq!(spec.format, Format::InfiniteScheduler);
        assert!(spec.payload.get().starts_with(r#"{"phoneNumber""#));
    }

    #[test]
    fn scheduled_time_formats_resolve_in_the_default_zone() {
        let cases: &[(&str, Tz, &str)] = &[
            ("2025-11-03T22:00:00", Tz::UTC, "2025-11-03T22:00:00Z"),
            ("2025-11-03 22:00:00", Tz::UTC, "2025-11-03T22:00:00Z"),
            ("2025-11-03T22:00", Tz::UTC, "2025-11-03T22:00:00Z"),
            (
                "2025-10-28T04:05:03.901939568",
                Tz::UTC,
                "2025-10-28T04:05:03.901939568Z",
            ),
            ("2025-11-03T22:00:00", Dhaka, "2025-11-03T16:00:00Z"),
            ("2025-11-03 22:00:00", Dhaka, "2025-11-03T16:00:00Z"),
            ("2025-11-03T22:00", Dhaka, "2025-11-03T16:00:00Z"),
            (
                "2025-10-28T04:05:03.901939568",
                Dhaka,
                "2025-10-27T22:05:03.901939568Z",
            ),
            ("2025-11-03T22:00:00", New_York, "2025-11-04T03:00:00Z"),
            ("2025-11-03 22:00:00", New_York, "2025-11-04T03:00:00Z"),
            ("2025-11-03T22:00", New_York, "2025-11-04T03:00:00Z"),
            (
                "2025-10-28T04:05:03.901939568",
                New_York,
                "2025-10-28T08:05:03.901939568Z",
            ),
            ("2025-10-28T04:05:03.9", Tz::UTC, "2025-10-28T04:05:03.900Z"),
            ("2025-11-03T22:00:00Z", New_York, "2025-11-03T22:00:00Z"),
            (
                "2025-11-03T22:00:00+06:00",
                New_York,
                "2025-11-03T16:00:00Z",
            ),
            (
                "2025-11-03T22:00:00.5-05:00",
                Dhaka,
                "2025-11-04T03:00:00.5Z",
            ),
            // DST gap: 02:30 does not exist, resolves to 03:00 EDT.
            ("2026-03-08T02:30:00", New_York, "2026-03-08T07:00:00Z"),
            // DST overlap: 01:30 happens twice, resolves to the first (EDT).
            ("2026-11-01 01:30:00", New_York, "2026-11-01T05:30:00Z"),
        ];
        for (text, tz, expected) in cases {
            let json =
                format!(r#"{{"appName": "sms", "scheduledTime": "{text}", "jobData": {{}}}}"#);
            let spec = parse(json.as_bytes(), &limits_in(*tz), &origin())
                .unwrap_or_else(|err| panic!("{text} in {tz}: {err}"));
            assert_eq!(spec.first_due, utc(expected), "{text} in {tz}");
            assert_eq!(parse_time(text, *tz), Ok(utc(expected)), "{text} in {tz}");
        }
    }

    #[test]
    fn malformed_times_are_rejected() {
        for bad in [
            "2025-11-03",
            "2025-11-03T22",
            "2025-11-03T22:00:0",
            "2025-11-03T22:00:00.",
            "2025-11-03T22:00:00.1234567890",
            "2025-13-03T22:00:00",
            "2025-02-30T22:00:00",
            "2025-11-03T24:00:00",
            "2025-11-03T22:00:00+25:00",
            "2025-11-03X22:00:00",
            "tomorrow",
            "",
        ] {
            let json =
                format!(r#"{{"appName": "sms", "scheduledTime": "{bad}", "jobData": {{}}}}"#);
            let e = err(&json);
            assert_eq!(e.reason, Reason::InvalidTime, "{bad}: {e}");
            assert!(e.message.starts_with("field `scheduledTime`: "), "{e}");
        }
        let e = err(r#"{"app": "sms", "run_at": 1795428000000}"#);
        assert_eq!(e.reason, Reason::InvalidTime);
        assert_eq!(
            e.message,
            "field `run_at`: expected a string, found `1795428000000`"
        );
    }

    #[test]
    fn a_leap_second_is_read_as_the_next_second() {
        // Found by tests/fuzz_request.rs: the job record (epoch ms) gave back another time.
        let spec = ok(r#"{"app": "sms", "run_at": "2016-12-31T23:59:60.5Z", "payload": 1}"#);
        assert_eq!(spec.first_due, utc("2017-01-01T00:00:00.5Z"));
        let spec =
            ok(r#"{"appName": "sms", "scheduledTime": "2016-12-31T23:59:60Z", "jobData": 1}"#);
        assert_eq!(spec.first_due, utc("2017-01-01T00:00:00Z"));
        let spec = ok(r#"{"app": "sms", "every": "1h", "start_at": "2026-06-30T23:59:60+00:00"}"#);
        assert_eq!(
            spec.schedule,
            Schedule::Every {
                interval_ms: 3_600_000,
                start_at: Some(utc("2026-07-01T00:00:00Z")),
                end_at: None,
                max_runs: None,
                misfire: Misfire::default(),
                jitter_ms: None,
            }
        );
    }

    #[test]
    fn payload_is_kept_byte_for_byte() {
        let payload = r#"{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓", "f": 1.50, "e": "\u00e9"}"#;
        let native = ok(&format!(
            r#"{{"app": "a", "run_at": "2026-01-01T00:00:00Z", "payload": {payload}}}"#
        ));
        assert_eq!(native.payload.get(), payload);
        let infinite = ok(&format!(
            r#"{{"appName": "a", "scheduledTime": "2026-01-01T00:00:00", "jobData": {payload}}}"#
        ));
        assert_eq!(infinite.payload.get(), payload);
        // And through the stored form.
        let stored = serde_json::to_string(&native).unwrap();
        let back: JobSpec = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.payload.get(), payload);
        assert_eq!(back, native);
    }

    #[test]
    fn tenant_comes_from_the_field_else_from_the_origin() {
        let spec = ok(r#"{"app": "a", "delay": "1s", "tenant": "acme"}"#);
        assert_eq!(spec.tenant.as_deref(), Some("acme"));
        assert_eq!(ok(r#"{"app": "a", "delay": "1s"}"#).tenant, None);
        let origin = Origin {
            tenant: Some("from-topic".into()),
            ..origin()
        };
        let native = parse(
            br#"{"app": "a", "delay": "1s"}"#,
            &Limits::default(),
            &origin,
        );
        assert_eq!(native.unwrap().tenant.as_deref(), Some("from-topic"));
        let named = parse(
            br#"{"app": "a", "delay": "1s", "tenant": "acme"}"#,
            &Limits::default(),
            &origin,
        );
        assert_eq!(named.unwrap().tenant.as_deref(), Some("acme"));
        let is = br#"{"appName": "sms", "scheduledTime": "2026-07-01T00:00:00", "jobData": 1}"#;
        let spec = parse(is, &Limits::default(), &origin).unwrap();
        assert_eq!(spec.tenant.as_deref(), Some("from-topic"));
        for bad in [
            r#""""#,
            r#""a b""#,
            r#""a/b""#,
            "7",
            &format!("\"{}\"", "x".repeat(65)),
        ] {
            let e = err(&format!(
                r#"{{"app": "a", "delay": "1s", "tenant": {bad}}}"#
            ));
            assert_eq!(e.reason, Reason::InvalidField, "{bad}");
            assert!(e.message.starts_with("field `tenant`"), "{e}");
        }
    }

    #[test]
    fn labels_are_checked_for_use_in_selectors() {
        let spec = ok(r#"{"app": "a", "delay": "1s", "labels": {"team": "pay=ok", "k.8s/x": ""}}"#);
        assert_eq!(spec.labels["team"], "pay=ok");
        for bad in [
            r#"{"a=b": "x"}"#,
            r#"{"a,b": "x"}"#,
            r#"{"": "x"}"#,
            r#"{"a b": "x"}"#,
            r#"{"a": "x\ny"}"#,
        ] {
            let e = err(&format!(
                r#"{{"app": "a", "delay": "1s", "labels": {bad}}}"#
            ));
            assert_eq!(e.reason, Reason::InvalidField, "{bad}");
            assert!(e.message.starts_with("field `labels."), "{e}");
        }
        let many: Vec<String> = (0..17).map(|i| format!(r#""k{i}": "v""#)).collect();
        let e = err(&format!(
            r#"{{"app": "a", "delay": "1s", "labels": {{{}}}}}"#,
            many.join(",")
        ));
        assert!(e.message.contains("over the limit of 16"), "{e}");
    }

    #[test]
    fn missing_payload_is_null() {
        let spec = ok(r#"{"app": "a", "delay": "1s"}"#);
        assert_eq!(spec.payload.get(), "null");
        let spec = ok(r#"{"app": "a", "delay": "1s", "payload": [1, "x"]}"#);
        assert_eq!(spec.payload.get(), r#"[1, "x"]"#);
    }

    #[test]
    fn unknown_native_field_is_rejected_by_name() {
        let e = err(r#"{"app": "a", "runat": "2026-01-01T00:00:00Z"}"#);
        assert_eq!(e.reason, Reason::UnknownField);
        assert!(
            e.message
                .starts_with("unknown field `runat`, expected one of id, app"),
            "{e}"
        );
        let e = err(r#"{"app": "a", "delay": "1s", "retry": {"attempts": 3}}"#);
        assert_eq!(e.reason, Reason::UnknownField);
        assert!(
            e.message.starts_with("unknown field `retry.attempts`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_infinite_scheduler_field_is_ignored() {
        let spec = ok(r#"{"appName": "a", "scheduledTime": "2026-01-01T00:00:00",
                          "jobData": 1, "whatever": {"x": 1}, "app": "ignored"}"#);
        assert_eq!(spec.app, "a");
    }

    #[test]
    fn null_fields_count_as_absent() {
        let spec = ok(
            r#"{"requestId": null, "appName": "a", "scheduledTime": "2026-01-01T00:00:00",
                          "jobData": {}, "priority": null, "idempotencyKey": null}"#,
        );
        assert_eq!(spec.priority, Priority::Normal);
        assert_eq!(spec.idempotency_key, None);
        let spec = ok(r#"{"id": null, "app": "a", "delay": "1s", "cron": null, "timeout": null}"#);
        assert_eq!(spec.timeout_ms, None);
        assert_eq!(
            err(r#"{"appName": "a", "scheduledTime": "2026-01-01T00:00:00", "jobData": null}"#)
                .reason,
            Reason::MissingField
        );
    }

    #[test]
    fn id_precedence() {
        let fallback = JobId::derived("sked.ingest", 2, 7);
        let origin = Origin {
            now: now(),
            fallback_id: Some(fallback.clone()),
            tenant: None,
        };
        let id = |json: &str| {
            parse(json.as_bytes(), &Limits::default(), &origin)
                .unwrap()
                .id
        };
        assert_eq!(
            id(r#"{"id": "explicit", "idempotency_key": "key", "app": "a", "delay": 0}"#).as_str(),
            "explicit"
        );
        assert_eq!(
            id(r#"{"idempotency_key": "key", "app": "a", "delay": 0}"#).as_str(),
            "key"
        );
        assert_eq!(
            id(r#"{"idempotency_key": "not an id", "app": "a", "delay": 0}"#),
            fallback,
            "an idempotency key that is not a valid id is kept as key only"
        );
        assert_eq!(id(r#"{"app": "a", "delay": 0}"#), fallback);
        assert_eq!(
            id(r#"{"requestId": "r-1", "idempotencyKey": "k", "appName": "a", "scheduledTime": "2026-01-01T00:00", "jobData": 1}"#).as_str(),
            "r-1"
        );
        assert_eq!(
            id(r#"{"idempotencyKey": "k", "appName": "a", "scheduledTime": "2026-01-01T00:00", "jobData": 1}"#).as_str(),
            "k"
        );
        let v7 = ok(r#"{"app": "a", "delay": 0}"#).id;
        assert_eq!(
            uuid::Uuid::parse_str(v7.as_str())
                .unwrap()
                .get_version_num(),
            7
        );
    }

    #[test]
    fn delay_is_relative_to_origin_now() {
        assert_eq!(
            ok(r#"{"app": "a", "delay": "15m"}"#).first_due,
            utc("2026-06-10T10:15:00Z")
        );
        assert_eq!(
            ok(r#"{"app": "a", "delay": 900000}"#).first_due,
            utc("2026-06-10T10:15:00Z")
        );
        assert_eq!(ok(r#"{"app": "a", "delay": 0}"#).first_due, now());
        let e = err(r#"{"app": "a", "delay": -5}"#);
        assert_eq!(e.reason, Reason::InvalidTime);
        assert!(e.message.contains("found `-5`"), "{e}");
    }

    #[test]
    fn past_run_at_is_accepted() {
        let spec = ok(r#"{"app": "a", "run_at": "2001-01-01T00:00:00Z"}"#);
        assert_eq!(spec.first_due, utc("2001-01-01T00:00:00Z"));
    }

    #[test]
    fn run_at_local_time_uses_timezone_field_or_default() {
        let spec = ok(r#"{"app": "a", "run_at": "2026-11-23T10:00:00", "timezone": "Asia/Dhaka"}"#);
        assert_eq!(spec.first_due, utc("2026-11-23T04:00:00Z"));
        let spec = parse(
            br#"{"app": "a", "run_at": "2026-11-23T10:00:00"}"#,
            &limits_in(New_York),
            &origin(),
        )
        .unwrap();
        assert_eq!(spec.first_due, utc("2026-11-23T15:00:00Z"));
    }

    #[test]
    fn cron_request_fires_on_local_wall_clock() {
        let spec = ok(
            r#"{"app": "a", "cron": "0 9 * * 1-5", "timezone": "Asia/Dhaka",
                          "max_runs": 10, "misfire": "skip", "jitter": "30s"}"#,
        );
        // 2026-06-10 10:00Z is a Wednesday, 16:00 in Dhaka: next is Thursday 09:00 Dhaka.
        assert_eq!(spec.first_due, utc("2026-06-11T03:00:00Z"));
        let Schedule::Cron {
            tz,
            max_runs,
            misfire,
            jitter_ms,
            ..
        } = spec.schedule
        else {
            panic!("{:?}", spec.schedule)
        };
        assert_eq!(tz, Dhaka);
        assert_eq!(max_runs, NonZeroU32::new(10));
        assert_eq!(misfire, Misfire::Skip);
        assert_eq!(jitter_ms, Some(30_000));
        let spec = ok(
            r#"{"app": "a", "cron": "@daily", "start_at": "2026-07-01T00:00:00",
                          "misfire": {"fire_all": {"cap": 5}}}"#,
        );
        assert_eq!(spec.first_due, utc("2026-07-01T00:00:00Z"));
        assert_eq!(spec.schedule.misfire(), Misfire::FireAll { cap: 5 });
    }

    #[test]
    fn every_request_starts_one_interval_from_now_or_on_its_grid() {
        let spec = ok(r#"{"app": "a", "every": "15m"}"#);
        assert_eq!(spec.first_due, utc("2026-06-10T10:15:00Z"));
        assert!(matches!(
            spec.schedule,
            Schedule::Every {
                interval_ms: 900_000,
                ..
            }
        ));
        let spec = ok(r#"{"app": "a", "every": 3600000, "start_at": "2026-06-10T08:30:00Z"}"#);
        assert_eq!(spec.first_due, utc("2026-06-10T10:30:00Z"));
    }

    #[test]
    fn when_fields_are_exclusive_and_required() {
        let e = err(r#"{"app": "a"}"#);
        assert_eq!(e.reason, Reason::MissingField);
        assert_eq!(
            e.message,
            "one of `run_at`, `delay`, `cron` or `every` is required"
        );
        let e = err(r#"{"app": "a", "delay": "1s", "cron": "@daily"}"#);
        assert_eq!(e.reason, Reason::InvalidField);
        assert!(
            e.message
                .starts_with("fields `delay` and `cron` cannot be combined"),
            "{e}"
        );
        let e = err(r#"{"app": "a", "delay": "1s", "max_runs": 3}"#);
        assert_eq!(e.reason, Reason::InvalidField);
        assert_eq!(
            e.message,
            "field `max_runs`: applies only to `cron` and `every` schedules"
        );
    }

    #[test]
    fn retry_policy_is_validated() {
        let spec = ok(r#"{"app": "a", "delay": 0, "retry": {"backoff": "FIXED", "initial": 500}}"#);
        let retry = spec.retry.unwrap();
        assert_eq!(retry.backoff, Backoff::Fixed);
        assert_eq!(retry.initial_ms, 500);
        assert_eq!(retry.max_attempts.get(), 3);
        for (bad, field) in [
            (r#"{"max_attempts": 0}"#, "retry.max_attempts"),
            (r#"{"backoff": "linear"}"#, "retry.backoff"),
            (r#"{"initial": "1m", "max": "1s"}"#, "retry.max"),
            (r#"{"jitter": 1.5}"#, "retry.jitter"),
            (r#"{"jitter": "0.2"}"#, "retry.jitter"),
            (r#"{"initial": "soon"}"#, "retry.initial"),
            ("5", "retry"),
        ] {
            let e = err(&format!(r#"{{"app": "a", "delay": 0, "retry": {bad}}}"#));
            assert_eq!(e.reason, Reason::InvalidField, "{bad}: {e}");
            assert!(
                e.message.starts_with(&format!("field `{field}`: ")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn priority_timeout_and_labels() {
        let spec = ok(
            r#"{"app": "a", "delay": 0, "priority": "HIGH", "timeout": 1500,
                          "labels": {"tenant": "acme", "tier": "gold"}}"#,
        );
        assert_eq!(spec.priority, Priority::High);
        assert_eq!(spec.timeout_ms, Some(1500));
        assert_eq!(spec.labels.len(), 2);
        for bad in [
            r#""priority": "urgent""#,
            r#""timeout": 0"#,
            r#""timeout": "fast""#,
            r#""labels": {"n": 1}"#,
            r#""labels": ["a"]"#,
            r#""idempotency_key": """#,
            r#""app": "", "cron": "@daily""#,
            r#""max_runs": 0, "cron": "@daily""#,
            r#""misfire": "later", "cron": "@daily""#,
            r#""jitter": true, "every": "1m""#,
        ] {
            let json = if bad.contains("\"app\"") {
                format!("{{{bad}}}")
            } else if bad.contains("cron") || bad.contains("every") {
                format!(r#"{{"app": "a", {bad}}}"#)
            } else {
                format!(r#"{{"app": "a", "delay": 0, {bad}}}"#)
            };
            assert_eq!(err(&json).reason, Reason::InvalidField, "{json}");
        }
    }

    #[test]
    fn size_limit_is_checked_before_parsing() {
        let limits = Limits {
            max_bytes: 64,
            ..Limits::default()
        };
        let json = r#"{"app": "a", "delay": 0, "payload": "xxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
        assert_eq!(json.len(), 64);
        assert!(parse(json.as_bytes(), &limits, &origin()).is_ok());
        let too_big = format!("{json} ");
        let e = err_with(&too_big, &limits);
        assert_eq!(e.reason, Reason::PayloadTooLarge);
        assert_eq!(e.message, "request is 65 bytes, over the limit of 64 bytes");
        let e = err_with(&format!("\u{ff}{}", "x".repeat(80)), &limits);
        assert_eq!(
            e.reason,
            Reason::PayloadTooLarge,
            "even when not JSON at all"
        );
    }

    #[test]
    fn every_reason_but_internal_is_produced_by_some_input() {
        let registry = Limits {
            apps: Some(BTreeSet::from(["sms".to_owned()])),
            max_bytes: 200,
            max_horizon: Duration::from_secs(86_400),
            ..Limits::default()
        };
        let cases: &[(&[u8], Reason)] = &[
            (b"{", Reason::InvalidJson),
            (b"[1, 2]", Reason::InvalidJson),
            (br#"{"app": "sms", "app": "sms", "delay": 0}"#, Reason::InvalidJson),
            (br#"{"delay": 0}"#, Reason::MissingField),
            (br#"{"appName": "sms", "jobData": 1}"#, Reason::MissingField),
            (br#"{"app": "sms", "delay": 0, "dealy": 0}"#, Reason::UnknownField),
            (br#"{"app": "sms", "delay": 0, "priority": 1}"#, Reason::InvalidField),
            (br#"{"id": "a/b", "app": "sms", "delay": 0}"#, Reason::InvalidId),
            (br#"{"requestId": "", "appName": "sms", "scheduledTime": "2026-06-10T11:00", "jobData": 1}"#, Reason::InvalidId),
            (br#"{"app": "sms", "run_at": "noon"}"#, Reason::InvalidTime),
            (br#"{"app": "sms", "cron": "@daily", "end_at": "2026-06-10T09:00:00Z"}"#, Reason::InvalidTime),
            (br#"{"app": "sms", "cron": "@daily", "timezone": "Mars/Olympus"}"#, Reason::InvalidTimezone),
            (br#"{"app": "sms", "cron": "0 9 * * 8"}"#, Reason::InvalidCron),
            (br#"{"app": "sms", "cron": "0 0 30 2 *"}"#, Reason::InvalidCron),
            (br#"{"app": "sms", "every": "0s"}"#, Reason::InvalidInterval),
            (br#"{"app": "sms", "every": "often"}"#, Reason::InvalidInterval),
            (br#"{"app": "email", "delay": 0}"#, Reason::UnknownApp),
            (br#"{"appName": "email", "scheduledTime": "2026-06-10T11:00", "jobData": 1}"#, Reason::UnknownApp),
            (&[b' '; 201], Reason::PayloadTooLarge),
            (br#"{"app": "sms", "delay": "2d"}"#, Reason::TooFarInFuture),
            (br#"{"app": "sms", "delay": "100000000000y"}"#, Reason::TooFarInFuture),
            (br#"{"appName": "sms", "scheduledTime": "2026-06-12T11:00", "jobData": 1}"#, Reason::TooFarInFuture),
            (br#"{"app": "sms", "cron": "@yearly"}"#, Reason::TooFarInFuture),
            (b"{\"app\": \"sms\xff\", \"delay\": 0}", Reason::InvalidUtf8),
        ];
        let mut seen = BTreeSet::new();
        for (input, reason) in cases {
            let e = match parse(input, &registry, &origin()) {
                Ok(spec) => panic!("{} accepted: {spec:?}", String::from_utf8_lossy(input)),
                Err(e) => e,
            };
            assert_eq!(e.reason, *reason, "{}: {e}", String::from_utf8_lossy(input));
            assert!(!e.message.is_empty() && !e.message.ends_with('.'), "{e}");
            assert!(e.message.starts_with(|c: char| !c.is_uppercase()), "{e}");
            seen.insert(*reason);
        }
        // `unknown_calendar` needs the known calendars: `check_calendars`, after parsing.
        let spec = parse(
            br#"{"app": "sms", "cron": "@daily", "calendars": ["holidays", "gone"]}"#,
            &registry,
            &origin(),
        )
        .unwrap();
        let mut known = schedule::Calendars::new();
        known.insert(
            "holidays",
            serde_json::from_str(r#"{"dates": ["2026-12-25"]}"#).unwrap(),
        );
        let e = check_calendars(&spec, &known).unwrap_err();
        assert!(e.message.contains("`gone`"), "{e}");
        seen.insert(e.reason);
        // `quota_exceeded` comes from ingest's quotas, not from the request itself.
        let all: BTreeSet<Reason> = Reason::iter()
            .filter(|r| !matches!(r, Reason::Internal | Reason::QuotaExceeded))
            .collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn calendars_are_checked_and_only_for_recurring_schedules() {
        let spec = ok(r#"{"app": "sms", "every": "1h", "calendars": ["a", "b", "a"]}"#);
        assert_eq!(spec.calendars, ["a", "b"], "duplicates dropped, order kept");
        for (json, names) in [
            (
                r#"{"app": "sms", "delay": "1h", "calendars": ["a"]}"#,
                "calendars",
            ),
            (
                r#"{"app": "sms", "cron": "@daily", "calendars": ["a b"]}"#,
                "a b",
            ),
            (
                r#"{"app": "sms", "cron": "@daily", "calendars": "a"}"#,
                "array",
            ),
        ] {
            let e = err(json);
            assert_eq!(e.reason, Reason::InvalidField, "{json}");
            assert!(e.message.contains(names), "{json}: {e}");
        }
    }

    #[test]
    fn error_messages_name_the_field() {
        let e = err(r#"{"app": "a", "run_at": "2026-13-01T00:00:00Z"}"#);
        assert_eq!(
            e.to_string(),
            "invalid_time: field `run_at`: `2026-13-01T00:00:00Z` is not an RFC 3339 time \
             (2025-11-03T22:00:00Z, 2025-11-03T22:00:00+06:00) or a local date-time \
             (2025-11-03T22:00:00, 2025-11-03 22:00:00, 2025-11-03T22:00)"
        );
        let e = err(r#"{"app": "a", "cron": "@daily", "timezone": "Mars/Olympus"}"#);
        assert_eq!(
            e.message,
            "field `timezone`: `Mars/Olympus` is not an IANA time zone name such as \"Asia/Dhaka\""
        );
        let e = err(r#"{"app": "a", "delay": 0, "id": 5}"#);
        assert_eq!(e.message, "field `id`: expected a string, found `5`");
        let e = err(r#"{"appName": "a", "scheduledTime": "2026-01-01T00:00"}"#);
        assert_eq!(e.message, "field `jobData` is required");
        let e = err("\"just a string\"");
        assert_eq!(
            e.message,
            "request must be a JSON object, found the string \"just a string\""
        );
        let e = err(r#"{"app": "a", "every": "1m", "misfire": {"fire_all": {"cap": 0}}}"#);
        assert_eq!(
            e.message,
            "field `misfire`: misfire `cap` must be at least 1"
        );
    }

    #[test]
    fn job_spec_stored_form_round_trips() {
        let spec = ok(
            r#"{"app": "a", "cron": "0 9 * * 1-5", "timezone": "Asia/Dhaka",
                          "payload": {"big": 12345678901234567890}, "retry": {}, "labels": {"k": "v"}}"#,
        );
        let json = serde_json::to_string(&spec).unwrap();
        let back: JobSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        assert!(
            json.contains(r#""payload":{"big": 12345678901234567890}"#),
            "{json}"
        );
        // Defaults are left out of the stored form and read back as defaults.
        assert!(!json.contains(r#""format""#), "{json}");
        assert!(!json.contains(r#""idempotency_key""#), "{json}");
    }

    #[test]
    fn dst_policy_applies_to_cron_and_local_run_at() {
        let skip = r#""timezone": "America/New_York", "dst": {"gap": "skip"}"#;
        let e = err(&format!(
            r#"{{"app": "a", "run_at": "2026-03-08T02:30:00", {skip}}}"#
        ));
        assert_eq!(e.reason, Reason::InvalidTime);
        assert!(
            e.message
                .starts_with("field `run_at`: local time 2026-03-08 02:30:00 does not exist"),
            "{e}"
        );
        let spec = ok(
            r#"{"app": "a", "run_at": "2026-11-01T01:30:00", "timezone": "America/New_York",
                "dst": {"overlap": "last"}}"#,
        );
        assert_eq!(spec.first_due, utc("2026-11-01T06:30:00Z"));
        let spec = ok(&format!(r#"{{"app": "a", "cron": "30 2 * * *", {skip}}}"#));
        let Schedule::Cron { expr, .. } = &spec.schedule else {
            panic!("{:?}", spec.schedule)
        };
        assert_eq!(expr.dst().gap, schedule::Gap::Skip);
        let json = serde_json::to_value(&spec.schedule).unwrap();
        assert_eq!(
            json["dst"],
            serde_json::json!({"gap": "skip", "overlap": "first"})
        );
    }

    #[test]
    fn dom_dow_selects_the_day_rule() {
        let spec = ok(r#"{"app": "a", "cron": "0 0 1 * */2", "dom_dow": "or"}"#);
        let Schedule::Cron { expr, .. } = &spec.schedule else {
            panic!("{:?}", spec.schedule)
        };
        assert_eq!(expr.effective_dom_dow(), DomDow::Or);
        let spec = ok(r#"{"app": "a", "cron": "0 0 1 * */2"}"#);
        assert_eq!(
            serde_json::to_value(&spec.schedule).unwrap().get("dom_dow"),
            None,
            "not set, not stored"
        );
    }

    #[test]
    fn bad_dst_and_dom_dow_values_are_rejected_by_name() {
        for (json, reason, message) in [
            (
                r#"{"app": "a", "cron": "@daily", "dst": {"gap": "jump"}}"#,
                Reason::InvalidField,
                "field `dst`: expected",
            ),
            (
                r#"{"app": "a", "cron": "@daily", "dst": "skip"}"#,
                Reason::InvalidField,
                "field `dst`: expected",
            ),
            (
                r#"{"app": "a", "cron": "@daily", "dom_dow": "xor"}"#,
                Reason::InvalidField,
                "field `dom_dow`: expected \"or\" or \"and\"",
            ),
            (
                r#"{"app": "a", "every": "1h", "dst": {}}"#,
                Reason::InvalidField,
                "field `dst`: applies only to",
            ),
            (
                r#"{"app": "a", "delay": "1h", "dst": {}}"#,
                Reason::InvalidField,
                "field `dst`: applies only to",
            ),
            (
                r#"{"app": "a", "every": "1h", "dom_dow": "and"}"#,
                Reason::InvalidField,
                "field `dom_dow`: applies only to `cron`",
            ),
            (
                r#"{"app": "a", "cron": "0 0 1 * +MON", "dom_dow": "or"}"#,
                Reason::InvalidField,
                "field `dom_dow`: \"or\" contradicts",
            ),
            (
                r#"{"app": "a", "cron": "0 0 * * FRI#6"}"#,
                Reason::InvalidCron,
                "field `cron`: day-of-week field `FRI#6`",
            ),
        ] {
            let e = err(json);
            assert_eq!(e.reason, reason, "{json}: {e}");
            assert!(e.message.starts_with(message), "{json}: {e}");
        }
    }
}
