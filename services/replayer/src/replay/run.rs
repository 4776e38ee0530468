//! The [`Replays`] handle and its tasks: one per replay it publishes (holding the replay's
//! lease, resuming after an error) and the sweep that takes over unfinished replays whose
//! owner died.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use rdkafka::producer::FutureProducer;
use sked_core::store::Connection;
use tokio::time::Instant;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use super::Error;
use crate::{metrics::Metrics, scan::Scanner};

/// How often the owner renews the lease.
const RENEW: Duration = Duration::from_secs(1);
/// How often each replayer looks for unfinished replays without an owner.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

/// The replays of one replayer process. Cheap to clone.
#[derive(Clone)]
pub struct Replays {
    pub(super) conn: Connection,
    pub(super) prefix: String,
    pub(super) scanner: Scanner,
    pub(super) producer: FutureProducer,
    pub(super) dlq_topic: String,
    pub(super) max_replays: u32,
    pub(super) default_rate: u32,
    pub(super) metrics: Metrics,
    pub(super) owner: String,
    running: Arc<Mutex<HashSet<String>>>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

/// What [`Replays::new`] needs.
pub struct Settings {
    /// `redis.key_prefix`.
    pub prefix: String,
    /// `topics.dlq`.
    pub dlq_topic: String,
    /// `replayer.max_replays`.
    pub max_replays: u32,
    /// `replayer.replay_rate`.
    pub default_rate: u32,
}

impl Replays {
    /// The replays handle; replays stop (to be resumed) on `cancel`.
    pub fn new(
        conn: Connection,
        scanner: Scanner,
        producer: FutureProducer,
        settings: Settings,
        metrics: Metrics,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            conn,
            prefix: settings.prefix,
            scanner,
            producer,
            dlq_topic: settings.dlq_topic,
            max_replays: settings.max_replays,
            default_rate: settings.default_rate,
            metrics,
            owner: uuid::Uuid::now_v7().simple().to_string(),
            running: Arc::default(),
            tracker: TaskTracker::new(),
            cancel,
        }
    }

    /// Waits for every replay task after cancel.
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Resumes unfinished replays whose lease expired, now and every [`SWEEP_INTERVAL`],
    /// until cancel.
    pub async fn sweep(self) -> anyhow::Result<()> {
        loop {
            if let Err(err) = self.sweep_once().await {
                warn!(error = %err, "looking for unfinished replays failed");
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
        }
    }

    async fn sweep_once(&self) -> Result<(), Error> {
        for id in self.active().await? {
            if self.cancel.is_cancelled() {
                break;
            }
            if self.lock_running().contains(&id) {
                continue;
            }
            if self.status(&id).await?.as_deref() != Some("running") {
                self.deactivate(&id).await?;
                continue;
            }
            if self.acquire(&id).await? {
                if !self.lock_running().insert(id.clone()) {
                    continue;
                }
                info!(replay.id = %id, "resuming unfinished replay");
                self.count_resume(&id).await?;
                self.spawn(id, false);
            }
        }
        Ok(())
    }

    /// The ids of the replays this process is publishing.
    pub(super) fn lock_running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs replay `id` to the end in a tracked task, holding its lease.
    pub(super) fn spawn(&self, id: String, fresh: bool) {
        let this = self.clone();
        self.tracker.spawn(async move {
            let started = Instant::now();
            let stop = this.cancel.child_token();
            let renewer = {
                let (this, id, stop) = (this.clone(), id.clone(), stop.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(RENEW) => {}
                        }
                        match this.renew_lease(&id).await {
                            Ok(true) => {}
                            Ok(false) => {
                                warn!(replay.id = %id, "replay lease lost; stopping");
                                stop.cancel();
                                return;
                            }
                            Err(err) => warn!(replay.id = %id, error = %err, "lease renewal failed"),
                        }
                    }
                })
            };
            let mut fresh = fresh;
            let mut backoff = sked_core::backoff::Backoff::new(Duration::from_secs(10));
            loop {
                match this.publish(&id, fresh, &stop).await {
                    Ok(()) => {
                        this.metrics
                            .replay_seconds
                            .observe(started.elapsed().as_secs_f64());
                        break;
                    }
                    Err(Error::Interrupted) => break,
                    Err(err) => {
                        warn!(replay.id = %id, error = %err, "replay failed; resuming after a backoff");
                        this.record_error(&id, &err).await;
                        fresh = false;
                        if !backoff.sleep(&stop).await {
                            break;
                        }
                    }
                }
            }
            stop.cancel();
            let _ = renewer.await;
            let _ = this.release_lease(&id).await;
            this.lock_running().remove(&id);
        });
    }
}
