//! `[global_limits]`: start rates per app and tenant, and concurrency keys, shared by every
//! worker through Redis (`sked_core::store::limits`).
//!
//! Before a job runs (after the circuit breaker, before the app's local rate limit and the
//! run slot), the worker:
//! 1. takes a slot of every concurrency key the job has a value for, all or none, polling a
//!    full key (20 ms, doubling to 500 ms). The slots' lease covers the longest the job can
//!    hold them: `max_wait` + its timeout + `worker.lease_grace`, so a worker that dies holding
//!    one frees it by then. One fire holds one slot of a value, even when redelivered;
//! 2. reserves a start of every rate that applies (its app's, its tenant's) and sleeps until
//!    the latest one is due. A rate refused after another was granted wastes that grant (the
//!    limit under-runs, never over-runs);
//! 3. runs, then gives the slots back.
//!
//! A job that the limits would hold longer than `global_limits.max_wait` gives back what it
//! took and goes to the retry topic unrun, with the same attempt (like a job held back by an
//! open circuit), due after the hint of the limit that held it (when a rate would have room;
//! for a full key, when its earliest lease ends), at least 1 s and at most 60 s, plus up to
//! 50 % jitter.

use std::{collections::BTreeMap, time::Duration};

use chrono::Utc;
use rdkafka::message::OwnedMessage;
use sked_core::{
    config::{GlobalLimitsOptions, GlobalRateOptions},
    envelope::Envelope,
    job::JobId,
    store::limits::{Rate, Reservation},
};
use tokio::time::Instant;
use tracing::debug;

use crate::{execute::Executor, metrics::Metrics};

/// `last-error` of a record handed to the retry topic because a global limit held it.
pub const LIMIT_HELD: &str = "held by global limit";

/// Shortest and longest deferral of a held job.
const DEFER_MIN: Duration = Duration::from_secs(1);
const DEFER_MAX: Duration = Duration::from_secs(60);

/// Poll interval of a full concurrency key: first, and most.
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(500);

/// Where a concurrency key's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Label(String),
    /// A JSON pointer into the payload.
    Field(String),
}

#[derive(Debug, Clone)]
struct Key {
    name: String,
    source: Source,
    max: u32,
    /// Empty: every app.
    apps: Vec<String>,
    label: String,
}

/// The configured limits.
#[derive(Debug, Clone)]
pub struct Limits {
    max_wait: Duration,
    apps: BTreeMap<String, Rate>,
    tenants: BTreeMap<String, Rate>,
    default_tenant: Option<Rate>,
    keys: Vec<Key>,
}

/// A start rate that applies to a job.
#[derive(Debug, Clone, PartialEq)]
pub struct RateUse {
    /// The Redis name (`a:<app>`, `t:<tenant>`).
    pub name: String,
    /// The rate.
    pub rate: Rate,
    /// The metric label.
    pub label: String,
}

/// A concurrency slot a job needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The key's name.
    pub key: String,
    /// The job's value of it.
    pub value: String,
    /// Most holders.
    pub max: u32,
    /// The metric label.
    pub label: String,
}

/// What one job falls under.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Slots to take, all or none.
    pub slots: Vec<Slot>,
    /// Starts to reserve.
    pub rates: Vec<RateUse>,
}

/// How holding a job ended.
pub enum Hold {
    /// It may run; give these back after.
    Admitted(Vec<Slot>),
    /// Held past `max_wait` by `limit`: hand it to the retry topic, due in `retry_in`.
    Later { limit: String, retry_in: Duration },
    /// Shutdown (or the drain deadline): leave the record for redelivery.
    Stopped,
}

fn rate(options: &GlobalRateOptions) -> Rate {
    Rate {
        per_second: options.per_second,
        burst: options.burst.unwrap_or(1).max(1),
    }
}

