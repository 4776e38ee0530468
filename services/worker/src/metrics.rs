//! Metrics of the worker, all named here: `sked_worker_*`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::rate_limit::WaitCounter;

/// Labels of an execution.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExecutionLabel {
    /// The app (only configured or registered apps; others are `other`).
    pub app: String,
    /// succeeded | transient | permanent | timeout | no_handler
    pub outcome: &'static str,
}

/// Label of a dead letter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `sked-reason` value.
    pub reason: &'static str,
}

/// Label of a per-app metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabel {
    /// The app.
    pub app: String,
}

/// Label of a global limit: `app:<app>`, `tenant:<tenant>` (`tenant:*` for the default
/// tenant rate), `concurrency:<key name>`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    /// The limit.
    pub limit: String,
}

/// Every metric of the service. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Records read from the due topics.
    pub received: Counter,
    /// Handler executions by app and outcome.
    pub executions: Family<ExecutionLabel, Counter>,
    /// Seconds a handler ran.
    pub duration_seconds: Histogram,
    /// Seconds from a fire's due time to the start of its execution.
    pub start_latency_seconds: Histogram,
    /// Jobs read and not finished (running or waiting for their key or a slot).
    pub in_flight: Gauge,
    /// Retry records produced.
    pub retries: Counter,
    /// Dead letters produced, by reason.
    pub dead_letters: Family<ReasonLabel, Counter>,
    /// Redelivered fires acknowledged without running (already done).
    pub duplicates_skipped: Counter,
    /// Failed Redis calls (each retried).
    pub store_errors: Counter,
    /// Failed retry / dead-letter produces (each retried, or cut when too large).
    pub produce_errors: Counter,
    /// Dead letters produced cut to fit the size limit.
    pub dlq_truncated: Counter,
    /// Dead letters that could not be written at any size, dropped.
    pub dlq_dropped: Counter,
    /// Offset commits that failed (records are redelivered and deduplicated).
    pub commit_errors: Counter,
    /// Times the partitions were paused because `worker.max_in_flight` was reached.
    pub pauses: Counter,
    /// Circuit breaker state by app: 0 closed, 1 open, 2 half-open.
    pub circuit_state: Family<AppLabel, Gauge>,
    /// Jobs handed to the retry topic unrun because their app's breaker was open.
    pub circuit_rejections: Family<AppLabel, Counter>,
    /// Seconds jobs waited for their app's rate limit.
    pub rate_limited_seconds: Family<AppLabel, WaitCounter>,
    /// Seconds jobs waited for a global limit, by the limit.
    pub limit_waited_seconds: Family<LimitLabel, WaitCounter>,
    /// Jobs handed to the retry topic unrun because a global limit held them past
    /// `global_limits.max_wait`, by the limit.
    pub limit_deferred: Family<LimitLabel, Counter>,
}

impl Metrics {
    /// The handles of the consumer pipeline's metrics (the same, registered, metrics).
    pub fn keyed(&self) -> sked_core::kafka::keyed::KeyedMetrics {
        sked_core::kafka::keyed::KeyedMetrics {
            received: self.received.clone(),
            in_flight: self.in_flight.clone(),
            pauses: self.pauses.clone(),
            commit_errors: self.commit_errors.clone(),
        }
    }

    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            received: Counter::default(),
            executions: Family::default(),
            duration_seconds: Histogram::new([
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            start_latency_seconds: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
            in_flight: Gauge::default(),
            retries: Counter::default(),
            dead_letters: Family::default(),
            duplicates_skipped: Counter::default(),
            store_errors: Counter::default(),
            produce_errors: Counter::default(),
            dlq_truncated: Counter::default(),
            dlq_dropped: Counter::default(),
            commit_errors: Counter::default(),
            pauses: Counter::default(),
            circuit_state: Family::default(),
            circuit_rejections: Family::default(),
            rate_limited_seconds: Family::default(),
            limit_waited_seconds: Family::default(),
            limit_deferred: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("sked_worker");
        r.register(
            "received_records",
            "Records read from the due topics",
            m.received.clone(),
        );
        r.register(
            "executions",
            "Handler executions by app and outcome",
            m.executions.clone(),
        );
        r.register(
            "execution_duration_seconds",
            "How long handlers ran",
            m.duration_seconds.clone(),
        );
        r.register(
            "start_latency_seconds",
            "From a fire's due time to the start of its execution",
            m.start_latency_seconds.clone(),
        );
        r.register(
            "in_flight_jobs",
            "Jobs read and not finished",
            m.in_flight.clone(),
        );
        r.register("retries", "Retry records produced", m.retries.clone());
        r.register(
            "dead_letters",
            "Dead letters produced, by reason",
            m.dead_letters.clone(),
        );
        r.register(
            "duplicates_skipped",
            "Redelivered fires acknowledged without running",
            m.duplicates_skipped.clone(),
        );
        r.register(
            "store_errors",
            "Failed Redis calls, each retried",
            m.store_errors.clone(),
        );
        r.register(
            "produce_errors",
            "Failed retry or dead-letter produces, each retried (or cut, when too large)",
            m.produce_errors.clone(),
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
            "commit_errors",
            "Failed offset commits",
            m.commit_errors.clone(),
        );
        r.register(
            "pauses",
            "Times intake paused at worker.max_in_flight",
            m.pauses.clone(),
        );
        r.register(
            "circuit_state",
            "Circuit breaker state by app: 0 closed, 1 open, 2 half-open",
            m.circuit_state.clone(),
        );
        r.register(
            "circuit_rejections",
            "Jobs handed to the retry topic unrun because their app's circuit was open",
            m.circuit_rejections.clone(),
        );
        r.register(
            "rate_limited_seconds",
            "Seconds jobs waited for their app's rate limit",
            m.rate_limited_seconds.clone(),
        );
        r.register(
            "limit_waited_seconds",
            "Seconds jobs waited for a global limit (global_limits), by the limit",
            m.limit_waited_seconds.clone(),
        );
        r.register(
            "limit_deferred",
            "Jobs handed to the retry topic unrun because a global limit held them past global_limits.max_wait",
            m.limit_deferred.clone(),
        );
        m
    }

    /// Counts one execution.
    pub fn executed(&self, app: String, outcome: &'static str, seconds: f64) {
        self.executions
            .get_or_create(&ExecutionLabel { app, outcome })
            .inc();
        self.duration_seconds.observe(seconds);
    }

    /// The series of `app` in a per-app family.
    pub fn app(app: &str) -> AppLabel {
        AppLabel {
            app: app.to_owned(),
        }
    }

    /// The series of a global limit.
    pub fn limit(limit: &str) -> LimitLabel {
        LimitLabel {
            limit: limit.to_owned(),
        }
    }

    /// The dead-letter counters, for [`sked_core::kafka::dlq::Sender`] (its failed produces
    /// count in `produce_errors`).
    pub fn dlq_counters(&self) -> sked_core::kafka::dlq::Counters {
        sked_core::kafka::dlq::Counters {
            truncated: self.dlq_truncated.clone(),
            dropped: self.dlq_dropped.clone(),
            errors: self.produce_errors.clone(),
        }
    }

    /// Counts one dead letter.
    pub fn dead_lettered(&self, reason: crate::records::Reason) {
        self.dead_letters
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }
}
