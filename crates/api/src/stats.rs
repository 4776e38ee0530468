//! Counts (`GET /v1/stats`) and schedule previews (`POST /v1/schedules/preview`), both on the
//! ingest service.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Answer of `GET /v1/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    /// Jobs that will still fire (scheduled, paused, held, firing).
    pub pending: u64,
    /// Jobs by state name.
    #[serde(default)]
    pub by_state: BTreeMap<String, u64>,
    /// Pending jobs by app.
    #[serde(default)]
    pub by_app: BTreeMap<String, u64>,
    /// Pending jobs by tenant.
    #[serde(default)]
    pub by_tenant: BTreeMap<String, u64>,
}

/// Body of `POST /v1/schedules/preview`: exactly one of `cron` and `every`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// A cron expression, as in a schedule request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// An interval, e.g. `30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// IANA zone of `cron`; default the server's `default_timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// First instant to consider; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Stop before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Most slots, 1 to 1000; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
}

/// One fire time of a previewed schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PreviewSlot {
    /// The instant.
    pub at: DateTime<Utc>,
    /// The wall-clock time in the zone, e.g. `2026-03-29 09:00:00`.
    pub local: String,
    /// The zone's UTC offset then, e.g. `+06:00`.
    pub offset: String,
    /// Notes such as `dst_gap_shifted` or `dst_overlap_first`.
    #[serde(default)]
    pub annotations: Vec<String>,
}

/// Answer of `POST /v1/schedules/preview`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PreviewResponse {
    /// The fire times, soonest first.
    pub slots: Vec<PreviewSlot>,
}
