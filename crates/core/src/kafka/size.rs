//! How large a record sked's producers may send, and what the brokers accept.
//!
//! librdkafka refuses to produce a record larger than its `message.max.bytes` (default
//! 1,000,000 bytes, less than sked's default `limits.max_request_bytes` of 1 MiB), and a
//! broker refuses a record batch larger than the topic's `max.message.bytes` (Apache Kafka's
//! default 1,048,588). A dead letter carries a whole request plus headers, so sked sets
//! `message.max.bytes` on every producer it creates to `limits.max_request_bytes` +
//! [`HEADER_ROOM`], unless the operator set it in `kafka.rdkafka`; at start each service reads
//! the `max.message.bytes` of the topics it produces to, where the brokers answer, and warns
//! when a limit is below what a largest request needs. Letters that do not fit are cut
//! (`kafka::dlq::fit`).

use std::time::Duration;

use rdkafka::{
    admin::{AdminClient, AdminOptions, ResourceSpecifier},
    client::DefaultClientContext,
    error::{KafkaError, RDKafkaErrorCode},
};
use tracing::{debug, info, warn};

use crate::config::KafkaOptions;

/// Bytes a record may need beyond the request it carries: its key, its headers (a dead
/// letter's header set, a fire's headers) and the fields of a fired envelope around the
/// payload.
pub const HEADER_ROOM: usize = 64 * 1024;

/// The librdkafka producer property.
pub const MESSAGE_MAX_BYTES: &str = "message.max.bytes";

/// The topic configuration the broker checks record batches against.
pub const TOPIC_MAX_MESSAGE_BYTES: &str = "max.message.bytes";

/// librdkafka's range of `message.max.bytes`.
const LIBRDKAFKA_RANGE: std::ops::RangeInclusive<usize> = 1000..=1_000_000_000;

/// The largest record a producer of sked sends, and where the number comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimit {
    /// `message.max.bytes` of the producer.
    pub bytes: usize,
    /// What a largest request needs: `limits.max_request_bytes` + [`HEADER_ROOM`].
    pub wanted: usize,
    /// True when `kafka.rdkafka` (or `kafka.rdkafka_files`) sets `message.max.bytes`.
    pub explicit: bool,
}

impl MessageLimit {
    /// The limit of producers built from `kafka` for requests of up to `max_request_bytes`:
    /// the operator's `message.max.bytes` when set, else what a largest request needs (within
    /// librdkafka's range).
    pub fn of(kafka: &KafkaOptions, max_request_bytes: usize) -> Self {
        let wanted = wanted(max_request_bytes);
        let set = kafka
            .properties()
            .find(|(k, _)| *k == MESSAGE_MAX_BYTES)
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        MessageLimit {
            bytes: set.unwrap_or(wanted),
            wanted,
            explicit: set.is_some(),
        }
    }

    /// True when records a largest request can produce do not fit.
    pub fn too_small(&self) -> bool {
        self.bytes < self.wanted
    }

    /// Logs a warning when the operator's `message.max.bytes` is too small for a largest
    /// request: such records are cut (dead letters) or cannot be produced (fires, retries).
    pub fn warn_if_too_small(&self) {
        if self.explicit && self.too_small() {
            warn!(
                message_max_bytes = self.bytes,
                needed = self.wanted,
                "`kafka.rdkafka.\"message.max.bytes\"` is below `limits.max_request_bytes` + 65536: larger dead letters are truncated to fit, larger fires and retries cannot be produced"
            );
        }
    }
}

/// `limits.max_request_bytes` + [`HEADER_ROOM`], within librdkafka's range.
pub fn wanted(max_request_bytes: usize) -> usize {
    max_request_bytes
        .saturating_add(HEADER_ROOM)
        .clamp(*LIBRDKAFKA_RANGE.start(), *LIBRDKAFKA_RANGE.end())
}

