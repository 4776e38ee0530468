//! The audit trail: one JSON record per mutating API call, on `topics.audit` (key: the actor)
//! and in the log (target `sked::audit`, level info).
//!
//! Record (version 1): `{"v": 1, "ts", "actor", "via", "scope", "tenants", "action",
//! "method", "path", "target", "selector", "count", "status", "outcome"}`, where `outcome`
//! is `ok` (2xx), `refused` (4xx: `unauthenticated` and `forbidden` included) or `failed`
//! (5xx), and `target`, `selector` and `count` are what the handler reported (a job id, a
//! bulk selector, how many jobs). Tokens are never part of a record.
//!
//! The log line is written before the call is answered; the Kafka record is sent without
//! waiting, and a record that cannot be sent is counted (`sked_audit_errors_total`) and
//! logged, never retried into a second copy.

use std::sync::Arc;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use tracing::{info, warn};

use super::Principal;

/// What a handler tells the audit record about its call, put into the response's
/// extensions.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    /// The object acted on (a job id, an operation id, a scope name).
    pub target: Option<String>,
    /// The bulk selector, for calls that act on every match.
    pub selector: Option<serde_json::Value>,
    /// How many jobs or letters the call acted on (or will act on).
    pub count: Option<u64>,
}

impl AuditNote {
    /// A note naming the target.
    pub fn target(target: impl Into<String>) -> Self {
        Self {
            target: Some(target.into()),
            ..Self::default()
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, Serialize)]
pub struct Record<'a> {
    /// Record version.
    pub v: u8,
    /// When the call was answered (RFC 3339, ms).
    pub ts: String,
    /// Who called (`unauthenticated` when no token was accepted).
    pub actor: &'a str,
    /// How the caller was authenticated (`token`, `jwt`, `open`, `none`).
    pub via: &'a str,
    /// The scope the call needs.
    pub scope: &'a str,
    /// The caller's tenants; `null` = every tenant.
    pub tenants: Option<Vec<&'a str>>,
    /// The action (`jobs.cancel`, `operations.create`, ...).
    pub action: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Request path.
    pub path: &'a str,
    /// The object acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
    /// A bulk selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<&'a serde_json::Value>,
    /// How many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// HTTP status.
    pub status: u16,
    /// `ok`, `refused` or `failed`.
    pub outcome: &'static str,
}

impl Record<'_> {
    /// The outcome word of an HTTP status.
    pub fn outcome_of(status: u16) -> &'static str {
        match status {
            200..=399 => "ok",
            400..=499 => "refused",
            _ => "failed",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

struct Inner {
    producer: Option<FutureProducer>,
    topic: String,
    records: Family<OutcomeLabel, Counter>,
    errors: Counter,
}

/// Writes audit records.
#[derive(Clone)]
pub struct Auditor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("topic", &self.inner.topic)
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// An auditor writing to `topic` with `producer` (`None`: the log only), with its metrics
    /// in `registry`.
    pub fn new(producer: Option<FutureProducer>, topic: String, registry: &mut Registry) -> Self {
        let records = Family::<OutcomeLabel, Counter>::default();
        let errors = Counter::default();
        registry.register(
            "sked_audit_records",
            "Audit records of mutating API calls, by outcome",
            records.clone(),
        );
        registry.register(
            "sked_audit_errors",
            "Audit records that could not be sent to topics.audit (they are in the log)",
            errors.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                producer,
                topic,
                records,
                errors,
            }),
        }
    }

    /// Records a call: logs it and sends it to the audit topic.
    pub fn record(&self, record: &Record<'_>) {
        let Ok(json) = serde_json::to_string(record) else {
            return;
        };
        info!(target: "sked::audit", audit = %json, "audit");
        self.inner
            .records
            .get_or_create(&OutcomeLabel {
                outcome: record.outcome,
            })
            .inc();
        let Some(producer) = &self.inner.producer else {
            return;
        };
        let sent = producer.send_result(
            FutureRecord::to(&self.inner.topic)
                .key(record.actor)
                .payload(&json),
        );
        let inner = self.inner.clone();
        match sent {
            Ok(delivery) => {
                tokio::spawn(async move {
                    if !matches!(delivery.await, Ok(Ok(_))) {
                        inner.errors.inc();
                        warn!(topic = %inner.topic, "audit record not delivered (it is in the log)");
                    }
                });
            }
            Err((e, _)) => {
                inner.errors.inc();
                warn!(topic = %inner.topic, error = %e, "audit record not sent (it is in the log)");
            }
        }
    }

    /// The tenants of `principal` as the record lists them.
    pub fn tenants(principal: &Principal) -> Option<Vec<&str>> {
        principal
            .tenants()
            .map(|t| t.iter().map(String::as_str).collect())
    }
}
