//! What the replay endpoints take and answer: the [`Request`], the replay's fixed [`Spec`]
//! (also its stored form), its [`Progress`] (all three `sked_api::dlq` wire types), and the
//! [`Error`] of every replay call.

use crate::scan;

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
pub type Request = sked_api::dlq::ReplayRequest;

/// What a replay is, fixed when it starts (the `spec` field of its hash).
pub type Spec = sked_api::dlq::ReplaySpec;

/// The answer of the replay endpoints.
pub type Progress = sked_api::dlq::ReplayProgress;
