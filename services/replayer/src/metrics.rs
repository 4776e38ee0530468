//! Metrics of the replayer service, all named here: `sked_replayer_*`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Label of a store outcome or a replay outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// created | updated | duplicate (retries); published | already_published |
    /// skipped_max_replays | skipped_no_target | skipped_duplicate | dry_run (replays).
    pub outcome: &'static str,
}

/// Label of a rejected retry record.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `sked-reason` value of the dead letter.
    pub reason: &'static str,
}

/// Every metric of the service. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Retry records read from the retry topic.
    pub retries_received: Counter,
    /// Retry jobs written to the store, by outcome.
    pub retries_stored: Family<OutcomeLabel, Counter>,
    /// Retry records that could not be parsed, dead-lettered, by reason.
    pub retries_rejected: Family<ReasonLabel, Counter>,
    /// Dead letters handled by replays, by outcome.
    pub replayed: Family<OutcomeLabel, Counter>,
    /// Seconds from a replay's start (or resume) to its end.
    pub replay_seconds: Histogram,
    /// Failed attempts to write a batch of retries to Redis (each retried).
    pub store_errors: Counter,
    /// Failed attempts to produce a dead letter (each retried, or cut when too large).
    pub dlq_errors: Counter,
    /// Dead letters produced cut to fit the size limit.
    pub dlq_truncated: Counter,
    /// Dead letters that could not be written at any size, dropped.
    pub dlq_dropped: Counter,
    /// Dead letters of the retry drain not acknowledged yet, parked and retried.
    pub dlq_parked: Gauge,
    /// Offset commits that failed (the records are redelivered and deduplicated).
    pub commit_errors: Counter,
    /// Dead letters added to the DLQ index.
    pub dlq_indexed: Counter,
    /// Dead letters in the DLQ index.
    pub dlq_index_letters: Gauge,
    /// 1 while this replayer holds the indexer's lease.
    pub dlq_index_leader: Gauge,
    /// 1 when the indexer read every DLQ partition to its end at its last look.
    pub dlq_index_caught_up: Gauge,
    /// Letters removed from the DLQ index: `retention` (gone from the topic) or `evicted`
    /// (over `replayer.index_max_letters`).
    pub dlq_index_removed: Family<OutcomeLabel, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            retries_received: Counter::default(),
            retries_stored: Family::default(),
            retries_rejected: Family::default(),
            replayed: Family::default(),
            replay_seconds: Histogram::new([
                0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
            store_errors: Counter::default(),
            dlq_errors: Counter::default(),
            dlq_truncated: Counter::default(),
            dlq_dropped: Counter::default(),
            dlq_parked: Gauge::default(),
            commit_errors: Counter::default(),
            dlq_indexed: Counter::default(),
            dlq_index_letters: Gauge::default(),
            dlq_index_leader: Gauge::default(),
            dlq_index_caught_up: Gauge::default(),
            dlq_index_removed: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("sked_replayer");
        r.register(
            "retries_received_records",
            "Retry records read from the retry topic",
            m.retries_received.clone(),
        );
        r.register(
            "retries_stored_records",
            "Retry jobs written to the due index, by outcome",
            m.retries_stored.clone(),
        );
        r.register(
            "retries_rejected_records",
            "Retry records that could not be parsed, dead-lettered, by reason",
            m.retries_rejected.clone(),
        );
        r.register(
            "dlq_replayed_records",
            "Dead letters handled by replays, by outcome",
            m.replayed.clone(),
        );
        r.register(
            "replay_duration_seconds",
            "From a replay's start or resume to its end",
            m.replay_seconds.clone(),
        );
        r.register(
            "store_errors",
            "Failed retry writes to Redis, each retried",
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
            "Dead letters of the retry drain not acknowledged yet, retried; each holds back its partition's commit",
            m.dlq_parked.clone(),
        );
        r.register(
            "commit_errors",
            "Failed offset commits",
            m.commit_errors.clone(),
        );
        r.register(
            "dlq_indexed_letters",
            "Dead letters added to the DLQ index",
            m.dlq_indexed.clone(),
        );
        r.register(
            "dlq_index_letters",
            "Dead letters in the DLQ index (as of the indexer's last look)",
            m.dlq_index_letters.clone(),
        );
        r.register(
            "dlq_index_leader",
            "1 while this replayer is the one that indexes the DLQ",
            m.dlq_index_leader.clone(),
        );
        r.register(
            "dlq_index_caught_up",
            "1 when the indexer had read every DLQ partition to its end at its last look",
            m.dlq_index_caught_up.clone(),
        );
        r.register(
            "dlq_index_removed_letters",
            "Letters removed from the DLQ index: retention (gone from the topic) or evicted (over replayer.index_max_letters)",
            m.dlq_index_removed.clone(),
        );
        m
    }

    /// Counts `n` letters removed from the DLQ index for `outcome`.
    pub fn index_removed(&self, outcome: &'static str, n: u64) {
        if n > 0 {
            self.dlq_index_removed
                .get_or_create(&OutcomeLabel { outcome })
                .inc_by(n);
        }
    }

    /// The dead-letter counters, for [`sked_core::kafka::dlq::Sender`].
    pub fn dlq_counters(&self) -> sked_core::kafka::dlq::Counters {
        sked_core::kafka::dlq::Counters {
            truncated: self.dlq_truncated.clone(),
            dropped: self.dlq_dropped.clone(),
            errors: self.dlq_errors.clone(),
        }
    }

    /// Counts one retry store outcome.
    pub fn stored(&self, outcome: &'static str) {
        self.retries_stored
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Counts one rejected retry record.
    pub fn rejected(&self, reason: sked_core::reason::Reason) {
        self.retries_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts `n` dead letters of one replay outcome.
    pub fn replayed(&self, outcome: &'static str, n: u64) {
        if n > 0 {
            self.replayed
                .get_or_create(&OutcomeLabel { outcome })
                .inc_by(n);
        }
    }
}
