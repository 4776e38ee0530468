//! The readiness of a service: named checks, set by the service as its dependencies come and
//! go, and read by `/readyz` ([`crate::admin`]) and the supervision of its tasks
//! ([`crate::supervise`]). A leaf module: every layer that reports readiness (the store, the
//! Kafka adapters, the runtime) depends on it, and it depends on nothing of sked's.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

/// Named readiness checks, set by the service as dependencies come and go. Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

impl Readiness {
    /// Readiness with the given checks, all failing until set.
    pub fn new(checks: &[&'static str]) -> Self {
        let r = Self::default();
        for c in checks {
            r.set(c, false);
        }
        r
    }

    /// Records a check result.
    pub fn set(&self, check: &'static str, ok: bool) {
        if let Ok(mut checks) = self.checks.lock() {
            checks.insert(check, ok);
        }
    }

    /// True when every check passes.
    pub fn is_ready(&self) -> bool {
        self.checks
            .lock()
            .map(|c| c.values().all(|ok| *ok))
            .unwrap_or(false)
    }

    /// Every check and its result, for `/readyz`.
    pub fn snapshot(&self) -> BTreeMap<&'static str, bool> {
        self.checks.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// The readiness checks of a service that uses Redis and Kafka.
pub fn standard() -> Readiness {
    let readiness = Readiness::new(&["redis", "kafka", "not_draining"]);
    readiness.set("not_draining", true);
    readiness
}
