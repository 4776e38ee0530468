//! The figures of `GET /v1/cluster`: the due index over every shard and the lag of each
//! service's consumer group, read every [`EVERY`] by one task, so a call (the console's
//! overview, a script) costs nothing but a copy. Warnings that hold now: the schedulers are
//! behind by more than `scheduler.misfire_threshold`, a group has no member, a partition has
//! lag and has not moved for `kafka.stall_after`, a group could not be read. Rates come from
//! how far the offsets moved between two reads ([`Totals`]); the running processes from what
//! they announce (`sked_core::store::replicas`), and with them the schedulers' firing lateness
//! of the last minute; Redis memory from `INFO memory` against the pending jobs.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use chrono::Utc;
use rdkafka::consumer::BaseConsumer;
use sked_api::stats::{
    Cluster, DueIndex, GroupLag, LatenessWindow, PartitionLag, Rates, RedisMemory,
};
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

/// Counts that only grow, summed over partitions, read together: their differences between
/// two reads are the [`Rates`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    /// Committed offsets of the ingest group on the ingest topics.
    ingested: i64,
    /// High watermarks of the due topics.
    fired: i64,
    /// Committed offsets of the worker group on the due topics.
    executed: i64,
    /// High watermarks of the retry topic.
    retried: i64,
    /// High watermarks of the DLQ.
    dead: i64,
}

impl Totals {
    /// The rates from `before` (read `seconds` earlier) to `self`. A count that went back (a
    /// topic deleted and made again) counts as 0.
    fn rates_since(&self, before: &Totals, seconds: f64) -> Rates {
        let per_s = |now: i64, then: i64| (now - then).max(0) as f64 / seconds;
        let executed = per_s(self.executed, before.executed);
        let retried = per_s(self.retried, before.retried);
        let dead = per_s(self.dead, before.dead);
        Rates {
            seconds,
            ingested_per_s: per_s(self.ingested, before.ingested),
            fired_per_s: per_s(self.fired, before.fired),
            executed_per_s: executed,
            retried_per_s: retried,
            dead_lettered_per_s: dead,
            failure_rate: (executed > 0.0).then(|| (retried + dead) / executed),
        }
    }
}

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
    let dlq = vec![config.topics.dlq.clone()];
    let mut before: Option<(Instant, Totals)> = None;
    loop {
        let (mut c, totals) = read(&store, &groups, behind_warn, stall_after, &mut still).await;
        let at = Instant::now();
        let totals = match totals {
            Some(mut t) => {
                // The DLQ has no group of sked's: its watermarks, through any client.
                let (client, dlq) = (groups[0].client.clone(), dlq.clone());
                match tokio::task::spawn_blocking(move || stall::written(&client, &dlq)).await {
                    Ok(Ok(dead)) => {
                        t.dead = dead;
                        Some(t)
                    }
                    Ok(Err(e)) => {
                        warn!(error = %e, "cluster view: cannot read the dlq's watermarks");
                        c.warnings
                            .push(format!("the dlq could not be read (no rates): {e}"));
                        None
                    }
                    Err(e) => {
                        warn!(error = %e, "cluster view: the dlq read failed");
                        c.warnings
                            .push(format!("the dlq could not be read (no rates): {e}"));
                        None
                    }
                }
            }
            None => None,
        };
        if let (Some((then, b)), Some(t)) = (&before, &totals) {
            let seconds = at.duration_since(*then).as_secs_f64();
            if seconds > 0.0 {
                c.rates = Some(t.rates_since(b, seconds));
            }
        }
        before = totals.map(|t| (at, t));
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
) -> (Cluster, Option<Totals>) {
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
    let replicas = match store.replicas().await {
        Ok(r) => r,
        Err(e) => {
            warnings.push(format!(
                "the list of running processes could not be read: {e}"
            ));
            Vec::new()
        }
    };
    let lateness = LatenessWindow::merge(
        replicas
            .iter()
            .filter(|r| r.service == "scheduler")
            .filter_map(|r| r.lateness.as_ref()),
    );
    let redis = match redis_memory(store).await {
        Ok(m) => Some(m),
        Err(e) => {
            warnings.push(format!("redis memory could not be read: {e}"));
            None
        }
    };
    let mut out = Vec::new();
    let at = Instant::now();
    let mut totals = Some(Totals::default());
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
                totals = None;
            }
            Ok((members, readings)) => {
                lag.members = members;
                let (committed, high): (i64, i64) = readings
                    .values()
                    .fold((0, 0), |(c, h), r| (c + r.committed, h + r.high));
                if let Some(t) = &mut totals {
                    match g.service {
                        "ingest" => t.ingested = committed,
                        "worker" => (t.executed, t.fired) = (committed, high),
                        _ => t.retried = high,
                    }
                }
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
    (
        Cluster {
            at: now,
            due,
            groups: out,
            warnings,
            rates: None,
            replicas,
            lateness,
            redis,
        },
        totals,
    )
}

/// Redis memory against the jobs that will still fire.
async fn redis_memory(store: &Store) -> Result<RedisMemory, sked_core::store::Error> {
    let (used_bytes, nodes) = store.memory().await?;
    let pending = store.stats().await?.pending();
    Ok(RedisMemory {
        used_bytes,
        nodes,
        pending,
        bytes_per_pending: used_bytes.checked_div(pending),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_the_growth_per_second_and_never_negative() {
        let before = Totals {
            ingested: 100,
            fired: 50,
            executed: 40,
            retried: 2,
            dead: 7,
        };
        let now = Totals {
            ingested: 150,
            fired: 70,
            executed: 60,
            retried: 6,
            dead: 3,
        };
        let r = now.rates_since(&before, 2.0);
        assert_eq!(r.ingested_per_s, 25.0);
        assert_eq!(r.fired_per_s, 10.0);
        assert_eq!(r.executed_per_s, 10.0);
        assert_eq!(r.retried_per_s, 2.0);
        assert_eq!(r.dead_lettered_per_s, 0.0, "a DLQ made again");
        assert_eq!(r.failure_rate, Some(0.2));
        assert_eq!(before.rates_since(&before, 5.0).failure_rate, None);
    }
}
