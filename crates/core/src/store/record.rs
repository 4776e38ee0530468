//! The job record as stored: `<16 hex fingerprint><state char><JSON spec>`.
//!
//! The fingerprint (a hash of the request bytes) tells a redelivered or retried request (same
//! bytes, same job) from an update (same id, other bytes) inside a Lua script without parsing
//! JSON; the state char lets scripts change state
//! with one `SETRANGE`. Lua never decodes the JSON, so payload numbers cannot be mangled.

use chrono::{DateTime, Utc};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use crate::request::JobSpec;

/// Offset of the state char in a record.
pub(crate) const STATE_OFFSET: usize = 16;
/// Offset of the JSON spec in a record.
const SPEC_OFFSET: usize = 17;

/// Where a job is in its life. Stored as one char; upper case marks a recurring job.
///
/// ```text
/// scheduled (s|S) --claim--> firing (f|F) --ack--> dispatched (d)        one-shot, or last fire
///      ^                        |   \--ack, next fire--> scheduled (S)   recurring
///      \------lease expired-----/
/// scheduled --cancel--> cancelled (c);  firing (F) --cancel--> cancelled after this fire
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum JobState {
    /// Waiting in the due index for its next fire.
    Scheduled,
    /// Claimed by a scheduler, which is producing the fire.
    Firing,
    /// The last fire went out to the due topic.
    Dispatched,
    /// Cancelled; no further fire. The record expires.
    Cancelled,
}

impl JobState {
    /// The one-char code stored in the record.
    pub(crate) fn code(self, recurring: bool) -> char {
        match (self, recurring) {
            (JobState::Scheduled, false) => 's',
            (JobState::Scheduled, true) => 'S',
            (JobState::Firing, false) => 'f',
            (JobState::Firing, true) => 'F',
            (JobState::Dispatched, _) => 'd',
            (JobState::Cancelled, _) => 'c',
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            b's' | b'S' => Some(JobState::Scheduled),
            b'f' | b'F' => Some(JobState::Firing),
            b'd' => Some(JobState::Dispatched),
            b'c' => Some(JobState::Cancelled),
            _ => None,
        }
    }
}

/// A job as read back from the store.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// Current state.
    pub state: JobState,
    /// Next due instant, if the job is in the due index.
    pub next_due: Option<DateTime<Utc>>,
    /// The request as accepted.
    pub spec: JobSpec,
}

/// The fingerprint of a request's bytes.
pub(crate) fn fingerprint(request: &[u8]) -> u64 {
    xxh3_64(request)
}

/// Serializes a spec into a record with the given state; returns (fingerprint, record).
pub(crate) fn encode(
    spec: &JobSpec,
    fingerprint: u64,
    state: JobState,
) -> Result<(String, String), serde_json::Error> {
    let json = serde_json::to_string(spec)?;
    let fp = format!("{fingerprint:016x}");
    let mut record = String::with_capacity(SPEC_OFFSET + json.len());
    record.push_str(&fp);
    record.push(state.code(spec.schedule.is_recurring()));
    record.push_str(&json);
    Ok((fp, record))
}

/// Parses a stored record.
pub(crate) fn decode(raw: &[u8]) -> Result<(JobState, JobSpec), String> {
    if raw.len() <= SPEC_OFFSET {
        return Err(format!("record too short ({} bytes)", raw.len()));
    }
    let state = JobState::from_code(raw[STATE_OFFSET])
        .ok_or_else(|| format!("unknown state code {:?}", raw[STATE_OFFSET] as char))?;
    let spec =
        serde_json::from_slice(&raw[SPEC_OFFSET..]).map_err(|e| format!("bad spec json: {e}"))?;
    Ok((state, spec))
}
