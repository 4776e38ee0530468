//! Metrics of the scheduler, all named here: `sked_scheduler_*`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Label: shard index.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabel {
    /// Shard.
    pub shard: u16,
}

/// Label: what happened to a missed slot.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlotLabel {
    /// `missed` | `skipped` | `excluded` (on a day an attached calendar excludes).
    pub slot: &'static str,
}

/// Every metric of the service. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// fired_at − due_at of every fire.
    pub lateness: Histogram,
    /// The same, over the last minute only (announced for `GET /v1/cluster`).
    pub recent: crate::lateness::Recent,
    /// Fires produced and acknowledged by Kafka.
    pub fired: Counter,
    /// Jobs claimed from the due index.
    pub claimed: Counter,
    /// Expired leases returned to the due index (a scheduler died or stalled).
    pub reclaimed: Counter,
    /// Due jobs held back because their app or tenant is paused.
    pub held: Counter,
    /// Fires produced before their due time (must stay 0; a clock stepping back could do it).
    pub early: Counter,
    /// Missed, skipped and calendar-excluded slots of recurring jobs.
    pub slots: Family<SlotLabel, Counter>,
    /// Claims of jobs that attach a calendar that does not exist (deleted while attached).
    pub calendar_missing: Counter,
    /// Acks that found the job updated or reclaimed meanwhile.
    pub stale_acks: Counter,
    /// Records that could not be read back, dropped from the in-flight set.
    pub corrupt: Counter,
    /// Due jobs held because their payload is sealed with a key that is not configured.
    pub unknown_key: Counter,
    /// Produce failures (the claim is released and the fire is retried a second later).
    pub produce_errors: Counter,
    /// Lease renewals of claims whose fires are still in flight.
    pub renewals: Counter,
    /// Leases a renewal found taken over (they had expired and another claim has the job).
    pub leases_lost: Counter,
    /// Redis failures of the firing loop.
    pub store_errors: Counter,
    /// Jobs waiting in the due index, per shard.
    pub due_backlog: Family<ShardLabel, Gauge>,
    /// Claimed fires not yet acknowledged, per shard.
    pub in_flight: Family<ShardLabel, Gauge>,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            lateness: Histogram::new([
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0, 300.0,
            ]),
            recent: crate::lateness::Recent::default(),
            fired: Counter::default(),
            claimed: Counter::default(),
            reclaimed: Counter::default(),
            held: Counter::default(),
            early: Counter::default(),
            slots: Family::default(),
            calendar_missing: Counter::default(),
            stale_acks: Counter::default(),
            corrupt: Counter::default(),
            unknown_key: Counter::default(),
            produce_errors: Counter::default(),
            renewals: Counter::default(),
            leases_lost: Counter::default(),
            store_errors: Counter::default(),
            due_backlog: Family::default(),
            in_flight: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("sked_scheduler");
        r.register(
            "fire_lateness_seconds",
            "fired_at minus due_at of every fire",
            m.lateness.clone(),
        );
        r.register("fired", "Fires acknowledged by Kafka", m.fired.clone());
        r.register(
            "claimed",
            "Jobs claimed from the due index",
            m.claimed.clone(),
        );
        r.register(
            "reclaimed",
            "Expired leases returned to the due index",
            m.reclaimed.clone(),
        );
        r.register(
            "held_jobs",
            "Due jobs held back because their app or tenant is paused",
            m.held.clone(),
        );
        r.register(
            "early_fires",
            "Fires produced before their due time (must stay 0)",
            m.early.clone(),
        );
        r.register(
            "slots",
            "Missed, skipped and calendar-excluded slots of recurring jobs",
            m.slots.clone(),
        );
        r.register(
            "calendar_missing",
            "Claims of jobs attaching a calendar that does not exist (it excludes nothing)",
            m.calendar_missing.clone(),
        );
        r.register(
            "stale_acks",
            "Acks that found the job updated or reclaimed meanwhile",
            m.stale_acks.clone(),
        );
        r.register(
            "corrupt_records",
            "Unreadable job records dropped from the in-flight set",
            m.corrupt.clone(),
        );
        r.register(
            "unknown_key_holds",
            "Due jobs held because their payload is sealed with a key that is not configured",
            m.unknown_key.clone(),
        );
        r.register(
            "produce_errors",
            "Fires Kafka did not acknowledge (released and retried a second later)",
            m.produce_errors.clone(),
        );
        r.register(
            "lease_renewals",
            "Lease renewals of claims whose fires are still in flight",
            m.renewals.clone(),
        );
        r.register(
            "leases_lost",
            "Leases a renewal found taken over by another claim after they expired",
            m.leases_lost.clone(),
        );
        r.register(
            "store_errors",
            "Redis failures of the firing loop",
            m.store_errors.clone(),
        );
        r.register(
            "due_backlog_jobs",
            "Jobs waiting in the due index",
            m.due_backlog.clone(),
        );
        r.register(
            "in_flight_jobs",
            "Claimed fires not yet acknowledged",
            m.in_flight.clone(),
        );
        m
    }
}
