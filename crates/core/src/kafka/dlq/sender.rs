//! Producing dead letters, the same way in every service: each letter is fit to the size limit
//! ([`super::fit`]) and produced; one the producer or the broker still refuses as too large is
//! fit again to half the size it had; one that cannot be made small enough, or that the broker
//! refuses for good (`INVALID_RECORD`), is dropped, logged with its origin and counted. So a
//! DLQ produce never retries the same too-large record forever. Any other error comes back to
//! the caller, who retries later ([`Sent::Failed`]).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use prometheus_client::metrics::counter::Counter;
use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    message::Headers,
    producer::{FutureProducer, FutureRecord},
};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{
    Record,
    fit::{self, Fitted},
};
use crate::kafka::{
    headers as h,
    size::{self, MessageLimit},
};

/// What a service counts about its dead letters (each service registers them under its own
/// prefix).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Letters produced cut to fit (`*_dlq_truncated_total`).
    pub truncated: Counter,
    /// Letters that could not be written at any size (`*_dlq_dropped_total`).
    pub dropped: Counter,
    /// Failed produces, each retried (`*_dlq_errors_total`, `sked_worker_produce_errors_total`).
    pub errors: Counter,
}

/// How one delivery ended.
#[derive(Debug)]
pub enum Sent {
    /// Kafka acknowledged the letter; `truncated` when it was cut to fit.
    Acked {
        /// Cut to fit.
        truncated: bool,
    },
    /// The letter cannot be written: dropped, logged and counted. Its record is finished.
    Dropped,
    /// Not written, for a reason that may pass (broker unreachable, timeout): retry later.
    Failed(KafkaError),
}

/// Produces dead letters to one topic. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    producer: FutureProducer,
    topic: String,
    limit: Arc<AtomicUsize>,
    counters: Counters,
}

impl Sender {
    /// A sender of letters to `topic` through `producer`, whose `message.max.bytes` is
    /// `limit`.
    pub fn new(
        producer: FutureProducer,
        topic: String,
        limit: &MessageLimit,
        counters: Counters,
    ) -> Self {
        Self {
            producer,
            topic,
            limit: Arc::new(AtomicUsize::new(limit.bytes)),
            counters,
        }
    }

    /// The DLQ topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The size letters are fit to.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Lowers the size letters are fit to (never raises it): what the DLQ topic's
    /// `max.message.bytes` allows, once read.
    pub fn lower_limit(&self, bytes: usize) {
        self.limit.fetch_min(bytes, Ordering::Relaxed);
    }

    /// Produces `letter` (see the module docs) and waits for Kafka's answer.
    pub async fn send(&self, letter: &Record) -> Sent {
        let mut limit = self.limit();
        loop {
            let (record, cut) = match fit::fit(letter, limit) {
                Fitted::Whole(record) => (record, None),
                Fitted::Cut {
                    record,
                    kept,
                    original,
                    headers_dropped,
                } => (record, Some((kept, original, headers_dropped))),
                Fitted::Unfit { needed } => {
                    self.dropped(
                        letter,
                        &format!("needs {needed} bytes, the limit is {limit}"),
                    );
                    return Sent::Dropped;
                }
            };
            match self.produce(&record).await {
                Ok(()) => {
                    if let Some((kept, original, headers_dropped)) = cut {
                        self.counters.truncated.inc();
                        let (topic, partition, offset) = origin(letter);
                        warn!(
                            original.topic = topic,
                            original.partition = partition,
                            original.offset = offset,
                            original_bytes = original,
                            kept_bytes = kept,
                            headers_dropped,
                            messaging.destination.name = %self.topic,
                            "dead letter over the size limit, produced truncated"
                        );
                    }
                    return Sent::Acked {
                        truncated: cut.is_some(),
                    };
                }
                Err(err) if size::is_size_error(&err) => {
                    self.counters.errors.inc();
                    let next = fit::size(&record).min(limit) / 2;
                    warn!(
                        error = %err,
                        bytes = fit::size(&record),
                        next_limit = next,
                        messaging.destination.name = %self.topic,
                        "dead letter refused as too large, fitting it to half the size"
                    );
                    limit = next;
                }
                Err(err) if permanent(&err) => {
                    self.counters.errors.inc();
                    self.dropped(letter, &err.to_string());
                    return Sent::Dropped;
                }
                Err(err) => {
                    self.counters.errors.inc();
                    return Sent::Failed(err);
                }
            }
        }
    }

    async fn produce(&self, record: &Record) -> Result<(), KafkaError> {
        let mut out: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(record.headers.clone());
        if let Some(key) = &record.key {
            out = out.key(key.as_slice());
        }
        if let Some(payload) = &record.payload {
            out = out.payload(payload.as_slice());
        }
        // Never cancelled here: callers race a send against their own drain deadline.
        crate::kafka::produce::produce(&self.producer, out, &CancellationToken::new())
            .await
            .map_err(crate::kafka::produce::Error::into_kafka)
    }

    fn dropped(&self, letter: &Record, why: &str) {
        self.counters.dropped.inc();
        let (topic, partition, offset) = origin(letter);
        error!(
            original.topic = topic,
            original.partition = partition,
            original.offset = offset,
            reason = header(letter, h::SKED_REASON).unwrap_or_default(),
            why,
            messaging.destination.name = %self.topic,
            "dead letter cannot be written at any size; dropped"
        );
    }
}

/// Errors the broker gives a record that no retry changes (and that cutting does not fix).
fn permanent(err: &KafkaError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::InvalidRecord)
    )
}

fn header<'a>(letter: &'a Record, name: &str) -> Option<&'a str> {
    letter
        .headers
        .iter()
        .filter(|x| x.key == name)
        .last()
        .and_then(|x| x.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// `original-topic`, `-partition` and `-offset` of a letter, for logs.
fn origin(letter: &Record) -> (&str, &str, &str) {
    (
        header(letter, h::ORIGINAL_TOPIC).unwrap_or_default(),
        header(letter, h::ORIGINAL_PARTITION).unwrap_or_default(),
        header(letter, h::ORIGINAL_OFFSET).unwrap_or_default(),
    )
}
