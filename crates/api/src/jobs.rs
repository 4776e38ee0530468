//! Jobs, served by the ingest service on `http.listen_addr`: submit, list, describe, update,
//! cancel, the verbs (pause, resume, trigger, backfill, reschedule), and app and tenant pauses.
//!
//! The list filter ([`ListQuery`], [`Selector`]) is in [`crate::query`] and re-exported here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::query::{ListQuery, Order, Selector};

/// Largest `next` of `GET /v1/jobs/{id}`.
pub const MAX_NEXT: u32 = 1000;
/// Default `next` of `GET /v1/jobs/{id}`.
pub const DEFAULT_NEXT: u32 = 5;

/// How a submission went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmitStatus {
    /// A new job was stored (HTTP 201).
    Created,
    /// An existing job was replaced (HTTP 200).
    Updated,
    /// The idempotency key was seen before: nothing changed (HTTP 200).
    Duplicate,
}

/// Answer of `POST /v1/jobs` and `PUT /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubmitResponse {
    /// The job id.
    pub id: String,
    /// What happened.
    pub status: SubmitStatus,
    /// The first fire time; absent for a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
}

/// Answer of `DELETE /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CancelResponse {
    /// The job id.
    pub id: String,
    /// `cancelled` or `already_cancelled`.
    pub status: String,
}

/// The state of a job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its next fire time.
    Scheduled,
    /// Paused itself: it does not fire until resumed.
    Paused,
    /// Its app or tenant is paused: it does not fire until that is resumed.
    Held,
    /// Claimed by a scheduler, being published.
    Firing,
    /// Published to the due topic, not yet picked up by a worker.
    Dispatched,
    /// A worker runs it.
    Running,
    /// Its last run succeeded and no fire is left.
    Succeeded,
    /// Its last run failed and a retry is scheduled.
    Retrying,
    /// Its last run failed for good (dead-lettered).
    Dead,
    /// Cancelled.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 10] = [
        JobState::Scheduled,
        JobState::Paused,
        JobState::Held,
        JobState::Firing,
        JobState::Dispatched,
        JobState::Running,
        JobState::Succeeded,
        JobState::Retrying,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The states a list shows when no `state` is given: jobs that will still fire.
    pub const PENDING: [JobState; 4] = [
        JobState::Scheduled,
        JobState::Paused,
        JobState::Held,
        JobState::Firing,
    ];

    /// The wire name, e.g. `scheduled`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Paused => "paused",
            JobState::Held => "held",
            JobState::Firing => "firing",
            JobState::Dispatched => "dispatched",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Retrying => "retrying",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown state `{s}`, expected one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of schedule a job has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Fires once (`run_at`, `delay`, `scheduledTime`).
    Once,
    /// Fires on a cron expression.
    Cron,
    /// Fires at a fixed interval.
    Every,
}

impl JobKind {
    /// The wire name, e.g. `cron`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Once => "once",
            JobKind::Cron => "cron",
            JobKind::Every => "every",
        }
    }
}

impl std::str::FromStr for JobKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "once" => Ok(JobKind::Once),
            "cron" => Ok(JobKind::Cron),
            "every" => Ok(JobKind::Every),
            _ => Err(format!(
                "unknown kind `{s}`, expected one of once, cron, every"
            )),
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a pause applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseScope {
    /// One job.
    Job,
    /// Every job of an app.
    App,
    /// Every job of a tenant.
    Tenant,
}

impl PauseScope {
    /// The wire name, e.g. `app`.
    pub fn as_str(self) -> &'static str {
        match self {
            PauseScope::Job => "job",
            PauseScope::App => "app",
            PauseScope::Tenant => "tenant",
        }
    }
}

/// Why a job does not fire: the pause that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PauseInfo {
    /// The job itself, its app or its tenant.
    pub scope: PauseScope,
    /// The operator's note, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was paused.
    pub at: DateTime<Utc>,
}

/// One row of `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobSummary {
    /// The job id.
    pub id: String,
    /// The app whose handler runs it.
    pub app: String,
    /// Its tenant, if any.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Its state.
    pub state: JobState,
    /// Its kind of schedule.
    pub kind: JobKind,
    /// The next fire time, if any is left.
    #[serde(default)]
    pub next_due: Option<DateTime<Utc>>,
    /// The schedule in one line: `once`, `cron 0 9 * * 1-5 Asia/Dhaka`, `every 30s`.
    pub schedule: String,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The pause that holds it, when `paused` or `held`.
    #[serde(default)]
    pub paused: Option<PauseInfo>,
    /// When it was first stored (what `order=created` sorts by).
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// JSON passed through as it is, byte for byte (a job spec with its payload as submitted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(pub Box<serde_json::value::RawValue>);