impl Limits {
    /// The limits of `[global_limits]`, `None` when it sets none.
    pub fn from_options(options: &GlobalLimitsOptions) -> Option<Self> {
        if !options.any() {
            return None;
        }
        let keys = options
            .concurrency
            .iter()
            .map(|(name, c)| {
                let source = match (&c.label, &c.field) {
                    (Some(label), _) => Source::Label(label.clone()),
                    (None, Some(f)) if f.starts_with('/') => Source::Field(f.clone()),
                    // A top-level name, as a JSON pointer (`~` and `/` escaped).
                    (None, Some(f)) => {
                        Source::Field(format!("/{}", f.replace('~', "~0").replace('/', "~1")))
                    }
                    (None, None) => Source::Label(String::new()),
                };
                Key {
                    name: name.clone(),
                    source,
                    max: c.max.max(1),
                    apps: c.apps.clone(),
                    label: format!("concurrency:{name}"),
                }
            })
            .collect();
        Some(Self {
            max_wait: options.max_wait.get(),
            apps: options
                .apps
                .iter()
                .map(|(k, v)| (k.clone(), rate(v)))
                .collect(),
            tenants: options
                .tenants
                .iter()
                .map(|(k, v)| (k.clone(), rate(v)))
                .collect(),
            default_tenant: options.default_tenant.as_ref().map(rate),
            keys,
        })
    }

    /// The slots and starts `envelope` needs.
    pub fn plan(&self, envelope: &Envelope) -> Plan {
        let mut plan = Plan::default();
        let mut payload: Option<Option<serde_json::Value>> = None;
        for key in &self.keys {
            if !key.apps.is_empty() && !key.apps.contains(&envelope.app) {
                continue;
            }
            let value = match &key.source {
                Source::Label(label) => envelope.labels.get(label).cloned(),
                Source::Field(pointer) => payload
                    .get_or_insert_with(|| serde_json::from_str(envelope.payload.get()).ok())
                    .as_ref()
                    .and_then(|p| p.pointer(pointer))
                    .and_then(scalar),
            };
            if let Some(value) = value {
                plan.slots.push(Slot {
                    key: key.name.clone(),
                    value,
                    max: key.max,
                    label: key.label.clone(),
                });
            }
        }
        if let Some(r) = self.apps.get(&envelope.app) {
            plan.rates.push(RateUse {
                name: format!("a:{}", envelope.app),
                rate: *r,
                label: format!("app:{}", envelope.app),
            });
        }
        if let Some(tenant) = &envelope.tenant {
            let (r, label) = match self.tenants.get(tenant) {
                Some(r) => (Some(*r), format!("tenant:{tenant}")),
                None => (self.default_tenant, "tenant:*".to_owned()),
            };
            if let Some(r) = r {
                plan.rates.push(RateUse {
                    name: format!("t:{tenant}"),
                    rate: r,
                    label,
                });
            }
        }
        plan
    }
}

