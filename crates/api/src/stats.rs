//! Counts (`GET /v1/stats`) and schedule previews (`POST /v1/schedules/preview`), both on the
//! ingest service.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
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
    /// Usage of every configured quota (`[quotas]`) the caller may see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<QuotaUsage>,
}

/// Answer of `GET /v1/whoami`: who the bearer token is and what it may do (the console's
/// roles follow `scopes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Whoami {
    /// The token's name, `jwt:<sub>`, or `anonymous` when auth is off.
    pub actor: String,
    /// How it was authenticated: `token`, `jwt` or `open`.
    pub via: String,
    /// Its scopes (`admin` implies every other).
    pub scopes: Vec<String>,
    /// The tenants it acts for; absent: every tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
}

/// Answer of `GET /v1/cluster`: what the due index and the consumer groups look like now,
/// refreshed by the ingest service every few seconds (`at`), and the warnings that hold now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Cluster {
    /// When these figures were read.
    pub at: DateTime<Utc>,
    /// The due index.
    pub due: DueIndex,
    /// Each service's consumer group: members and lag per partition.
    pub groups: Vec<GroupLag>,
    /// What needs an operator now, e.g. "the scheduler is behind by 45 s"; empty when all is
    /// well.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Throughput between this read and the one before; absent on the first read and when
    /// a group or topic could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<Rates>,
    /// The sked processes that announced themselves lately, by service then host.
    #[serde(default)]
    pub replicas: Vec<Replica>,
    /// Firing lateness over the last minute, merged from what every scheduler announced;
    /// absent when no scheduler runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness: Option<Lateness>,
    /// What Redis holds; absent when it could not be read (a warning says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisMemory>,
}

/// Fired minus due of the fires of the last [`Lateness::seconds`], over every scheduler.
/// The quantiles are the upper bound of the histogram bucket they fall in (the buckets step
/// 1, 1.5, 2, 3, 5, 7 per decade, from 0.1 ms), never more than `max_ms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Lateness {
    /// The window: the last minute.
    pub seconds: u32,
    /// Fires published in it.
    pub fires: u64,
    /// Median lateness, ms (absent with no fires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// The latest fire in the window, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
}

/// A scheduler's firing lateness over its last minute, as a histogram (what it announces;
/// [`Lateness`] is the merge over every scheduler).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LatenessWindow {
    /// Seconds the window spans.
    pub seconds: u32,
    /// Upper bounds of the buckets, µs, rising; one more bucket above the last is implied.
    pub bounds_us: Vec<u64>,
    /// Fires per bucket: one more than `bounds_us`.
    pub counts: Vec<u64>,
    /// The largest lateness in the window, µs.
    pub max_us: u64,
}

impl LatenessWindow {
    /// The merge of `windows` (those whose buckets differ from the first's are left out: a
    /// scheduler of another version), as quantiles; `None` when `windows` is empty.
    pub fn merge<'a>(windows: impl IntoIterator<Item = &'a LatenessWindow>) -> Option<Lateness> {
        let mut windows = windows.into_iter();
        let first = windows.next()?;
        let mut counts = first.counts.clone();
        let mut max_us = first.max_us;
        for w in windows {
            if w.bounds_us != first.bounds_us || w.counts.len() != counts.len() {
                continue;
            }
            for (sum, n) in counts.iter_mut().zip(&w.counts) {
                *sum += n;
            }
            max_us = max_us.max(w.max_us);
        }
        let fires: u64 = counts.iter().sum();
        let ms = |us: u64| us as f64 / 1000.0;
        let quantile = |q: f64| {
            let rank = ((q * fires as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    let bound = first.bounds_us.get(i).copied().unwrap_or(max_us);
                    return ms(bound.min(max_us));
                }
            }
            ms(max_us)
        };
        Some(Lateness {
            seconds: first.seconds,
            fires,
            p50_ms: (fires > 0).then(|| quantile(0.5)),
            p99_ms: (fires > 0).then(|| quantile(0.99)),
            max_ms: (fires > 0).then(|| ms(max_us)),
        })
    }
}

/// Redis memory (`INFO memory` of every primary) against the jobs it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RedisMemory {
    /// `used_memory`, summed over the primaries: everything sked keeps, not only jobs.
    pub used_bytes: u64,
    /// Primaries read (1 without Redis Cluster).
    pub nodes: u32,
    /// Jobs that will still fire (scheduled, paused, held, firing).
    pub pending: u64,
    /// `used_bytes / pending`, when anything is pending: an upper bound of a job's cost, as
    /// it includes every other key (the DLQ index, histories, the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_pending: Option<u64>,
}

