//! Bulk operations on the ingest service: `POST /v1/operations` acts on every job a
//! [`Selector`] matches, at a bounded rate, crash-safe, never twice on one job;
//! `GET /v1/operations`, `GET /v1/operations/{id}` and `POST /v1/operations/{id}/cancel`
//! follow and stop it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::query::Selector;

/// What an operation does to each selected job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationAction {
    /// Cancel the job (destructive).
    Cancel,
    /// Pause the job.
    Pause,
    /// Resume the job.
    Resume,
    /// Fire the job now, once.
    Trigger,
    /// Move the job's next fire by `offset` (destructive).
    Reschedule,
    /// Delete finished job records now instead of at their TTL (destructive).
    PurgeFinished,
}

impl OperationAction {
    /// Every action.
    pub const ALL: [OperationAction; 6] = [
        OperationAction::Cancel,
        OperationAction::Pause,
        OperationAction::Resume,
        OperationAction::Trigger,
        OperationAction::Reschedule,
        OperationAction::PurgeFinished,
    ];

    /// The wire name, e.g. `purge_finished`.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationAction::Cancel => "cancel",
            OperationAction::Pause => "pause",
            OperationAction::Resume => "resume",
            OperationAction::Trigger => "trigger",
            OperationAction::Reschedule => "reschedule",
            OperationAction::PurgeFinished => "purge_finished",
        }
    }

    /// True for the actions that cannot be undone by another operation.
    pub fn is_destructive(self) -> bool {
        matches!(
            self,
            OperationAction::Cancel | OperationAction::Reschedule | OperationAction::PurgeFinished
        )
    }
}

impl std::str::FromStr for OperationAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperationAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = OperationAction::ALL.iter().map(|a| a.as_str()).collect();
                format!("unknown action `{s}`, expected one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for OperationAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /v1/operations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationRequest {
    /// What to do to each job.
    pub action: OperationAction,
    /// Which jobs (the list filter).
    #[serde(default)]
    pub selector: Selector,
    /// Count the selected jobs only; change nothing (the answer's `estimate`).
    #[serde(default)]
    pub dry_run: bool,
    /// Jobs per second; default the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    /// `reschedule` only: move each next fire by this much, e.g. `+1h` or `-30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// Why, recorded in the operation's history (and as the pause note of `pause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where an operation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Accepted, not started.
    Pending,
    /// Acting on jobs.
    Running,
    /// Every selected job was handled.
    Succeeded,
    /// Stopped by `POST /v1/operations/{id}/cancel`.
    Cancelled,
    /// Stopped by an error (see its history).
    Failed,
}

impl OperationState {
    /// True when the operation will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OperationState::Succeeded | OperationState::Cancelled | OperationState::Failed
        )
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Pending => "pending",
            OperationState::Running => "running",
            OperationState::Succeeded => "succeeded",
            OperationState::Cancelled => "cancelled",
            OperationState::Failed => "failed",
        }
    }
}

/// One change of an operation's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OperationEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// The state entered.
    pub state: OperationState,
    /// What happened, for people.
    #[serde(default)]
    pub message: String,
}

/// A bulk operation: answer of `POST /v1/operations` (201, or 200 for a dry run),
/// `GET /v1/operations/{id}` and `POST /v1/operations/{id}/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Operation {
    /// The operation id.
    pub id: String,
    /// What it does.
    pub action: OperationAction,
    /// Which jobs.
    pub selector: Selector,
    /// Counted only.
    #[serde(default)]
    pub dry_run: bool,
    /// Jobs per second.
    #[serde(default)]
    pub rate: Option<u32>,
    /// `reschedule` offset.
    #[serde(default)]
    pub offset: Option<String>,
    /// Where it is.
    pub state: OperationState,
    /// Jobs the selector matched when it started: exact for a dry run; for a run, an upper
    /// bound read from the sizes of the indexes it reads (jobs matching only part of the
    /// selector included), so that a run starts without a counting pass.
    pub estimate: u64,
    /// Jobs handled so far.
    pub processed: u64,
    /// Jobs handled, by outcome (`cancelled`, `already_cancelled`, `skipped`, ...).
    #[serde(default)]
    pub outcomes: BTreeMap<String, u64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it ended, if it did.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Its state changes, oldest first.
    #[serde(default)]
    pub history: Vec<OperationEvent>,
}

/// Answer of `GET /v1/operations`: one page, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OperationList {
    /// The operations of this page.
    pub operations: Vec<Operation>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_defaults_and_names() {
        let r: OperationRequest =
            serde_json::from_str(r#"{"action":"purge_finished","selector":{"app":"sms"}}"#)
                .unwrap();
        assert_eq!(r.action, OperationAction::PurgeFinished);
        assert!(!r.dry_run && r.rate.is_none());
        assert!(r.action.is_destructive() && !OperationAction::Pause.is_destructive());
        assert!(serde_json::from_str::<OperationRequest>(r#"{"action":"explode"}"#).is_err());
        for a in OperationAction::ALL {
            assert_eq!(a.as_str().parse::<OperationAction>().unwrap(), a);
        }
    }
}