impl RawJson {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parsed, for reading fields.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// Answer of `GET /v1/jobs`: one page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// The jobs of this page, in the requested order.
    pub jobs: Vec<JobSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// What started a fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FireOrigin {
    /// The job's schedule.
    Schedule,
    /// `POST /v1/jobs/{id}/trigger`.
    Trigger,
    /// `POST /v1/jobs/{id}/backfill`.
    Backfill,
}

/// How a fire ended, as far as is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FireOutcome {
    /// Published, not run yet.
    Pending,
    /// A worker runs it.
    Running,
    /// Its run succeeded.
    Succeeded,
    /// Its run failed; a retry is scheduled.
    Retrying,
    /// Its run failed for good.
    Dead,
    /// No run state is known (expired).
    Unknown,
}

/// One past fire of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FireSummary {
    /// The fire id (`sked-fire-id`).
    pub fire_id: String,
    /// The scheduled instant.
    pub due_at: DateTime<Utc>,
    /// When it was published, if it was.
    #[serde(default)]
    pub fired_at: Option<DateTime<Utc>>,
    /// `fired_at - due_at`, in milliseconds.
    #[serde(default)]
    pub lateness_ms: Option<i64>,
    /// What started it.
    pub origin: FireOrigin,
    /// How it ended.
    pub outcome: FireOutcome,
    /// Attempts made, when known.
    #[serde(default)]
    pub attempts: Option<u32>,
}

/// A slot of a recurring job that did not fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SlotSummary {
    /// The slot's due time.
    pub due_at: DateTime<Utc>,
    /// When the scheduler passed it over.
    pub noted_at: DateTime<Utc>,
    /// `skipped` (missed, and dropped by the misfire policy, or beyond `max_runs`) or
    /// `excluded` (on a day an attached calendar excludes).
    pub outcome: String,
}

/// Lifetime counters of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Counters {
    /// Fires published.
    pub fired: u64,
    /// Fire times missed (scheduler down) and caught up on.
    pub missed: u64,
    /// Fire times skipped by the misfire policy.
    pub skipped: u64,
    /// Fire times on days an attached calendar excludes (not fired).
    #[serde(default)]
    pub excluded: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Runs dead-lettered.
    pub dead: u64,
    /// Fires started by `trigger`.
    pub triggered: u64,
    /// Fires started by `backfill`.
    pub backfilled: u64,
}

/// The worker's latest run of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunInfo {
    /// `running`, `succeeded`, `retrying`, `dead`, ...
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, if an attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// How long the last attempt took, in milliseconds.
    #[serde(default)]
    pub last_duration_ms: Option<u64>,
    /// The fire it ran.
    #[serde(default)]
    pub fire_id: Option<String>,
    /// When the run state last changed.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// One finished attempt of a run, as the worker recorded it (the latest `worker.attempts_kept`
