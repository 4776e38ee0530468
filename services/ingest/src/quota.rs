//! `[quotas]`: per tenant and per app, the most pending jobs and the most submissions per
//! second, checked on both paths before a request is stored.
//!
//! - Over quota, a Kafka record goes to the DLQ with reason `quota_exceeded` (the partition
//!   goes on); REST answers 429 with `Retry-After` (1 s for a rate, 5 s for pending jobs).
//! - Pending counts are the kept index counts of `GET /v1/stats`, read at most once a second
//!   per name and raised locally by what this replica admits in between, so several ingest
//!   replicas together can pass `max_pending` by what they admit within one second.
//! - Rates are one-second windows in Redis shared by every replica (`<prefix>:{q:<name>}:<s>`),
//!   so a burst across a second boundary can reach twice the rate for an instant.
//! - Every submission counts, updates and duplicates of existing jobs included: at its limit a
//!   tenant's updates are refused too, until jobs fire or are cancelled.
//! - Jobs without a tenant are subject to app quotas only.
//! - When Redis cannot be read the request is admitted (the store write that follows waits
//!   for Redis anyway), and a warning is logged.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use sked_api::stats::QuotaUsage;
use sked_core::{
    auth::Principal,
    config::{QuotaOptions, QuotasOptions},
    request::JobSpec,
    store::Store,
};
use tracing::warn;

/// How long a pending count read from Redis is used.
const PENDING_MAX_AGE: Duration = Duration::from_secs(1);

/// What a refused submission passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// `tenant` or `app`.
    pub scope: &'static str,
    /// The tenant or app.
    pub name: String,
    /// Which limit.
    pub limit: Limit,
}

/// A quota limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_pending`.
    Pending(u64),
    /// `submit_rate`.
    Rate(u32),
}

impl Exceeded {
    /// When to try again.
    pub fn retry_after(&self) -> Duration {
        match self.limit {
            Limit::Pending(_) => Duration::from_secs(5),
            Limit::Rate(_) => Duration::from_secs(1),
        }
    }
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limit {
            Limit::Pending(max) => write!(
                f,
                "{} `{}` has reached its quota of {max} pending jobs (quotas.{}s.{}.max_pending)",
                self.scope, self.name, self.scope, self.name
            ),
            Limit::Rate(rate) => write!(
                f,
                "{} `{}` is over its quota of {rate} submissions per second (quotas.{}s.{}.submit_rate)",
                self.scope, self.name, self.scope, self.name
            ),
        }
    }
}

/// Labels of `sked_ingest_quota_rejected_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabel {
    scope: &'static str,
    name: String,
    limit: &'static str,
}

/// Labels of `sked_ingest_quota_pending`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabel {
    scope: &'static str,
    name: String,
}

struct Inner {
    options: QuotasOptions,
    store: Store,
    /// Pending counts by index name (`t:<tenant>`, `a:<app>`): when read, and the count.
    pending: Mutex<HashMap<String, (Instant, u64)>>,
    /// Refusals by index name, for `GET /v1/stats`.
    refused: Mutex<HashMap<String, u64>>,
    rejected_total: Family<QuotaLabel, Counter>,
    pending_gauge: Family<NameLabel, Gauge>,
}

/// The quotas of this installation; cheap to clone.
#[derive(Clone)]
pub struct Quotas {
    inner: Option<Arc<Inner>>,
}

/// One quota that applies to a request.
struct Applies<'a> {
    scope: &'static str,
    name: &'a str,
    key: String,
    quota: QuotaOptions,
}

impl Quotas {
    /// The quotas of `options`, counted in `metrics`; none configured makes
    /// [`Self::check`] free.
    pub fn new(options: &QuotasOptions, store: Store, metrics: &crate::metrics::Metrics) -> Self {
        if !options.any() {
            return Self { inner: None };
        }
        let rejected_total = metrics.quota_rejected.clone();
        let pending_gauge = metrics.quota_pending.clone();
        Self {
            inner: Some(Arc::new(Inner {
                options: options.clone(),
                store,
                pending: Mutex::new(HashMap::new()),
                refused: Mutex::new(HashMap::new()),
                rejected_total,
                pending_gauge,
            })),
        }
    }

    /// Checks `specs` in order, counting each one admitted; the verdict of each (`None`:
    /// admitted).
    pub async fn check(&self, specs: &[&JobSpec]) -> Vec<Option<Exceeded>> {
        let Some(inner) = &self.inner else {
            return vec![None; specs.len()];
        };
        let applies: Vec<Vec<Applies<'_>>> = specs.iter().map(|s| inner.applies(s)).collect();
        inner.refresh_pending(&applies).await;
        let mut verdicts: Vec<Option<Exceeded>> = vec![None; specs.len()];
        // Pending first, in order, raising the counts of what is admitted.
        {
            let mut pending = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (i, quotas) in applies.iter().enumerate() {
                let over = quotas.iter().find_map(|q| {
                    let max = q.quota.max_pending?;
                    let now = pending.get(&q.key).map_or(0, |(_, n)| *n);
                    (now >= max).then(|| Exceeded {
                        scope: q.scope,
                        name: q.name.to_owned(),
                        limit: Limit::Pending(max),
                    })
                });
                match over {
                    Some(e) => verdicts[i] = Some(e),
                    None => {
                        for q in quotas.iter().filter(|q| q.quota.max_pending.is_some()) {
                            if let Some((_, n)) = pending.get_mut(&q.key) {
                                *n += 1;
                            }
                        }
                    }
                }
            }
        }
        // Then rates: one script per name takes what its window still has.
        let mut wanted: BTreeMap<&str, (u32, Vec<usize>)> = BTreeMap::new();
        for (i, quotas) in applies.iter().enumerate() {
            if verdicts[i].is_some() {
                continue;
            }
            for q in quotas {
                if let Some(rate) = q.quota.submit_rate {
                    wanted
                        .entry(q.key.as_str())
                        .or_insert((rate, Vec::new()))
                        .1
                        .push(i);
                }
            }
        }
        let second = Utc::now().timestamp();
        for (key, (rate, members)) in wanted {
            let taken = match inner
                .store
                .take_rate(key, second, members.len() as u64, rate)
                .await
            {
                Ok(taken) => taken,
                Err(e) => {
                    warn!(error = %e, quota = key, "cannot read a rate quota; admitting");
                    members.len() as u64
                }
            };
            for &i in members
                .iter()
                .skip(usize::try_from(taken).unwrap_or(usize::MAX))
            {
                if verdicts[i].is_none()
                    && let Some(q) = applies[i].iter().find(|q| q.key == key)
                {
                    verdicts[i] = Some(Exceeded {
                        scope: q.scope,
                        name: q.name.to_owned(),
                        limit: Limit::Rate(rate),
                    });
                }
            }
        }
        for e in verdicts.iter().flatten() {
            inner.count_refusal(e);
        }
        verdicts
    }

