//! The DLQ API, served by the replayer on `replayer.listen_addr` (the `sked dlq` commands):
//!
//! | call | answer |
//! |---|---|
//! | `GET /v1/dlq?<`[`LetterQuery`]`>` | [`LetterList`] |
//! | `GET /v1/dlq/stats?<filters>` | [`DlqStats`] |
//! | `GET /v1/dlq/{partition}/{offset}` | [`LetterDetail`] |
//! | `POST /v1/dlq/replays` with a [`ReplayRequest`] | [`ReplayProgress`] (202 started, 200 dry run or done) |
//! | `GET /v1/dlq/replays?limit=<n>` | [`ReplayList`]: the latest replays, newest first |
//! | `GET /v1/dlq/replays/{id}` | [`ReplayProgress`] |
//!
//! The JSON of these types is the replayer's wire format and the stored form of a replay
//! ([`ReplaySpec`]): field names and shapes do not change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Default `limit` of `GET /v1/dlq`.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` of `GET /v1/dlq`.
pub const MAX_LIMIT: usize = 10_000;

/// The replays the replayer keeps in its history (`GET /v1/dlq/replays`): the latest, dry runs
/// included; each also expires a week after it finished.
pub const REPLAY_HISTORY: usize = 1_000;
/// Default `limit` of `GET /v1/dlq/replays`.
pub const DEFAULT_REPLAYS: usize = 50;

/// Offsets per partition.
pub type Offsets = BTreeMap<i32, i64>;

/// Filters of the list, stats and replay calls; every given filter must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DlqFilter)]
pub struct Filter {
    /// `sked-app` equals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// `sked-reason` equals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `sked-stage` equals (`ingest` or `execute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `error-message` contains this text (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failed at or after: RFC 3339 or epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Failed before: RFC 3339 or epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `sked-job-id` equals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// `sked-tenant` equals. A token bound to tenants always filters by one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Order of a letter list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DlqOrder)]
pub enum Order {
    /// Newest failure first (`error-timestamp` descending, then partition and offset).
    #[default]
    Newest,
    /// DLQ order: partition, then offset, ascending.
    Offset,
}

/// Query of `GET /v1/dlq` and `GET /v1/dlq/stats` (stats ignores `limit` and `order`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LetterQuery {
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Most letters, 1 to 10000; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Order of the list; default `newest`.
    #[serde(default)]
    pub order: Order,
}

impl LetterQuery {
    /// The filters of the query.
    pub fn filter(&self) -> Filter {
        Filter {
            app: self.app.clone(),
            reason: self.reason.clone(),
            stage: self.stage.clone(),
            error: self.error.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            job_id: self.job_id.clone(),
            tenant: self.tenant.clone(),
        }
    }
}

/// The summary of one dead letter (a row of `sked dlq ls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Letter {
    /// DLQ partition.
    pub partition: i32,
    /// DLQ offset.
    pub offset: i64,
    /// When it failed (`error-timestamp`, else the record's timestamp).
    pub at: Option<DateTime<Utc>>,
    /// `sked-app`.
    pub app: Option<String>,
    /// `sked-stage`: ingest | execute.
    pub stage: Option<String>,
    /// `sked-reason` (else `error-reason`).
    pub reason: Option<String>,
    /// `sked-job-id`.
    pub job_id: Option<String>,
    /// `sked-tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `error-message`.
    pub error: Option<String>,
    /// `original-topic`: where a replay publishes it by default.
    pub original_topic: Option<String>,
    /// `sked-attempts`.
    pub attempts: Option<u32>,
    /// `sked-replay-count` (0 when never replayed).
    pub replay_count: u32,
}

impl Letter {
    /// `at` in epoch ms; `i64::MIN` when unknown (sorts last among the newest).
    pub fn at_ms(&self) -> i64 {
        self.at.map_or(i64::MIN, |t| t.timestamp_millis())
    }
}