/// True for the errors that say a record (or its batch) is too large: librdkafka's own check
/// (`MSG_SIZE_TOO_LARGE`) and the broker's `MESSAGE_TOO_LARGE` (same code),
/// `RECORD_LIST_TOO_LARGE` and `INVALID_MESSAGE_SIZE`.
pub fn is_size_error(err: &KafkaError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
        )
    )
}

/// The `max.message.bytes` of each of `topics` that the brokers report (a topic they report
/// nothing for is left out). Errors when the brokers cannot be asked at all.
pub async fn topic_limits(
    kafka: &KafkaOptions,
    topics: &[String],
) -> Result<Vec<(String, usize)>, KafkaError> {
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (k, v) in kafka.properties() {
        config.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let resources: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let results = admin.describe_configs(&resources, &opts).await?;
    let mut out = Vec::new();
    for (topic, result) in topics.iter().zip(results) {
        match result {
            Ok(resource) => {
                if let Some(bytes) = resource
                    .get(TOPIC_MAX_MESSAGE_BYTES)
                    .and_then(|e| e.value.as_deref())
                    .and_then(|v| v.trim().parse::<usize>().ok())
                {
                    out.push((topic.clone(), bytes));
                }
            }
            Err(code) => {
                debug!(messaging.destination.name = %topic, error = %code, "cannot read the topic's configuration")
            }
        }
    }
    Ok(out)
}

/// Reads the `max.message.bytes` of `topics` and logs a warning for each one below `needed`.
/// Returns the limits read: none when the brokers report none, or cannot be asked within
/// 15 s (that is logged, and sked goes on).
pub async fn check_topics(
    kafka: &KafkaOptions,
    topics: &[String],
    needed: usize,
) -> Vec<(String, usize)> {
    let read = tokio::time::timeout(Duration::from_secs(15), topic_limits(kafka, topics)).await;
    let limits = match read {
        Ok(Ok(limits)) => limits,
        Ok(Err(err)) => {
            info!(error = %err, "cannot read the topics' `max.message.bytes`; not checked");
            return Vec::new();
        }
        Err(_) => {
            info!(
                "the brokers did not describe the topics' configuration within 15 s; `max.message.bytes` not checked"
            );
            return Vec::new();
        }
    };
    for (topic, bytes) in &limits {
        if *bytes < needed {
            warn!(
                messaging.destination.name = %topic,
                max_message_bytes = *bytes,
                needed,
                "topic config `max.message.bytes` is below `limits.max_request_bytes` + 65536: the broker refuses larger records; dead letters are truncated to fit"
            );
        }
    }
    limits
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn kafka(rdkafka: &[(&str, &str)]) -> KafkaOptions {
        KafkaOptions {
            brokers: "localhost:9092".into(),
            client_id: "sked".into(),
            stall_after: Default::default(),
            rdkafka: rdkafka
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            rdkafka_files: BTreeMap::new(),
            rdkafka_secrets: BTreeMap::new(),
        }
    }

    #[test]
    fn producers_take_the_request_limit_plus_header_room_unless_the_operator_says() {
        let ours = MessageLimit::of(&kafka(&[]), 1 << 20);
        assert_eq!(ours.bytes, (1 << 20) + HEADER_ROOM);
        assert!(!ours.explicit && !ours.too_small());
        let theirs = MessageLimit::of(&kafka(&[(MESSAGE_MAX_BYTES, "1000000")]), 1 << 20);
        assert_eq!(theirs.bytes, 1_000_000);
        assert!(theirs.explicit && theirs.too_small());
        assert_eq!(wanted(usize::MAX), 1_000_000_000, "librdkafka's maximum");
        assert_eq!(wanted(64), 64 + HEADER_ROOM);
    }

    #[test]
    fn size_errors_are_told_from_others() {
        let size = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        let batch = KafkaError::MessageProduction(RDKafkaErrorCode::MessageBatchTooLarge);
        let timeout = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert!(is_size_error(&size) && is_size_error(&batch));
        assert!(!is_size_error(&timeout));
    }
}