    /// Checks one REST submission.
    pub async fn admit(&self, spec: &JobSpec) -> Result<(), Exceeded> {
        match self.check(&[spec]).await.pop().flatten() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The configured quotas and their use, for `GET /v1/stats`: those of the caller's
    /// tenants for a confined caller (app quotas need an unconfined one).
    pub fn usage(
        &self,
        by_app: &BTreeMap<String, u64>,
        by_tenant: &BTreeMap<String, u64>,
        who: &Principal,
    ) -> Vec<QuotaUsage> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        let refused = inner.refused.lock().unwrap_or_else(|e| e.into_inner());
        let one =
            |scope: &str, name: &str, pending: u64, q: &QuotaOptions, key: String| QuotaUsage {
                scope: scope.to_owned(),
                name: name.to_owned(),
                pending,
                max_pending: q.max_pending,
                submit_rate: q.submit_rate,
                rejected: refused.get(&key).copied().unwrap_or(0),
            };
        let mut out = Vec::new();
        let mut tenants: Vec<&String> = inner.options.tenants.keys().collect();
        if inner.options.default_tenant.is_some() {
            tenants.extend(by_tenant.keys());
            tenants.sort();
            tenants.dedup();
        }
        for tenant in tenants {
            if !who.sees(Some(tenant)) {
                continue;
            }
            if let Some(q) = inner.options.tenant(tenant) {
                let pending = by_tenant.get(tenant).copied().unwrap_or(0);
                out.push(one("tenant", tenant, pending, q, format!("t:{tenant}")));
            }
        }
        if who.tenants().is_none() {
            for (app, q) in &inner.options.apps {
                let pending = by_app.get(app).copied().unwrap_or(0);
                out.push(one("app", app, pending, q, format!("a:{app}")));
            }
        }
        out
    }
}

impl Inner {
    fn applies<'a>(&'a self, spec: &'a JobSpec) -> Vec<Applies<'a>> {
        let mut out = Vec::new();
        if let Some(tenant) = spec.tenant.as_deref()
            && let Some(q) = self.options.tenant(tenant)
        {
            out.push(Applies {
                scope: "tenant",
                name: tenant,
                key: format!("t:{tenant}"),
                quota: *q,
            });
        }
        if let Some(q) = self.options.apps.get(&spec.app) {
            out.push(Applies {
                scope: "app",
                name: &spec.app,
                key: format!("a:{}", spec.app),
                quota: *q,
            });
        }
        out
    }

    /// Reads the pending counts older than [`PENDING_MAX_AGE`] that `applies` needs.
    async fn refresh_pending(&self, applies: &[Vec<Applies<'_>>]) {
        let stale: Vec<(String, &'static str, String)> = {
            let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let mut names: Vec<(String, &'static str, String)> = applies
                .iter()
                .flatten()
                .filter(|q| q.quota.max_pending.is_some())
                .filter(|q| {
                    pending
                        .get(&q.key)
                        .is_none_or(|(at, _)| at.elapsed() >= PENDING_MAX_AGE)
                })
                .map(|q| (q.key.clone(), q.scope, q.name.to_owned()))
                .collect();
            names.sort();
            names.dedup();
            names
        };
        if stale.is_empty() {
            return;
        }
        let keys: Vec<String> = stale.iter().map(|(k, _, _)| k.clone()).collect();
        match self.store.pending_counts(&keys).await {
            Ok(counts) => {
                let now = Instant::now();
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                for ((key, scope, name), n) in stale.into_iter().zip(counts) {
                    self.pending_gauge
                        .get_or_create(&NameLabel { scope, name })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                    pending.insert(key, (now, n));
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot read pending counts for quotas; using the last ones")
            }
        }
    }

    fn count_refusal(&self, e: &Exceeded) {
        let (limit, key) = match e.limit {
            Limit::Pending(_) => ("pending", e.scope),
            Limit::Rate(_) => ("rate", e.scope),
        };
        self.rejected_total
            .get_or_create(&QuotaLabel {
                scope: e.scope,
                name: e.name.clone(),
                limit,
            })
            .inc();
        let prefix = if key == "tenant" { "t" } else { "a" };
        *self
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(format!("{prefix}:{}", e.name))
            .or_default() += 1;
    }
}