/// Bytes shown as UTF-8 text when they are valid UTF-8, else as base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bytes {
    /// Valid UTF-8.
    Text(String),
    /// Anything else, standard base64 with padding.
    Base64(String),
}

impl Bytes {
    /// Text or base64 of `raw`.
    pub fn of(raw: &[u8]) -> Self {
        match std::str::from_utf8(raw) {
            Ok(s) => Bytes::Text(s.to_owned()),
            Err(_) => Bytes::Base64(base64(raw)),
        }
    }
}

/// Standard base64 with padding.
pub fn base64(raw: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(raw.len().div_ceil(3) * 4);
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One dead letter in full (`sked dlq show`): answer of `GET /v1/dlq/{partition}/{offset}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LetterDetail {
    /// The summary.
    #[serde(flatten)]
    pub letter: Letter,
    /// The record's Kafka timestamp.
    pub timestamp: Option<DateTime<Utc>>,
    /// Every header, by name (the last occurrence wins); values as text, or base64 when not
    /// UTF-8 (`null` for a header without value).
    #[schema(value_type = BTreeMap<String, Bytes>)]
    pub headers: BTreeMap<String, Option<Bytes>>,
    /// The key.
    pub key: Option<Bytes>,
    /// The value: the original bytes, unchanged.
    pub value: Option<Bytes>,
}

/// Answer of `GET /v1/dlq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LetterList {
    /// The first `limit` matching letters, in `order`.
    pub letters: Vec<Letter>,
    /// Letters that matched.
    pub matched: u64,
    /// Index entries examined to answer.
    pub scanned: u64,
    /// The order of `letters`.
    pub order: Order,
    /// The state of the DLQ index the answer was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexState>,
}

/// The DLQ index (kept in Redis by the replayer from the DLQ topic) at the time of an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = DlqIndexState)]
pub struct IndexState {
    /// Letters in the index.
    pub letters: u64,
    /// The indexer reached the end of every partition of the DLQ in its last read (within
    /// the last 30 s): letters dead-lettered before that are in the index.
    pub caught_up: bool,
    /// Letters that left the index at `replayer.index_max_letters` (they are still in the
    /// topic until its retention ends; `complete` is false once any did).
    pub evicted: u64,
    /// `caught_up` and nothing evicted: the answer covers every letter of the topic.
    pub complete: bool,
}

/// Counts by app, reason and stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    /// Letters counted.
    pub total: u64,
    /// By `sked-app` (`-` when absent).
    pub by_app: BTreeMap<String, u64>,
    /// By `sked-reason` (`-` when absent).
    pub by_reason: BTreeMap<String, u64>,
    /// By `sked-stage` (`-` when absent).
    pub by_stage: BTreeMap<String, u64>,
}

impl Counts {
    /// Counts one letter.
    pub fn add(&mut self, l: &Letter) {
        self.total += 1;
        let key = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        *self.by_app.entry(key(&l.app)).or_default() += 1;
        *self.by_reason.entry(key(&l.reason)).or_default() += 1;
        *self.by_stage.entry(key(&l.stage)).or_default() += 1;
    }
}

/// Answer of `GET /v1/dlq/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlqStats {
    /// The counts of matching letters.
    #[serde(flatten)]
    pub counts: Counts,
    /// Index entries examined to answer (0 when the counters answered).
    pub scanned: u64,
    /// The state of the DLQ index the answer was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexState>,
}

/// `POST /v1/dlq/replays` body: the list filters plus what the replay does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// See [`Filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Replay at most this many letters: the first ones in DLQ order (partition, offset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Select and count only; publish nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Records per second; 0 = unlimited; default `replayer.replay_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    /// Publish every letter here instead of its `original-topic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_topic: Option<String>,
}

impl ReplayRequest {
    /// The filters of the request.
    pub fn filter(&self) -> Filter {
        Filter {
            app: self.app.clone(),
            reason: self.reason.clone(),
            stage: self.stage.clone(),
            error: self.error.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            job_id: self.job_id.clone(),
            tenant: self.tenant.clone(),
        }
    }
}

