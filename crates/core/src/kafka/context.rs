//! The consumer context every sked consumer uses: logs rebalances and counts failed commits.

use prometheus_client::metrics::counter::Counter;
use rdkafka::{
    ClientContext, TopicPartitionList,
    consumer::{BaseConsumer, ConsumerContext, Rebalance},
    error::KafkaResult,
};
use tracing::{info, warn};

/// Logs rebalances of `consumer` (a name for the logs) and counts failed offset commits in
/// `commit_errors`. A failed commit loses nothing: the records are redelivered and
/// deduplicated.
pub struct Context {
    consumer: &'static str,
    commit_errors: Counter,
    assigned: super::stall::Assigned,
}

impl Context {
    /// A context for the consumer named `consumer`.
    pub fn new(consumer: &'static str, commit_errors: Counter) -> Self {
        Self {
            consumer,
            commit_errors,
            assigned: super::stall::Assigned::default(),
        }
    }

    /// The partitions this consumer holds, kept on every rebalance (for the stall watch).
    pub fn assigned(&self) -> super::stall::Assigned {
        self.assigned.clone()
    }
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn post_rebalance(&self, _base: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let consumer = self.consumer;
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.assigned.assign(tpl);
                info!(consumer, partitions = tpl.count(), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                self.assigned.revoke(tpl);
                info!(consumer, partitions = tpl.count(), "partitions revoked")
            }
            Rebalance::Error(err) => warn!(consumer, error = %err, "rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(err) = result {
            self.commit_errors.inc();
            warn!(consumer = self.consumer, error = %err, "offset commit failed; records will be redelivered and deduplicated");
        }
    }
}
