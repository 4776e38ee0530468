//! Header names of ARCHITECTURE.md, in one place.

/// Topic the record was read from (Infinite-Scheduler name).
pub const ORIGINAL_TOPIC: &str = "original-topic";
/// Partition the record was read from.
pub const ORIGINAL_PARTITION: &str = "original-partition";
/// Offset the record was read from.
pub const ORIGINAL_OFFSET: &str = "original-offset";
/// Human-readable error.
pub const ERROR_MESSAGE: &str = "error-message";
/// When it failed, epoch ms.
pub const ERROR_TIMESTAMP: &str = "error-timestamp";
/// When it failed, ISO-8601 UTC (kafkakit name).
pub const FAILED_AT: &str = "failed-at";
/// Why it failed (kafkakit name; same value as `sked-reason`).
pub const ERROR_REASON: &str = "error-reason";
/// `ingest` or `execute`.
pub const SKED_STAGE: &str = "sked-stage";
/// Machine-readable reason.
pub const SKED_REASON: &str = "sked-reason";
/// Executions so far.
pub const SKED_ATTEMPTS: &str = "sked-attempts";
/// The job's app, when known.
pub const SKED_APP: &str = "sked-app";
/// The job id, when known.
pub const SKED_JOB_ID: &str = "sked-job-id";
/// The job's tenant, on dead letters.
pub const SKED_TENANT: &str = "sked-tenant";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Deterministic id of a fire.
pub const SKED_FIRE_ID: &str = "sked-fire-id";
/// Execution attempt (1 for a fresh fire).
pub const SKED_ATTEMPT: &str = "sked-attempt";
/// When the fire was due, epoch ms.
pub const SKED_DUE_AT: &str = "sked-due-at";
/// When the scheduler produced it, epoch ms.
pub const SKED_FIRED_AT: &str = "sked-fired-at";
/// When a retry record is due again, epoch ms.
pub const SKED_RETRY_AT: &str = "sked-retry-at";
/// Retries so far (kafkakit name).
pub const RETRY_COUNT: &str = "retry-count";
/// The last error of a retried job (kafkakit name).
pub const LAST_ERROR: &str = "last-error";
/// Times a dead letter was replayed.
pub const SKED_REPLAY_COUNT: &str = "sked-replay-count";
/// When a dead letter was last replayed, epoch ms.
pub const SKED_REPLAYED_AT: &str = "sked-replayed-at";
/// `true` on a dead letter that was cut to fit the size limit (`kafka::dlq::fit`).
pub const SKED_TRUNCATED: &str = "sked-truncated";
/// Length in bytes of the original value of a cut dead letter.
pub const SKED_ORIGINAL_BYTES: &str = "sked-original-bytes";
/// SHA-256 of the original value of a cut dead letter, lowercase hex.
pub const SKED_ORIGINAL_SHA256: &str = "sked-original-sha256";
/// How many of the original record's own headers a cut dead letter left out.
pub const SKED_HEADERS_DROPPED: &str = "sked-original-headers-dropped";
