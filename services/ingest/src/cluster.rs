//! The figures of `GET /v1/cluster`: the due index over every shard and the lag of each
//! service's consumer group, read every [`EVERY`] by one task, so a call (the console's
//! overview, a script) costs nothing but a copy. Warnings that hold now: the schedulers are
//! behind by more than `scheduler.misfire_threshold`, a group has no member, a partition has
//! lag and has not moved for `kafka.stall_after`, a group could not be read.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use chrono::Utc;
use rdkafka::consumer::BaseConsumer;
use sked_api::stats::{Cluster, DueIndex, GroupLag, PartitionLag};
use sked_core::{
    config::Config,
    job::Shard,
    kafka::{self, stall},
    store::Store,
};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How often the figures are read.
pub const EVERY: Duration = Duration::from_secs(5);

/// The latest figures; `None` until the first read.
#[derive(Clone, Default)]
pub struct View(Arc<RwLock<Option<Cluster>>>);

impl View {
    /// The latest figures.
    pub fn get(&self) -> Option<Cluster> {
        self.0.read().map(|v| v.clone()).unwrap_or_default()
    }

    fn set(&self, c: Cluster) {
        if let Ok(mut v) = self.0.write() {
            *v = Some(c);
        }
    }
}

struct Group {
    service: &'static str,
    id: String,
    topics: Vec<String>,
    client: Arc<BaseConsumer>,
}

/// Since when a partition has had lag without its committed offset moving.
type Still = BTreeMap<(String, String, i32), (i64, Instant)>;

/// Reads the figures into `view` every [`EVERY`] until `cancel`.
pub async fn run(
    view: View,
    config: Config,
    store: Store,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut groups = Vec::new();
    let mut ingest_topics = vec![config.topics.ingest.clone()];
    ingest_topics.extend(config.ingest.topics.iter().cloned());
    for (service, id, topics) in [
        ("ingest", config.ingest.group_id.clone(), ingest_topics),
        (
            "worker",
            config.worker.group_id.clone(),
            config.worker_topics(),
        ),
        (
            "replayer",
            config.replayer.group_id.clone(),
            vec![config.topics.retry.clone()],
        ),
    ] {
        // A client with the group's id reads its committed offsets; it never subscribes, so it
        // never joins the group.
        let client: BaseConsumer = kafka::consumer_config(&config.kafka, "cluster-view", &id)
            .create()
            .map_err(|e| anyhow::anyhow!("cannot create the cluster view's kafka client: {e}"))?;
        groups.push(Group {
            service,
            id,
            topics,
            client: Arc::new(client),
        });
    }
    let behind_warn = config.scheduler.misfire_threshold.get();
    let stall_after = config.kafka.stall_after.get();
    let mut still = Still::new();
    loop {
        let c = read(&store, &groups, behind_warn, stall_after, &mut still).await;
        view.set(c);
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

async fn read(
    store: &Store,
    groups: &[Group],
    behind_warn: Duration,
    stall_after: Duration,
    still: &mut Still,
) -> Cluster {
    let now = Utc::now();
    let mut warnings = Vec::new();
    let due = match due_index(store, now.timestamp_millis()).await {
        Ok(d) => d,
        Err(e) => {
            warnings.push(format!("the due index could not be read: {e}"));
            DueIndex::default()
        }
    };
    if due.behind_ms > i64::try_from(behind_warn.as_millis()).unwrap_or(i64::MAX) {
        warnings.push(format!(
            "the schedulers are behind: the earliest due job is {} s late ({} jobs due now)",
            due.behind_ms / 1000,
            due.due_now
        ));
    }
    let mut out = Vec::new();
    let at = Instant::now();
    for g in groups {
        let (client, id, topics) = (g.client.clone(), g.id.clone(), g.topics.clone());
        let read = tokio::task::spawn_blocking(move || {
            let members = stall::group_members(&client, &id);
            stall::read_group(&client, &id, &topics).map(|r| (members, r))
        })
        .await
        .unwrap_or_else(|e| Err(format!("the read failed: {e}")));
        let mut lag = GroupLag {
            service: g.service.to_owned(),
            group: g.id.clone(),
            members: None,
            lag: 0,
            partitions: Vec::new(),
            error: None,
        };
        match read {
            Err(e) => {
                warn!(group = %g.id, error = %e, "cluster view: cannot read the group");
                warnings.push(format!("group {} could not be read: {e}", g.id));
                lag.error = Some(e);
            }
            Ok((members, readings)) => {
                lag.members = members;
                for ((topic, partition), r) in readings {
                    let behind = (r.high - r.committed).max(0);
                    let key = (g.id.clone(), topic.clone(), partition);
                    let since = match still.get(&key) {
                        Some((committed, since)) if *committed == r.committed && behind > 0 => {
                            *since
                        }
                        _ => at,
                    };
                    still.insert(key, (r.committed, since));
                    let still_for = at.duration_since(since);
                    if behind > 0 && !stall_after.is_zero() && still_for >= stall_after {
                        warnings.push(format!(
                            "{topic}/{partition}: group {} has {behind} records of lag and has not moved for {} s",
                            g.id,
                            still_for.as_secs()
                        ));
                    }
                    lag.lag += behind;
                    lag.partitions.push(PartitionLag {
                        topic,
                        partition,
                        committed: r.committed,
                        high: r.high,
                        lag: behind,
                        still_ms: i64::try_from(still_for.as_millis()).unwrap_or(i64::MAX),
                    });
                }
                if members == Some(0) && (g.service == "worker" || lag.lag > 0) {
                    warnings.push(format!(
                        "no member of group {} ({}s) consumes {}",
                        g.id,
                        g.service,
                        g.topics.join(", ")
                    ));
                }
            }
        }
        out.push(lag);
    }
    Cluster {
        at: now,
        due,
        groups: out,
        warnings,
    }
}

async fn due_index(store: &Store, now_ms: i64) -> Result<DueIndex, sked_core::store::Error> {
    let shards: Vec<Shard> = (0..store.keys().shards()).map(Shard).collect();
    let backlog = store.backlog(&shards).await?;
    let earliest = store.earliest(&shards).await?;
    let due_now = store.due_by(now_ms).await?;
    let oldest = earliest.into_iter().flatten().min();
    Ok(DueIndex {
        indexed: backlog.iter().map(|(d, _)| d).sum(),
        due_now,
        in_flight: backlog.iter().map(|(_, f)| f).sum(),
        oldest_due_at: oldest.and_then(chrono::DateTime::from_timestamp_millis),
        behind_ms: oldest.map_or(0, |o| (now_ms - o).max(0)),
    })
}
