//! Schema-only types of the schedule request (the value on `sked.ingest`, the body of
//! `POST /v1/jobs`), in both shapes: [`NativeRequest`] and [`InfiniteSchedulerRequest`].
//!
//! They are never used to parse (that is `sked_core::request::parse`); they give the OpenAPI
//! document its request body and [`schema`] its JSON Schema (2020-12, committed as
//! `docs/schedule-request.schema.json`). The JSON Schema says what the parser says about the
//! form of a request; what needs a calendar or a zone database (a cron expression that
//! parses, a zone that exists, a time that exists, the horizon, byte lengths) only the parser
//! checks. As in the parser, a field whose value is `null` counts as absent.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Serialize;
use utoipa::ToSchema;

/// RFC 3339 with an offset, or a zone-less local date-time (`2025-11-03T22:00:00`,
/// `2025-11-03 22:00:00`, `2025-11-03T22:00`, up to 9 fractional digits).
const TIME_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$";

/// A humane duration: one or more `<number><unit>` parts (`15m`, `1h 30m`, `500ms`).
const DURATION_PATTERN: &str = r"^\s*([0-9]+\s*(nsec|ns|usec|us|µs|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)\s*)+$";

/// A job id: 1 to 256 bytes, no whitespace, control character or `/`.
const ID_PATTERN: &str = r"^[^\s/\x00-\x1f\x7f]+$";

/// A tenant: 1 to 64 of `[A-Za-z0-9._-]`.
const TENANT_PATTERN: &str = r"^[A-Za-z0-9._-]{1,64}$";

/// `high`, `normal` or `low`, in any case.
const PRIORITY_PATTERN: &str = r"^([Hh][Ii][Gg][Hh]|[Nn][Oo][Rr][Mm][Aa][Ll]|[Ll][Oo][Ww])$";

/// `exponential` or `fixed`, in any case.
const BACKOFF_PATTERN: &str =
    r"^([Ee][Xx][Pp][Oo][Nn][Ee][Nn][Tt][Ii][Aa][Ll]|[Ff][Ii][Xx][Ee][Dd])$";

fn nullable(schema: serde_json::Value) -> Schema {
    json_schema!({ "anyOf": [schema, { "type": "null" }] })
}

fn time(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "string", "pattern": TIME_PATTERN }))
}

fn required_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": TIME_PATTERN })
}

/// A duration string or a whole number of milliseconds at least `min`.
fn duration_from(min: u64) -> Schema {
    nullable(serde_json::json!({
        "anyOf": [
            { "type": "string", "pattern": DURATION_PATTERN },
            { "type": "integer", "minimum": min },
        ]
    }))
}

fn duration(_: &mut SchemaGenerator) -> Schema {
    duration_from(0)
}

fn positive_duration(_: &mut SchemaGenerator) -> Schema {
    duration_from(1)
}

fn interval(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({
        "anyOf": [
            { "type": "string", "pattern": DURATION_PATTERN },
            { "type": "integer", "minimum": 1000, "maximum": 31_622_400_000_u64 },
        ]
    }))
}

fn id(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "string", "pattern": ID_PATTERN, "maxLength": 256 }))
}

fn app(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1 })
}

fn non_empty(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "string", "minLength": 1 }))
}

fn idempotency_key(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "string", "minLength": 1, "maxLength": 1024 }))
}

fn tenant(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "string", "pattern": TENANT_PATTERN }))
}

fn priority(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "string", "pattern": PRIORITY_PATTERN }))
}

fn positive_u32(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX }))
}

fn misfire(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({
        "anyOf": [
            { "enum": ["fire_once", "skip", "fire_all"] },
            {
                "type": "object",
                "properties": {
                    "fire_all": {
                        "type": "object",
                        "properties": {
                            "cap": { "type": "integer", "minimum": 1, "maximum": u32::MAX }
                        },
                        "additionalProperties": false
                    }
                },
                "required": ["fire_all"],
                "additionalProperties": false
            }
        ]
    }))
}

fn labels(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "object", "additionalProperties": { "type": "string" } }))
}

fn dst(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({
        "type": "object",
        "properties": {
            "gap": { "enum": ["shift", "skip", null] },
            "overlap": { "enum": ["first", "both", "last", null] }
        },
        "additionalProperties": false
    }))
}

fn dom_dow(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "enum": ["or", "and"] }))
}

fn calendars(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({
        "type": "array",
        "maxItems": 16,
        "items": { "type": "string", "pattern": TENANT_PATTERN }
    }))
}

