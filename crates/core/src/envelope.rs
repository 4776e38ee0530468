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