/// A payload value usable as a key: strings as they are, numbers and booleans as JSON text.
fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Executor {
    /// Holds `envelope` until its global limits admit it, at most `max_wait` (see the module
    /// doc). `timeout` is the job's run timeout (for the slots' lease).
    pub(crate) async fn hold(
        &self,
        limits: &Limits,
        envelope: &Envelope,
        timeout: Duration,
    ) -> Hold {
        let plan = limits.plan(envelope);
        if plan.slots.is_empty() && plan.rates.is_empty() {
            return Hold::Admitted(Vec::new());
        }
        let started = Instant::now();
        let deadline = started + limits.max_wait;
        let lease = limits.max_wait + timeout + self.settings.lease_grace;
        let holder = envelope.fire_id.as_str();

        let mut poll = POLL_FIRST;
        let mut held: Vec<Slot> = Vec::with_capacity(plan.slots.len());
        let mut waited_on: Option<&str> = None;
        'slots: loop {
            for slot in &plan.slots {
                let taken = self
                    .store_call(|| {
                        self.store
                            .acquire_slot(&slot.key, &slot.value, slot.max, holder, lease)
                    })
                    .await;
                match taken {
                    None => {
                        self.release(holder, held).await;
                        return Hold::Stopped;
                    }
                    Some(None) => held.push(slot.clone()),
                    Some(Some(lease_ends)) => {
                        self.release(holder, std::mem::take(&mut held)).await;
                        waited_on = Some(&slot.label);
                        if Instant::now() + poll > deadline {
                            self.waited(&slot.label, started);
                            return Hold::Later {
                                limit: slot.label.clone(),
                                retry_in: lease_ends,
                            };
                        }
                        tokio::select! {
                            _ = self.cancel.cancelled() => return Hold::Stopped,
                            _ = tokio::time::sleep(poll) => {}
                        }
                        poll = (poll * 2).min(POLL_MAX);
                        continue 'slots;
                    }
                }
            }
            break;
        }
        if let Some(label) = waited_on {
            self.waited(label, started);
        }

        let mut due = Duration::ZERO;
        let mut due_on: Option<&str> = None;
        for r in &plan.rates {
            let left = deadline.saturating_duration_since(Instant::now());
            let reserved = self
                .store_call(|| self.store.reserve_start(&r.name, r.rate, left))
                .await;
            match reserved {
                None => {
                    self.release(holder, held).await;
                    return Hold::Stopped;
                }
                Some(Reservation::Granted(wait)) => {
                    if wait > due {
                        (due, due_on) = (wait, Some(r.label.as_str()));
                    }
                }
                Some(Reservation::Refused(wait)) => {
                    self.release(holder, held).await;
                    return Hold::Later {
                        limit: r.label.clone(),
                        retry_in: wait,
                    };
                }
            }
        }
        if let Some(label) = due_on {
            let slept = Instant::now();
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    self.release(holder, held).await;
                    return Hold::Stopped;
                }
                _ = tokio::time::sleep(due) => {}
            }
            self.waited(label, slept);
        }
        Hold::Admitted(held)
    }

    /// Gives back `holder`'s slots (a slot not given back, at the drain deadline, frees at
    /// its lease).
    pub(crate) async fn release(&self, holder: &str, slots: Vec<Slot>) {
        for slot in slots {
            self.store_call(|| self.store.release_slot(&slot.key, &slot.value, holder))
                .await;
        }
    }

    fn waited(&self, label: &str, since: Instant) {
        self.metrics
            .limit_waited_seconds
            .get_or_create(&Metrics::limit(label))
            .inc_by(since.elapsed().as_secs_f64());
    }

    /// Hands a job held past `max_wait` by `limit` to the retry topic unrun, same attempt,
    /// due after `hint` (clamped to [1 s, 60 s]) plus up to 50 % jitter.
    pub(crate) async fn held_back(
        &self,
        msg: &OwnedMessage,
        envelope: &Envelope,
        job_id: &JobId,
        attempt: u32,
        limit: &str,
        hint: Duration,
    ) -> bool {
        let base = hint.clamp(DEFER_MIN, DEFER_MAX);
        let retry_in = base + base.mul_f64(0.5 * crate::execute::unit(&envelope.fire_id, attempt));
        let retry_at = Utc::now() + retry_in;
        let why = format!("{LIMIT_HELD} {limit}");
        let handed = self
            .hand_on_unrun(msg, envelope, job_id, attempt, retry_at, &why)
            .await;
        if handed == Some(true) {
            self.metrics
                .limit_deferred
                .get_or_create(&Metrics::limit(limit))
                .inc();
            debug!(sked.job.id = %job_id, sked.fire.id = %envelope.fire_id, attempt, limit, retry_in_ms = retry_in.as_millis() as u64, "held by a global limit, job handed to the retry topic unrun");
        }
        handed.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sked_core::config::{Layers, load};

    fn limits(sets: &[&str]) -> Limits {
        let config = load(&Layers {
            sets: sets.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        })
        .expect("config");
        Limits::from_options(&config.global_limits).expect("limits")
    }

    fn envelope(
        app: &str,
        tenant: Option<&str>,
        labels: &[(&str, &str)],
        payload: &str,
    ) -> Envelope {
        Envelope {
            job_id: "j".into(),
            fire_id: "j@1".into(),
            app: app.into(),
            due_at: Utc::now(),
            fired_at: Utc::now(),
            attempt: 1,
            payload: serde_json::value::RawValue::from_string(payload.into()).expect("json"),
            priority: Default::default(),
            timeout_ms: None,
            retry: None,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            tenant: tenant.map(str::to_owned),
        }
    }

    #[test]
    fn nothing_configured_is_no_limits() {
        let config = load(&Layers::default()).expect("config");
        assert!(Limits::from_options(&config.global_limits).is_none());
    }

    #[test]
    fn a_job_gets_the_slots_and_rates_that_apply_to_it() {
        let l = limits(&[
            "global_limits.apps.sms={ per_second = 50.0 }",
            "global_limits.tenants.acme={ per_second = 5.0, burst = 3 }",
            "global_limits.default_tenant={ per_second = 1.0 }",
            "global_limits.concurrency.customer={ label = \"customer\", max = 2 }",
            "global_limits.concurrency.account={ field = \"account\", max = 1, apps = [\"mail\"] }",
            "global_limits.concurrency.deep={ field = \"/a/b\", max = 3 }",
        ]);
        let plan = l.plan(&envelope(
            "sms",
            Some("acme"),
            &[("customer", "c1")],
            r#"{"account": 7, "a": {"b": true}}"#,
        ));
        let slots: Vec<(&str, &str, u32)> = plan
            .slots
            .iter()
            .map(|s| (s.key.as_str(), s.value.as_str(), s.max))
            .collect();
        // `account` is only for `mail`; `deep` reads a nested boolean.
        assert_eq!(slots, vec![("customer", "c1", 2), ("deep", "true", 3)]);
        let rates: Vec<(&str, f64, u32, &str)> = plan
            .rates
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.rate.per_second,
                    r.rate.burst,
                    r.label.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rates,
            vec![
                ("a:sms", 50.0, 1, "app:sms"),
                ("t:acme", 5.0, 3, "tenant:acme")
            ]
        );

        let plan = l.plan(&envelope(
            "mail",
            Some("other"),
            &[],
            r#"{"account": "x-1"}"#,
        ));
        assert_eq!(plan.slots.len(), 1);
        assert_eq!(
            (plan.slots[0].key.as_str(), plan.slots[0].value.as_str()),
            ("account", "x-1")
        );
        assert_eq!(plan.rates.len(), 1);
        assert_eq!(
            (plan.rates[0].name.as_str(), plan.rates[0].label.as_str()),
            ("t:other", "tenant:*")
        );

        // No label, no field, an object value, no tenant: nothing applies.
        let plan = l.plan(&envelope("mail", None, &[], r#"{"account": {"id": 1}}"#));
        assert_eq!(plan, Plan::default());
        // A payload that is not an object is not an error.
        let plan = l.plan(&envelope("mail", None, &[], "[1,2]"));
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn bad_tables_name_the_key() {
        for (set, key) in [
            (
                "global_limits.apps.a={ per_second = 0.0 }",
                "global_limits.apps.a.per_second",
            ),
            (
                "global_limits.apps.a={ per_second = 1.0, burst = 0 }",
                "global_limits.apps.a.burst",
            ),
            (
                "global_limits.concurrency.c={ max = 1 }",
                "global_limits.concurrency.c",
            ),
            (
                "global_limits.concurrency.c={ label = \"x\", field = \"y\", max = 1 }",
                "global_limits.concurrency.c",
            ),
            (
                "global_limits.concurrency.c={ label = \"x\", max = 0 }",
                "global_limits.concurrency.c.max",
            ),
            (
                "global_limits.concurrency.c={ label = \"x\", mx = 1 }",
                "mx",
            ),
            ("global_limits.max_wait=\"2h\"", "global_limits.max_wait"),
        ] {
            let err = load(&Layers {
                sets: vec![set.to_owned()],
                ..Default::default()
            })
            .expect_err(set)
            .to_string();
            assert!(err.contains(key), "{set}: {err}");
        }
    }
}