fn any(_: &mut SchemaGenerator) -> Schema {
    json_schema!({})
}

fn not_null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "not": { "type": "null" } })
}

fn backoff(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "string", "pattern": BACKOFF_PATTERN }))
}

fn jitter_fraction(_: &mut SchemaGenerator) -> Schema {
    nullable(serde_json::json!({ "type": "number", "minimum": 0, "maximum": 1 }))
}

fn retry(generator: &mut SchemaGenerator) -> Schema {
    let inner = generator.subschema_for::<RetryRequest>();
    json_schema!({ "anyOf": [inner, { "type": "null" }] })
}

/// Exactly one of `run_at`, `delay`, `cron`, `every` is given (not `null`); the recurring
/// options only with `cron` or `every`.
fn exactly_one_when(schema: &mut Schema) {
    const WHEN: [&str; 4] = ["run_at", "delay", "cron", "every"];
    const RECURRING: [&str; 6] = [
        "start_at",
        "end_at",
        "max_runs",
        "misfire",
        "jitter",
        "calendars",
    ];
    let branches: Vec<serde_json::Value> = WHEN
        .iter()
        .map(|when| {
            let mut properties = serde_json::Map::new();
            properties.insert(
                (*when).to_owned(),
                serde_json::json!({ "not": { "type": "null" } }),
            );
            for other in WHEN.iter().filter(|o| *o != when) {
                properties.insert((*other).to_owned(), serde_json::json!({ "type": "null" }));
            }
            if matches!(*when, "run_at" | "delay") {
                for r in RECURRING {
                    properties.insert(r.to_owned(), serde_json::json!({ "type": "null" }));
                }
            }
            // `dst`: cron and local run_at times; `dom_dow`: cron only.
            if matches!(*when, "delay" | "every") {
                properties.insert("dst".to_owned(), serde_json::json!({ "type": "null" }));
            }
            if *when != "cron" {
                properties.insert("dom_dow".to_owned(), serde_json::json!({ "type": "null" }));
            }
            serde_json::json!({ "required": [when], "properties": properties })
        })
        .collect();
    schema.insert("oneOf".to_owned(), serde_json::Value::Array(branches));
}

/// A schedule request in either shape, told apart by its fields: any of `appName`,
/// `scheduledTime`, `jobData`, `requestId` makes it Infinite-Scheduler compatible.
#[derive(Debug, Clone, Serialize, JsonSchema, ToSchema)]
#[serde(untagged)]
#[schemars(title = "sked schedule request")]
pub enum ScheduleRequest {
    /// sked's own shape.
    Native(Box<NativeRequest>),
    /// The Infinite-Scheduler `ScheduleJobRequest` shape.
    InfiniteScheduler(InfiniteSchedulerRequest),
}

