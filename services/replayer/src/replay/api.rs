//! What the replay endpoints take and answer: the [`Request`], the replay's fixed [`Spec`]
//! (also its stored form), its [`Progress`], and the [`Error`] of every replay call.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    letter::Filter,
    scan::{self, Offsets},
};

/// A replay failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not valid.
    #[error("{0}")]
    Invalid(String),
    /// No such replay.
    #[error("replay {0} not found")]
    NotFound(String),
    /// Reading Kafka failed.
    #[error(transparent)]
    Scan(#[from] scan::Error),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Publishing failed; the replay resumes.
    #[error("publish to {topic} failed: {error}")]
    Publish {
        /// Target topic.
        topic: String,
        /// Why.
        error: rdkafka::error::KafkaError,
    },
    /// A stored replay cannot be read.
    #[error("replay {id} is corrupt: {reason}")]
    Corrupt {
        /// The replay.
        id: String,
        /// Why.
        reason: String,
    },
    /// The lease was lost or the service is stopping; the replay resumes later.
    #[error("replay interrupted")]
    Interrupted,
}

/// `POST /v1/dlq/replays` body: the list filters plus what the replay does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// See [`Filter`].
    #[serde(default)]
    pub app: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub reason: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub stage: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub error: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub since: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub until: Option<String>,
    /// See [`Filter`].
    #[serde(default)]
    pub job_id: Option<String>,
    /// Replay at most this many letters: the first ones in DLQ order (partition, offset).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Select and count only; publish nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Records per second; 0 = unlimited; default `replayer.replay_rate`.
    #[serde(default)]
    pub rate: Option<u32>,
    /// Publish every letter here instead of its `original-topic`.
    #[serde(default)]
    pub target_topic: Option<String>,
}

impl Request {
    pub(super) fn filter(&self) -> Filter {
        Filter {
            app: self.app.clone(),
            reason: self.reason.clone(),
            stage: self.stage.clone(),
            error: self.error.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            job_id: self.job_id.clone(),
        }
    }
}

/// What a replay is, fixed when it starts (the `spec` field of its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
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
    pub dlq_ends: Offsets,
    /// High watermarks of every target topic before anything was published: a resume reads
    /// them from there.
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

/// The answer of the replay endpoints.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// What the replay is.
    #[serde(flatten)]
    pub spec: Spec,
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
