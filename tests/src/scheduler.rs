//! A scheduler started in-process, and helpers to put jobs straight into the store.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use sked_core::{
    config::Config,
    request::{self, Limits, Origin},
    store::{Op, Store},
};
use tokio_util::sync::CancellationToken;

/// A running in-process scheduler.
pub struct Scheduler {
    /// Admin address.
    pub admin: SocketAddr,
    run: crate::InProcess,
}

impl Scheduler {
    /// Starts one with `config`.
    pub async fn start(config: Config) -> Self {
        let cancel = CancellationToken::new();
        let running = sked_scheduler::start(config, cancel.clone())
            .await
            .expect("start scheduler");
        let admin = running.admin_addr;
        let run = crate::InProcess::spawn("scheduler", cancel.clone(), running.wait());
        Self { admin, run }
    }

    /// Cancels and waits for the drain.
    pub async fn stop(self) {
        self.run.stop().await;
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        crate::admin_metrics(self.admin).await
    }
}

/// The value of an un-labelled counter or gauge in a metrics text (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Parses `json` like ingest does (now = `now`) and stores it, with its first due instant
/// replaced by `due` when given (to stand for a job whose time passed while no scheduler ran).
pub async fn put_jobs(
    config: &Config,
    jobs: &[(String, Option<DateTime<Utc>>)],
    now: DateTime<Utc>,
) {
    let store = Store::connect(&config.redis).await.expect("connect redis");
    let limits = Limits {
        max_bytes: config.limits.max_request_bytes,
        max_horizon: config.limits.max_horizon.get(),
        default_timezone: config.default_timezone,
        apps: None,
    };
    let origin = Origin::new(now);
    let mut ops = Vec::with_capacity(jobs.len());
    for (json, due) in jobs {
        let mut spec = request::parse(json.as_bytes(), &limits, &origin).expect("valid request");
        if let Some(due) = due {
            spec.first_due = *due;
        }
        ops.push(Op::insert(spec, json.as_bytes()));
        if ops.len() == 2000 {
            store.apply(&ops).await.expect("store jobs");
            ops.clear();
        }
    }
    store.apply(&ops).await.expect("store jobs");
}