/// sked's own shape. Unknown fields are rejected. Exactly one of `run_at`, `delay`, `cron`,
/// `every` says when.
#[derive(Debug, Clone, Default, Serialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = exactly_one_when)]
pub struct NativeRequest {
    /// The job id (1 to 256 bytes, no whitespace, control character or `/`); default the
    /// idempotency key, else one derived from where the request came from.
    #[schemars(schema_with = "id")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The app whose handler runs the job (required; must be registered when an app
    /// registry is configured).
    #[schemars(schema_with = "app")]
    pub app: String,
    /// The tenant (1 to 64 of `[A-Za-z0-9._-]`).
    #[schemars(schema_with = "tenant")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Fire once at this time: RFC 3339 with an offset, or a local date-time in `timezone`.
    #[schemars(schema_with = "time")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<String>,
    /// Fire once after this delay: `"15m"` or milliseconds.
    #[schemars(schema_with = "duration")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<serde_json::Value>,
    /// Fire on this cron expression, on the wall clock of `timezone`.
    #[schemars(schema_with = "non_empty")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Fire at this interval (1s to 366 days): `"30s"` or milliseconds.
    #[schemars(schema_with = "interval")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<serde_json::Value>,
    /// IANA zone of `cron` and of local times, e.g. `Asia/Dhaka`; default the server's
    /// `default_timezone`.
    #[schemars(schema_with = "non_empty")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `cron` and zone-less `run_at` only: the DST policy, `{"gap": "shift" | "skip",
    /// "overlap": "first" | "both" | "last"}` (defaults `shift`, `first`).
    #[schemars(schema_with = "dst")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<serde_json::Value>,
    /// `cron` only: how day-of-month and day-of-week combine, `"or"` or `"and"`; default the
    /// Vixie rule.
    #[schemars(schema_with = "dom_dow")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dom_dow: Option<String>,
    /// `cron` / `every` only: names of exclusion calendars (at most 16); a slot on a day one
    /// of them excludes does not fire. Each must exist (`unknown_calendar`).
    #[schemars(schema_with = "calendars")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendars: Option<Vec<String>>,
    /// `cron` / `every` only: first possible fire time (a time like `run_at`).
    #[schemars(schema_with = "time")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// `cron` / `every` only: last possible fire time, inclusive.
    #[schemars(schema_with = "time")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<String>,
    /// `cron` / `every` only: most fires.
    #[schemars(schema_with = "positive_u32")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs: Option<u32>,
    /// `cron` / `every` only: what to do with fire times missed while sked was down:
    /// `"fire_once"` (default), `"skip"`, `"fire_all"` or `{"fire_all": {"cap": N}}`.
    #[schemars(schema_with = "misfire")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire: Option<serde_json::Value>,
    /// `cron` / `every` only: random delay of each fire, up to this: `"30s"` or milliseconds.
    #[schemars(schema_with = "duration")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<serde_json::Value>,
    /// Any JSON, kept as written; default `null`.
    #[schemars(schema_with = "any")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// A resubmission with the same key (1 to 1024 bytes) is a duplicate.
    #[schemars(schema_with = "idempotency_key")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// `high`, `normal` (default) or `low`, any case.
    #[schemars(schema_with = "priority")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Handler timeout, positive: `"30s"` or milliseconds; default the app's.
    #[schemars(schema_with = "positive_duration")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<serde_json::Value>,
    /// Retry policy; default the app's.
    #[schemars(schema_with = "retry")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryRequest>,
    /// Free-form labels: an object of string values.
    #[schemars(schema_with = "labels")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A job's own retry policy; every field is optional (3 attempts, exponential, 1s, 5m, 0.2).
#[derive(Debug, Clone, Default, Serialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Most attempts in total, the first one included (at least 1).
    #[schemars(schema_with = "positive_u32")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// `exponential` (default) or `fixed`, any case.
    #[schemars(schema_with = "backoff")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
    /// Delay before the second attempt: `"1s"` or milliseconds.
    #[schemars(schema_with = "duration")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<serde_json::Value>,
    /// Largest delay, at least `initial`: `"5m"` or milliseconds.
    #[schemars(schema_with = "duration")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<serde_json::Value>,
    /// Random spread of each delay, a fraction from 0 to 1.
    #[schemars(schema_with = "jitter_fraction")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
}

/// The Infinite-Scheduler `ScheduleJobRequest` shape; unknown fields are ignored.
#[derive(Debug, Clone, Default, Serialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfiniteSchedulerRequest {
    /// The job id (same rules as the native `id`).
    #[schemars(schema_with = "id")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The app whose handler runs the job (required).
    #[schemars(schema_with = "app")]
    pub app_name: String,
    /// When: a local date-time in the server's `default_timezone`, or RFC 3339 (required).
    #[schemars(schema_with = "required_time")]
    pub scheduled_time: String,
    /// The payload, any JSON but `null`, kept as written (required).
    #[schemars(schema_with = "not_null")]
    pub job_data: serde_json::Value,
    /// `high`, `normal` (default) or `low`, any case.
    #[schemars(schema_with = "priority")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// A resubmission with the same key is a duplicate.
    #[schemars(schema_with = "idempotency_key")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The JSON Schema (2020-12) of a schedule request.
pub fn schema() -> Schema {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<ScheduleRequest>();
    schema.insert(
        "$id".to_owned(),
        "https://sked.invalid/schedule-request.schema.json".into(),
    );
    schema
}

/// [`schema`] as pretty JSON, ending in a newline (the content of
/// `docs/schedule-request.schema.json`).
pub fn schema_json() -> String {
    serde_json::to_string_pretty(&schema())
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the schema: {e}\"}}"))
        + "\n"
}

#[cfg(test)]
mod tests {
    const COMMITTED: &str = include_str!("../../../docs/schedule-request.schema.json");

    #[test]
    fn committed_schema_is_up_to_date() {
        assert!(
            COMMITTED == super::schema_json(),
            "docs/schedule-request.schema.json is stale: regenerate it with \
             `cargo run -p sked-api --example schema > docs/schedule-request.schema.json`"
        );
    }
}
