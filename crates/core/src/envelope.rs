//! The fired job envelope: the value of a record on `sked.due` (and `sked.retry`), written by
//! the scheduler, read by the worker. The payload is embedded raw, exactly as submitted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    job::{FireId, Priority},
    request::{JobSpec, RetryPolicy},
};

/// Which value format a fire is produced in (per app: `apps.<name>.envelope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// [`Envelope`].
    #[default]
    Sked,
    /// The Infinite-Scheduler request shape (`requestId`, `appName`, `scheduledTime`,
    /// `jobData`, `priority`, `idempotencyKey`), for consumers migrating from it.
    InfiniteScheduler,
}

/// One fire of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The job.
    pub job_id: String,
    /// Deterministic id of this fire: the same fire always carries the same id.
    pub fire_id: String,
    /// The job's app.
    pub app: String,
    /// When the fire was due.
    pub due_at: DateTime<Utc>,
    /// When the scheduler produced it.
    pub fired_at: DateTime<Utc>,
    /// Execution attempt this record asks for (1 for a fresh fire).
    pub attempt: u32,
    /// The payload, raw.
    pub payload: Box<RawValue>,
    /// Priority.
    pub priority: Priority,
    /// Per-run timeout, if the job set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retry policy, if the job set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The job's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl Envelope {
    /// The fire of `spec` due at `due`, produced at `fired_at`. A retry job (see
    /// [`JobSpec::retry_of`]) fires under the original job id and fire id, with its attempt.
    pub fn new(spec: &JobSpec, due: DateTime<Utc>, fired_at: DateTime<Utc>) -> Self {
        let (job_id, fire_id, attempt) = match &spec.retry_of {
            Some(r) => (r.job_id.to_string(), r.fire_id.clone(), r.attempt),
            None => (
                spec.id.to_string(),
                FireId::new(&spec.id, due).to_string(),
                1,
            ),
        };
        Self {
            job_id,
            fire_id,
            app: spec.app.clone(),
            due_at: due,
            fired_at,
            attempt,
            payload: spec.payload.clone(),
            priority: spec.priority,
            timeout_ms: spec.timeout_ms,
            retry: spec.retry.clone(),
            labels: spec.labels.clone(),
            tenant: spec.tenant.clone(),
        }
    }

    /// The record value in `format`.
    pub fn to_bytes(&self, format: Format, spec: &JobSpec) -> Result<Vec<u8>, serde_json::Error> {
        match format {
            Format::Sked => serde_json::to_vec(self),
            Format::InfiniteScheduler => {
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Is<'a> {
                    request_id: &'a str,
                    app_name: &'a str,
                    scheduled_time: String,
                    job_data: &'a RawValue,
                    priority: Priority,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    idempotency_key: Option<&'a str>,
                }
                serde_json::to_vec(&Is {
                    request_id: &self.job_id,
                    app_name: &self.app,
                    scheduled_time: self
                        .due_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    job_data: &self.payload,
                    priority: self.priority,
                    idempotency_key: spec.idempotency_key.as_deref(),
                })
            }
        }
    }

    /// W3C `traceparent` derived from the fire id, so a redelivered fire continues one trace.
    pub fn traceparent(&self) -> String {
        let trace = xxhash_rust::xxh3::xxh3_128(self.fire_id.as_bytes());
        let span = xxhash_rust::xxh3::xxh3_64(self.fire_id.as_bytes()) | 1;
        format!("00-{trace:032x}-{span:016x}-01")
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::request::{Limits, Origin, parse};

    const FIDELITY: &str = r#"{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}"#;

    fn spec(json: &str) -> JobSpec {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        parse(json.as_bytes(), &Limits::default(), &Origin::new(now)).unwrap()
    }

    #[test]
    fn envelope_keeps_the_payload_raw_and_ids_deterministic() {
        let spec = spec(&format!(
            r#"{{"id":"a","app":"sms","delay":"1m","payload":{FIDELITY}}}"#
        ));
        let due = spec.first_due;
        let e = Envelope::new(&spec, due, due + chrono::Duration::milliseconds(3));
        let bytes = String::from_utf8(e.to_bytes(Format::Sked, &spec).unwrap()).unwrap();
        assert!(bytes.contains(FIDELITY), "{bytes}");
        assert_eq!(e.fire_id, format!("a@{}", due.timestamp_millis()));
        assert_eq!(e.attempt, 1);
        assert_eq!(
            e.traceparent(),
            Envelope::new(&spec, due, due).traceparent()
        );
        assert_eq!(e.traceparent().len(), 55);
    }

    #[test]
    fn infinite_scheduler_format_is_the_request_shape() {
        let spec = spec(&format!(
            r#"{{"requestId":"r1","appName":"sms","scheduledTime":"2026-01-01T10:00:00","jobData":{FIDELITY},"idempotencyKey":"k"}}"#
        ));
        let e = Envelope::new(&spec, spec.first_due, spec.first_due);
        let bytes =
            String::from_utf8(e.to_bytes(Format::InfiniteScheduler, &spec).unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&bytes).unwrap();
        assert_eq!(v["requestId"], "r1");
        assert_eq!(v["appName"], "sms");
        assert_eq!(v["scheduledTime"], "2026-01-01T10:00:00.000Z");
        assert_eq!(v["idempotencyKey"], "k");
        assert!(
            bytes.contains(&format!(r#""jobData":{FIDELITY}"#)),
            "{bytes}"
        );
    }

    #[test]
    fn a_retry_fires_under_the_original_ids_and_its_attempt() {
        let mut spec = spec(r#"{"id":"a@5~2","app":"sms","delay":"1m"}"#);
        spec.retry_of = Some(crate::request::RetryOf {
            job_id: crate::job::JobId::parse("a").unwrap(),
            fire_id: "a@5".into(),
            attempt: 2,
        });
        let e = Envelope::new(&spec, spec.first_due, spec.first_due);
        assert_eq!(
            (e.job_id.as_str(), e.fire_id.as_str(), e.attempt),
            ("a", "a@5", 2)
        );
    }
}