/// One running sked process, as it last announced itself (every 5 s; listed until 20 s
/// without news, and gone at once when it drains).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Replica {
    /// `ingest`, `scheduler`, `worker` or `replayer`.
    pub service: String,
    /// Random, new at every start.
    pub id: String,
    /// The host name (`HOSTNAME`: the pod's name on Kubernetes).
    pub host: String,
    /// The sked version it runs.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last announced itself.
    pub seen_at: DateTime<Utc>,
    /// Its own counts since it started: a scheduler's `claimed`, `fired` and `early` (fires
    /// published before their due time: always 0 unless something is wrong), a worker's
    /// `in_flight` (fires read and not finished).
    #[serde(default)]
    pub figures: BTreeMap<String, i64>,
    /// A scheduler's firing lateness over its last minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness: Option<LatenessWindow>,
}

/// Throughput between two reads of the figures (about 5 s apart), from how far the topics'
/// high watermarks and the groups' committed offsets moved: cluster-wide, whichever replica
/// did the work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rates {
    /// Seconds between the two reads.
    pub seconds: f64,
    /// Requests the ingest group read from the ingest topics (REST submissions are not on a
    /// topic and are not counted).
    pub ingested_per_s: f64,
    /// Fires published to the due topics (the shared one and every app's), replays included.
    pub fired_per_s: f64,
    /// Fires the worker group is done with (committed), whatever the outcome.
    pub executed_per_s: f64,
    /// Failed runs sent to the retry topic.
    pub retried_per_s: f64,
    /// Records sent to the DLQ (by ingest and by the worker).
    pub dead_lettered_per_s: f64,
    /// (retried + dead-lettered) / executed, when anything was executed. Dead letters of
    /// ingest (malformed requests) count too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
}

/// The due index over every shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DueIndex {
    /// Jobs in the due index (waiting for a future or a past due time).
    pub indexed: u64,
    /// Of those, due now or earlier: what the schedulers have not claimed yet.
    pub due_now: u64,
    /// Claimed by a scheduler and being published.
    pub in_flight: u64,
    /// The earliest due time in the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_due_at: Option<DateTime<Utc>>,
    /// How far behind the schedulers are: now minus the earliest due time, when it has passed
    /// (0 otherwise).
    pub behind_ms: i64,
}

/// One consumer group of sked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupLag {
    /// `ingest`, `worker` or `replayer`.
    pub service: String,
    /// The group id.
    pub group: String,
    /// Members the broker reports in the group, when it tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<u32>,
    /// Records not yet committed, over every partition.
    pub lag: i64,
    /// Per partition.
    #[serde(default)]
    pub partitions: Vec<PartitionLag>,
    /// Why the group could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One partition of a group's topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset (the low watermark when none).
    pub committed: i64,
    /// The high watermark.
    pub high: i64,
    /// `high - committed`.
    pub lag: i64,
    /// How long the committed offset has not moved while there was lag, in ms (0: moving or
    /// no lag).
    #[serde(default)]
    pub still_ms: i64,
}

/// One quota and its use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaUsage {
    /// `tenant` or `app`.
    pub scope: String,
    /// The tenant or app.
    pub name: String,
    /// Its pending jobs now.
    pub pending: u64,
    /// Most pending jobs; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending: Option<u64>,
    /// Most submissions per second; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit_rate: Option<u32>,
    /// Submissions refused by this ingest replica since it started.
    pub rejected: u64,
}

/// What to do with a local time in a DST gap (clocks jump forward).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DstGap {
    /// Fire at the first instant after the gap (default).
    #[default]
    Shift,
    /// Do not fire.
    Skip,
}

/// What to do with a local time in a DST overlap (clocks fall back).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DstOverlap {
    /// Fire at the first occurrence (default).
    #[default]
    First,
    /// Fire at each occurrence.
    Both,
    /// Fire at the second occurrence.
    Last,
}

/// A schedule's DST policy; both keys optional.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct DstPolicy {
    /// Local times in a gap: `shift` (default) or `skip`.
    #[serde(default)]
    pub gap: DstGap,
    /// Local times in an overlap: `first` (default), `both` or `last`.
    #[serde(default)]
    pub overlap: DstOverlap,
}

