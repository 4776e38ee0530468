//! Metrics of the ingest service, all named here: `sked_ingest_*`.

use crate::quota::{NameLabel, QuotaLabel};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Label of a rejection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `sked-reason` value.
    pub reason: String,
}

/// Label of a store outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// created | updated | duplicate | cancelled | not_found | …
    pub outcome: &'static str,
    /// kafka | http
    pub source: &'static str,
}

/// Every metric of the service. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Records read from the ingest topic.
    pub received: Counter,
    /// Store outcomes of valid requests and cancels.
    pub stored: Family<OutcomeLabel, Counter>,
    /// Requests rejected, by reason.
    pub rejected: Family<ReasonLabel, Counter>,
    /// Seconds from a batch's first record to its commit.
    pub batch_seconds: Histogram,
    /// Records per batch.
    pub batch_records: Histogram,
    /// Seconds from a record's Kafka timestamp to its durable write.
    pub ingest_latency_seconds: Histogram,
    /// Failed attempts to write a batch to Redis (each retried).
    pub store_errors: Counter,
    /// Failed attempts to produce a dead letter (each retried, or cut when too large).
    pub dlq_errors: Counter,
    /// Dead letters produced cut to fit the size limit.
    pub dlq_truncated: Counter,
    /// Dead letters that could not be written at any size, dropped.
    pub dlq_dropped: Counter,
    /// Dead letters not acknowledged yet, parked and retried (each holds its partition's
    /// commit).
    pub dlq_parked: Gauge,
    /// Offset commits that failed (the records are redelivered and deduplicated).
    pub commit_errors: Counter,
    /// Submissions refused by a quota.
    pub quota_rejected: Family<QuotaLabel, Counter>,
    /// Pending jobs of each name with a pending quota, as last read.
    pub quota_pending: Family<NameLabel, Gauge>,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            received: Counter::default(),
            stored: Family::default(),
            rejected: Family::default(),
            batch_seconds: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            batch_records: Histogram::new([1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0]),
            ingest_latency_seconds: Histogram::new([
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
            ]),
            store_errors: Counter::default(),
            dlq_errors: Counter::default(),
            dlq_truncated: Counter::default(),
            dlq_dropped: Counter::default(),
            dlq_parked: Gauge::default(),
            commit_errors: Counter::default(),
            quota_rejected: Family::default(),
            quota_pending: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("sked_ingest");
        r.register(
            "received_records",
            "Records read from the ingest topic",
            m.received.clone(),
        );
        r.register(
            "stored_records",
            "Store outcomes of requests and cancels",
            m.stored.clone(),
        );
        r.register(
            "rejected_records",
            "Requests rejected to the DLQ, by reason",
            m.rejected.clone(),
        );
        r.register(
            "batch_duration_seconds",
            "From a batch's first record to its commit",
            m.batch_seconds.clone(),
        );
        r.register(
            "batch_size_records",
            "Records per batch",
            m.batch_records.clone(),
        );
        r.register(
            "latency_seconds",
            "From a record's Kafka timestamp to its durable write",
            m.ingest_latency_seconds.clone(),
        );
        r.register(
            "store_errors",
            "Failed batch writes to Redis, each retried",
            m.store_errors.clone(),
        );
        r.register(
            "dlq_errors",
            "Failed dead-letter produces, each retried (or cut, when too large)",
            m.dlq_errors.clone(),
        );
        r.register(
            "dlq_truncated",
            "Dead letters produced cut to fit the size limit",
            m.dlq_truncated.clone(),
        );
        r.register(
            "dlq_dropped",
            "Dead letters that could not be written at any size, dropped",
            m.dlq_dropped.clone(),
        );
        r.register(
            "dlq_parked_letters",
            "Dead letters not acknowledged yet, retried; each holds back its partition's commit",
            m.dlq_parked.clone(),
        );
        r.register(
            "commit_errors",
            "Failed offset commits",
            m.commit_errors.clone(),
        );
        r.register(
            "quota_rejected",
            "Submissions refused by a quota, by scope, name and limit (pending, rate)",
            m.quota_rejected.clone(),
        );
        r.register(
            "quota_pending",
            "Pending jobs of each tenant and app that has a pending quota, as last read",
            m.quota_pending.clone(),
        );
        m
    }

    /// Counts one store outcome.
    pub fn stored(&self, outcome: &'static str, source: &'static str) {
        self.stored
            .get_or_create(&OutcomeLabel { outcome, source })
            .inc();
    }

    /// The dead-letter counters, for [`sked_core::kafka::dlq::Sender`].
    pub fn dlq_counters(&self) -> sked_core::kafka::dlq::Counters {
        sked_core::kafka::dlq::Counters {
            truncated: self.dlq_truncated.clone(),
            dropped: self.dlq_dropped.clone(),
            errors: self.dlq_errors.clone(),
        }
    }

    /// Counts one rejection.
    pub fn rejected(&self, reason: sked_core::reason::Reason) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }
}