/// of a job, default 20, each for `redis.idempotency_ttl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptInfo {
    /// The fire it ran.
    pub fire_id: String,
    /// Execution attempt of that fire (1 = first).
    pub attempt: u32,
    /// Times the fire had been replayed from the DLQ (0 = never).
    #[serde(default)]
    pub replay: u32,
    /// `succeeded`, `retrying` (a retry is scheduled) or `dead` (dead-lettered).
    pub outcome: String,
    /// When the handler was called.
    pub started_at: DateTime<Utc>,
    /// When the worker recorded the outcome (after the retry or dead letter was out).
    pub finished_at: DateTime<Utc>,
    /// How long the handler took, in milliseconds.
    pub duration_ms: u64,
    /// The error, when it failed (at most 1 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The W3C trace id the attempt ran under (from `traceparent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The worker's host name (`HOSTNAME`: the pod on Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The Kafka headers of the fire record it ran (at most 32, values cut at 256 bytes).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Answer of `GET /v1/jobs/{id}`: everything about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobDescription {
    /// The job id.
    pub id: String,
    /// The app whose handler runs it.
    pub app: String,
    /// Its tenant, if any.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Its state.
    pub state: JobState,
    /// Its kind of schedule.
    pub kind: JobKind,
    /// The schedule in one line, as in [`JobSummary::schedule`].
    pub schedule: String,
    /// The schedule in plain English, e.g. "at 02:30, every day, America/New_York" (the text
    /// of `sked cron explain`).
    #[serde(default)]
    pub description: String,
    /// The exclusion calendars it attaches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calendars: Vec<String>,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The next fire time, if any is left.
    #[serde(default)]
    pub next_due: Option<DateTime<Utc>>,
    /// The version of the stored job: send it as `If-Match` with `PUT /v1/jobs/{id}`.
    pub etag: String,
    /// The pause that holds it, if any.
    #[serde(default)]
    pub paused: Option<PauseInfo>,
    /// The next `next` fire times (query `next`, default 5), leaving out the slots its
    /// calendars exclude.
    #[serde(default)]
    pub next: Vec<DateTime<Utc>>,
    /// The last `history` fires, newest first (query `history`).
    #[serde(default)]
    pub history: Vec<FireSummary>,
    /// A recurring job's latest slots that did not fire, newest first: at most 50, at most
    /// 10 noted per claim (after a long outage, the latest of them; `counters` has every
    /// one), each kept 30 days after the latest.
    #[serde(default)]
    pub slots: Vec<SlotSummary>,
    /// Lifetime counters.
    #[serde(default)]
    pub counters: Counters,
    /// The worker's latest run, if any.
    #[serde(default)]
    pub run: Option<RunInfo>,
    /// Its latest finished attempts, newest first (`worker.attempts_kept`, default 20, each
    /// kept for `redis.idempotency_ttl`).
    #[serde(default)]
    pub attempts: Vec<AttemptInfo>,
    /// The stored job spec, as JSON; its `payload` exactly as submitted (numbers keep their
    /// digits, strings their escapes).
    #[schema(value_type = Object)]
    pub job: RawJson,
}

/// Body of `POST /v1/jobs/{id}/pause`, `/v1/apps/{app}/pause` and `/v1/tenants/{tenant}/pause`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why, for the next operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Body of `POST /v1/jobs/{id}/trigger`: fire now, once, outside the schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// Idempotency key: the same key gives the same fire id, so a retried request fires once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Body of `POST /v1/jobs/{id}/backfill`: fire every scheduled time in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// First instant, inclusive.
    pub from: DateTime<Utc>,
    /// Last instant, exclusive.
    pub to: DateTime<Utc>,
}

/// Body of `POST /v1/jobs/{id}/reschedule`: move the next fire; exactly one field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// The new time: RFC 3339, or a local time in the job's zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<String>,
    /// From now, e.g. `15m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
}

/// Answer of the job verbs (pause, resume, trigger, backfill, reschedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActionResponse {
    /// The job id.
    pub id: String,
    /// What happened, e.g. `paused`, `already_paused`, `resumed`, `triggered`, `backfilled`,
    /// `rescheduled`.
    pub status: String,
    /// The fires started (trigger, backfill).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fire_ids: Vec<String>,
    /// The next fire time after the change, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
}

/// Answer of the app and tenant pause and resume calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScopeResponse {
    /// `app` or `tenant`.
    pub scope: PauseScope,
    /// The app or tenant name.
    pub name: String,
    /// `paused`, `already_paused`, `resumed` or `not_paused`.
    pub status: String,
}

/// One app or tenant pause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScopePause {
    /// `app` or `tenant`.
    pub scope: PauseScope,
    /// The app or tenant name.
    pub name: String,
    /// The operator's note, if any.
    #[serde(default)]
    pub note: Option<String>,
    /// When it was paused.
    pub at: DateTime<Utc>,
}

/// Answer of `GET /v1/pauses`: every app and tenant pause in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PauseList {
    /// The pauses, by scope then name.
    pub pauses: Vec<ScopePause>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in JobState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(state.as_str().parse::<JobState>().unwrap(), state);
        }
        assert!("pending".parse::<JobState>().is_err());
    }

    #[test]
    fn optional_answer_fields_are_left_out() {
        let a = ActionResponse {
            id: "a".into(),
            status: "paused".into(),
            fire_ids: vec![],
            due_at: None,
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"id":"a","status":"paused"}"#
        );
        let s: SubmitResponse = serde_json::from_str(r#"{"id":"b","status":"duplicate"}"#).unwrap();
        assert_eq!(s.status, SubmitStatus::Duplicate);
    }
}