/// What a replay is, fixed when it starts (also its stored form in Redis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplaySpec {
    /// Replay id.
    pub id: String,
    /// Filters.
    pub filter: Filter,
    /// Most letters.
    pub limit: Option<usize>,
    /// Publish nothing.
    pub dry_run: bool,
    /// Records per second, 0 = unlimited.
    pub rate: u32,
    /// Target override.
    pub target_topic: Option<String>,
    /// `replayer.max_replays` when it started.
    pub max_replays: u32,
    /// Creation, epoch ms.
    pub created_at: i64,
    /// Per DLQ partition, the offset after the last record the selection read.
    #[serde(deserialize_with = "offsets")]
    #[schema(value_type = BTreeMap<String, i64>)]
    pub dlq_ends: Offsets,
    /// High watermarks of every target topic before anything was published: a resume reads
    /// them from there.
    #[serde(deserialize_with = "offsets_by_topic")]
    #[schema(value_type = BTreeMap<String, BTreeMap<String, i64>>)]
    pub targets: BTreeMap<String, Offsets>,
    /// Letters to publish.
    pub selected: u64,
    /// Letters skipped: `sked-replay-count` reached `max_replays`.
    pub skipped_max_replays: u64,
    /// Letters skipped: no `original-topic` and no override.
    pub skipped_no_target: u64,
    /// Letters skipped: another selected letter failed at the same original position (one
    /// failure dead-lettered twice, e.g. a crash between the letter's ack and the commit).
    #[serde(default)]
    pub skipped_duplicates: u64,
    /// Letters to publish, by target topic.
    pub by_target: BTreeMap<String, u64>,
}

/// Partition numbers are JSON object keys, i.e. strings: read them as such, so that
/// [`ReplayProgress`] (which flattens the spec, and serde buffers flattened maps with string
/// keys) reads back too.
fn partition_keys<E: serde::de::Error>(raw: BTreeMap<String, i64>) -> Result<Offsets, E> {
    raw.into_iter()
        .map(|(p, o)| {
            p.parse::<i32>()
                .map(|p| (p, o))
                .map_err(|_| E::custom(format_args!("partition `{p}` is not a whole number")))
        })
        .collect()
}

fn offsets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Offsets, D::Error> {
    partition_keys(BTreeMap::<String, i64>::deserialize(d)?)
}

fn offsets_by_topic<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Offsets>, D::Error> {
    BTreeMap::<String, BTreeMap<String, i64>>::deserialize(d)?
        .into_iter()
        .map(|(t, raw)| Ok((t, partition_keys(raw)?)))
        .collect()
}

/// The answer of the replay endpoints: the spec plus progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplayProgress {
    /// What the replay is.
    #[serde(flatten)]
    pub spec: ReplaySpec,
    /// `running` | `done`.
    pub status: String,
    /// Letters on the target topics so far (including those found there on resume).
    pub published: u64,
    /// Letters found already published when the replay resumed.
    pub already_published: u64,
    /// Selected letters no longer in the DLQ (retention) when published.
    pub missing: u64,
    /// Times the replay was resumed.
    pub resumes: u64,
    /// When it finished, epoch ms.
    pub finished_at: Option<i64>,
    /// The last error that made it resume.
    pub last_error: Option<String>,
}

/// `GET /v1/dlq/replays` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    /// At most this many replays, 1 to [`REPLAY_HISTORY`]; default [`DEFAULT_REPLAYS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// The answer of `GET /v1/dlq/replays`: the latest replays the caller may see, newest first.
/// The history holds the latest [`REPLAY_HISTORY`] replays of every tenant, so a caller bound
/// to a tenant may see fewer than `limit` even when it has older ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplayList {
    /// The replays, newest first.
    pub replays: Vec<ReplayProgress>,
}

#[cfg(test)]
mod tests;