/// How the day-of-month and day-of-week fields of a cron expression combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DomDow {
    /// A day matches if either field matches.
    Or,
    /// A day matches if both fields match.
    And,
}

/// Body of `POST /v1/schedules/preview`: exactly one of `cron` and `every`, and `n` or `to`
/// (default `n` = 10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// A cron expression, as in a schedule request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// An interval, e.g. `30m`, on the grid `start_at + k * every` (default `start_at`: `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// The anchor of an `every` grid; default `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<DateTime<Utc>>,
    /// IANA zone of `cron` (and of the local times shown); default the server's
    /// `default_timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// DST policy of `cron`; default `{"gap": "shift", "overlap": "first"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<DstPolicy>,
    /// Day rule of `cron`; default the Vixie rule (see docs/schedules.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dom_dow: Option<DomDow>,
    /// Names of exclusion calendars: slots on their days are listed as `excluded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calendars: Vec<String>,
    /// First instant to consider (inclusive); default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Last instant to consider (inclusive), at most 3660 days after `from`; cannot be combined
    /// with `n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Most fire times, 1 to 10000; default 10 when `to` is not given. Skipped and excluded
    /// slots are listed but not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
}

/// One slot of a previewed schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PreviewSlot {
    /// The instant (for a skipped slot: where the gap ends).
    pub at: DateTime<Utc>,
    /// The wall-clock time in the zone at `at`, e.g. `2026-03-08T03:00:00`.
    pub local: String,
    /// The zone's UTC offset then, e.g. `-04:00`.
    pub offset: String,
    /// For a gap-shifted or skipped slot, the wall time the expression named (in the gap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nominal: Option<String>,
    /// `gap_shifted`, `overlap_first`, `overlap_second`, `skipped` (in a gap under `skip`: does
    /// not fire) or `excluded` (on a day of a calendar: does not fire); empty for an ordinary
    /// slot.
    #[serde(default)]
    pub annotations: Vec<String>,
    /// The calendar that excludes the slot, for `excluded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
}

/// Answer of `POST /v1/schedules/preview`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PreviewResponse {
    /// The schedule in plain English, e.g. "at 02:30, every day, America/New_York".
    #[serde(default)]
    pub description: String,
    /// The zone of the local times.
    #[serde(default)]
    pub timezone: String,
    /// The slots, soonest first.
    pub slots: Vec<PreviewSlot>,
}

#[cfg(test)]
mod lateness_tests {
    use super::*;

    fn window(counts: Vec<u64>, max_us: u64) -> LatenessWindow {
        LatenessWindow {
            seconds: 60,
            bounds_us: vec![1_000, 2_000, 5_000],
            counts,
            max_us,
        }
    }

    #[test]
    fn merged_quantiles_are_bucket_bounds_capped_by_the_max() {
        // 60 fires under 1 ms, 39 under 2 ms, 1 at 40 ms (above every bound).
        let a = window(vec![60, 0, 0, 0], 900);
        let b = window(vec![0, 39, 0, 1], 40_000);
        let l = LatenessWindow::merge([&a, &b]).unwrap();
        assert_eq!(l.fires, 100);
        assert_eq!(l.p50_ms, Some(1.0));
        assert_eq!(l.p99_ms, Some(2.0));
        assert_eq!(l.max_ms, Some(40.0));
        // One scheduler alone: capped by its max, not its bucket's bound.
        let l = LatenessWindow::merge([&a]).unwrap();
        assert_eq!(
            (l.p50_ms, l.p99_ms, l.max_ms),
            (Some(0.9), Some(0.9), Some(0.9))
        );
        // The overflow bucket's quantile is the max.
        let c = window(vec![0, 0, 0, 3], 7_500);
        assert_eq!(LatenessWindow::merge([&c]).unwrap().p50_ms, Some(7.5));
    }

    #[test]
    fn no_fires_no_quantiles_and_other_buckets_are_left_out() {
        let empty = window(vec![0, 0, 0, 0], 0);
        let l = LatenessWindow::merge([&empty]).unwrap();
        assert_eq!((l.fires, l.p50_ms, l.max_ms), (0, None, None));
        assert!(LatenessWindow::merge([]).is_none());
        let other = LatenessWindow {
            bounds_us: vec![10],
            counts: vec![5, 5],
            ..empty.clone()
        };
        assert_eq!(LatenessWindow::merge([&empty, &other]).unwrap().fires, 0);
    }
}
