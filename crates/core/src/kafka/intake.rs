//! The receive step both consume pipelines share ([`super::pipeline`], [`super::keyed`]):
//! what a record or a consume error does to the readiness check `kafka` and to the backoff.

use std::time::Duration;

use rdkafka::error::KafkaError;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{backoff::Backoff, readiness::Readiness};

/// Longest wait between consume attempts after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The outcome of each receive of one consumer.
pub(crate) struct Intake {
    readiness: Readiness,
    backoff: Backoff,
    consumer: &'static str,
}

impl Intake {
    /// The intake of the consumer named `consumer` (in logs), reporting on `readiness`.
    pub(crate) fn new(readiness: Readiness, consumer: &'static str) -> Self {
        Self {
            readiness,
            backoff: Backoff::new(MAX_BACKOFF),
            consumer,
        }
    }

    /// A record arrived: Kafka is reachable, the backoff starts over.
    pub(crate) fn received(&mut self) {
        self.readiness.set("kafka", true);
        self.backoff.reset();
    }

    /// A receive failed: not ready, logged, and the next backoff waited; `false` (at once)
    /// when `cancel` fires first.
    pub(crate) async fn failed(&mut self, err: &KafkaError, cancel: &CancellationToken) -> bool {
        self.readiness.set("kafka", false);
        warn!(consumer = self.consumer, error = %err, "kafka consume failed, backing off");
        self.backoff.sleep(cancel).await
    }
}
