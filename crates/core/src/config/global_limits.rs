//! `[global_limits]`: limits on execution shared by every worker pod through Redis: a start
//! rate per app and per tenant, and concurrency keys (at most N jobs running at once per value
//! of a label or a payload field). The worker applies them (services/worker/src/limits.rs);
//! the Redis side is store/limits.rs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// `[global_limits]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalLimitsOptions {
    /// How long a job held back by a limit may wait inside the worker (polling a full
    /// concurrency key, or until its rate slot is due) before it is handed to the retry topic
    /// unrun, with the same attempt.
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
    /// Start rates by app.
    #[serde(default)]
    pub apps: BTreeMap<String, GlobalRateOptions>,
    /// Start rates by tenant.
    #[serde(default)]
    pub tenants: BTreeMap<String, GlobalRateOptions>,
    /// The start rate of each tenant not listed in `tenants` (each tenant has its own).
    #[serde(default)]
    pub default_tenant: Option<GlobalRateOptions>,
    /// Concurrency keys by name.
    #[serde(default)]
    pub concurrency: BTreeMap<String, ConcurrencyOptions>,
}

impl Default for GlobalLimitsOptions {
    fn default() -> Self {
        Self {
            max_wait: default_max_wait(),
            apps: BTreeMap::new(),
            tenants: BTreeMap::new(),
            default_tenant: None,
            concurrency: BTreeMap::new(),
        }
    }
}

fn default_max_wait() -> HumanDuration {
    HumanDuration::from(std::time::Duration::from_secs(5))
}

/// One start rate, shared by every worker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalRateOptions {
    /// Jobs started per second, across every worker.
    pub per_second: f64,
    /// Starts allowed at once after an idle spell (default 1: evenly spaced).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// One concurrency key: jobs with the same value of `label` (or of the payload's `field`)
/// run at most `max` at once, across every worker. A job without that label or field is not
/// limited by this key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyOptions {
    /// The label whose value is the key.
    #[serde(default)]
    pub label: Option<String>,
    /// The payload field whose value is the key: a top-level field name, or a JSON pointer
    /// (`/customer/id`). Strings are used as they are; numbers and booleans as their JSON
    /// text.
    #[serde(default)]
    pub field: Option<String>,
    /// Most jobs running at once per value.
    pub max: u32,
    /// Only the jobs of these apps (empty: every app).
    #[serde(default)]
    pub apps: Vec<String>,
}

impl GlobalLimitsOptions {
    /// Whether any limit is configured.
    pub fn any(&self) -> bool {
        !self.apps.is_empty()
            || !self.tenants.is_empty()
            || self.default_tenant.is_some()
            || !self.concurrency.is_empty()
    }

    /// The start rate of `tenant`.
    pub fn tenant(&self, tenant: &str) -> Option<&GlobalRateOptions> {
        self.tenants.get(tenant).or(self.default_tenant.as_ref())
    }

    /// Problems that serde cannot see.
    pub fn validate(&self, problems: &mut Vec<String>) {
        let rate = |key: String, r: &GlobalRateOptions, problems: &mut Vec<String>| {
            if !(r.per_second.is_finite() && r.per_second > 0.0 && r.per_second <= 1e6) {
                problems.push(format!(
                    "`{key}.per_second`: must be a positive number, at most 1000000"
                ));
            }
            if r.burst == Some(0) {
                problems.push(format!("`{key}.burst`: must be at least 1"));
            }
        };
        for (name, r) in &self.apps {
            rate(format!("global_limits.apps.{name}"), r, problems);
        }
        for (name, r) in &self.tenants {
            rate(format!("global_limits.tenants.{name}"), r, problems);
            if let Err(why) = crate::request::check_tenant(name) {
                problems.push(format!("`global_limits.tenants.{name}`: {why}"));
            }
        }
        if let Some(r) = &self.default_tenant {
            rate("global_limits.default_tenant".into(), r, problems);
        }
        for (name, c) in &self.concurrency {
            let key = format!("global_limits.concurrency.{name}");
            if !valid_name(name) {
                problems.push(format!("`{key}`: a key name is 1-64 of [A-Za-z0-9_.-]"));
            }
            match (&c.label, &c.field) {
                (Some(_), Some(_)) => problems.push(format!(
                    "`{key}`: sets both `label` and `field`; choose one"
                )),
                (None, None) => problems.push(format!(
                    "`{key}`: sets neither `label` nor `field`; one names where the key's value comes from"
                )),
                (Some(label), None) if label.is_empty() => {
                    problems.push(format!("`{key}.label`: must not be empty"));
                }
                (None, Some(field)) if field.is_empty() || field == "/" => {
                    problems.push(format!("`{key}.field`: must name a field"));
                }
                _ => {}
            }
            if c.max == 0 {
                problems.push(format!("`{key}.max`: must be at least 1"));
            }
        }
        if self.max_wait.get() > std::time::Duration::from_secs(3600) {
            problems.push("`global_limits.max_wait`: must be at most 1h".into());
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}
