//! Stall detection for the consumer groups sked runs: a partition of a consumed topic that
//! has lag (high watermark past the group's committed offset) and whose committed offset has
//! not moved for `kafka.stall_after` is stalled, whoever holds it: unassigned (a broker whose
//! group coordinator lost it), assigned to a member that stopped, or held up by one record.
//!
//! Every member of a group watches the whole group, not only its own partitions, from the
//! group's committed offsets and the high watermarks (a client of its own with the group's id
//! that never joins the group). A stall:
//! - is logged once when it starts (warn, with the committed offset, the high watermark and
//!   whether this member holds the partition) and once when it ends;
//! - is counted in `sked_consumer_stalled_partitions{topic,group}`;
//! - after another `stall_after`, turns the readiness check `consumer_progress` off on every
//!   member of the group, until no partition of it is stalled;
//! - is recovered where a bounded, safe recovery exists: a stalled partition that this member
//!   does not hold makes it leave and rejoin the group (at most once per `stall_after`), which
//!   starts a rebalance that hands out every partition again. A partition this member holds is
//!   not touched: its own consumer knows why it waits (a long job, a full in-flight bound).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{config::KafkaOptions, readiness::Readiness};

/// The readiness check a persisting stall turns off.
pub const READINESS: &str = "consumer_progress";

/// Partitions a member holds, kept by its consumer context on every rebalance.
#[derive(Clone, Default, Debug)]
pub struct Assigned(Arc<Mutex<BTreeSet<(String, i32)>>>);

impl Assigned {
    /// Replaces the set (an eager rebalance assigns everything at once).
    pub fn assign(&self, tpl: &TopicPartitionList) {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in tpl.elements() {
            set.insert((e.topic().to_owned(), e.partition()));
        }
    }

    /// Removes revoked partitions.
    pub fn revoke(&self, tpl: &TopicPartitionList) {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in tpl.elements() {
            set.remove(&(e.topic().to_owned(), e.partition()));
        }
    }

    fn holds(&self, topic: &str, partition: i32) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&(topic.to_owned(), partition))
    }
}

/// Leaves the group and joins it again (`unsubscribe`, `subscribe`), which starts a
/// rebalance. Records in flight finish as after any rebalance: their commits may fail, and the
/// records are redelivered and deduplicated.
pub fn rejoin<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::StreamConsumer<C>,
    topics: &[String],
) {
    consumer.unsubscribe();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    match consumer.subscribe(&names) {
        Ok(()) => info!(topics = ?topics, "left and rejoined the consumer group"),
        Err(err) => warn!(topics = ?topics, error = %err, "rejoining the consumer group failed"),
    }
}

/// Labels of the stall gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupTopic {
    /// The consumed topic.
    pub topic: String,
    /// The consumer group.
    pub group: String,
}

/// The watch's metrics, registered before the registry goes to the admin server.
#[derive(Clone, Default)]
pub struct Metrics {
    stalled: Family<GroupTopic, Gauge>,
    rejoins: Counter,
    errors: Counter,
}

impl Metrics {
    /// Creates and registers them: `sked_consumer_stalled_partitions{topic,group}`,
    /// `sked_consumer_rejoins_total`, `sked_consumer_watch_errors_total`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("sked_consumer");
        r.register(
            "stalled_partitions",
            "Partitions with lag whose committed offset has not moved for kafka.stall_after",
            m.stalled.clone(),
        );
        r.register(
            "rejoins",
            "Times this member left and rejoined its group to recover a stalled partition it did not hold",
            m.rejoins.clone(),
        );
        r.register(
            "watch_errors",
            "Stall checks that could not read offsets or watermarks",
            m.errors.clone(),
        );
        m
    }
}

/// What the watch needs.
pub struct Watch {
    /// The group.
    pub group: String,
    /// Its topics.
    pub topics: Vec<String>,
    /// `kafka.stall_after`.
    pub stall_after: Duration,
    /// This member's partitions.
    pub assigned: Assigned,
    /// Where to ask the member's consumer to leave and rejoin its group.
    pub rejoin: Arc<Notify>,
    /// The service's readiness.
    pub readiness: Readiness,
    /// The metrics.
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    committed: i64,
    /// Since when the partition has had lag with this committed offset (the first reading
    /// that saw both).
    since: Instant,
    lagging: bool,
    stalled: bool,
}

/// One partition's reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The group's committed offset (the low watermark when it has none).
    pub committed: i64,
    /// The high watermark.
    pub high: i64,
}

impl Watch {
    /// Checks every `stall_after / 4` (1 s to 15 s) until `cancel`. `stall_after` zero: off.
    pub async fn run(self, options: KafkaOptions, cancel: CancellationToken) -> anyhow::Result<()> {
        self.readiness.set(READINESS, true);
        if self.stall_after.is_zero() {
            return Ok(());
        }
        let client: Arc<BaseConsumer> = Arc::new(
            super::consumer_config(&options, "watch", &self.group)
                .create()
                .map_err(|e| {
                    anyhow::anyhow!("cannot create the stall watch's kafka client: {e}")
                })?,
        );
        let every = (self.stall_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(15));
        let mut progress: BTreeMap<(String, i32), Progress> = BTreeMap::new();
        let mut last_rejoin: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
            let c = client.clone();
            let topics = self.topics.clone();
            let group = self.group.clone();
            let read = tokio::task::spawn_blocking(move || read_group(&c, &group, &topics)).await;
            let readings = match read {
                Ok(Ok(r)) => r,
                Ok(Err(why)) => {
                    self.metrics.errors.inc();
                    warn!(group = %self.group, error = %why, "stall check could not read the group's offsets");
                    continue;
                }
                Err(join) => {
                    self.metrics.errors.inc();
                    warn!(group = %self.group, error = %join, "stall check failed");
                    continue;
                }
            };
            let now = Instant::now();
            let verdict = self.judge(&mut progress, &readings, now);
            for topic in &self.topics {
                let n = verdict.stalled.iter().filter(|(t, _)| t == topic).count();
                self.metrics
                    .stalled
                    .get_or_create(&GroupTopic {
                        topic: topic.clone(),
                        group: self.group.clone(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            self.readiness.set(READINESS, !verdict.persisting);
            let foreign = verdict
                .stalled
                .iter()
                .any(|(t, p)| !self.assigned.holds(t, *p));
            if foreign && last_rejoin.is_none_or(|at| now - at >= self.stall_after) {
                last_rejoin = Some(now);
                self.metrics.rejoins.inc();
                warn!(group = %self.group, "a stalled partition is not held by this member: leaving and rejoining the group to start a rebalance");
                self.rejoin.notify_one();
            }
        }
    }

    /// Updates `progress` with `readings` taken at `now`.
    fn judge(
        &self,
        progress: &mut BTreeMap<(String, i32), Progress>,
        readings: &BTreeMap<(String, i32), Reading>,
        now: Instant,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        progress.retain(|k, _| readings.contains_key(k));
        for ((topic, partition), r) in readings {
            let key = (topic.clone(), *partition);
            let lag = r.high - r.committed;
            let entry = progress.entry(key.clone()).or_insert(Progress {
                committed: r.committed,
                since: now,
                lagging: lag > 0,
                stalled: false,
            });
            if lag <= 0 || entry.committed != r.committed || !entry.lagging {
                if entry.stalled {
                    info!(group = %self.group, topic = %topic, partition, committed = r.committed, high = r.high, "partition makes progress again");
                }
                *entry = Progress {
                    committed: r.committed,
                    since: now,
                    lagging: lag > 0,
                    stalled: false,
                };
                continue;
            }
            let still = now - entry.since;
            if still < self.stall_after {
                continue;
            }
            if !entry.stalled {
                entry.stalled = true;
                let held_here = self.assigned.holds(topic, *partition);
                warn!(group = %self.group, topic = %topic, partition, committed = r.committed, high = r.high, lag, held_here, stalled_for_s = still.as_secs(), "partition stalled: it has lag and its committed offset has not moved");
            }
            if still >= self.stall_after * 2 {
                verdict.persisting = true;
            }
            verdict.stalled.push(key);
        }
        verdict
    }
}

#[derive(Debug, Default)]
struct Verdict {
    stalled: Vec<(String, i32)>,
    persisting: bool,
}

/// Members of `group` as the broker reports them (`None`: it did not say).
pub fn group_members(client: &BaseConsumer, group: &str) -> Option<u32> {
    let list = client
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .ok()?;
    let g = list.groups().iter().find(|g| g.name() == group)?;
    u32::try_from(g.members().len()).ok()
}

/// Every partition of `topics`, from the broker's metadata.
fn partitions(client: &BaseConsumer, topics: &[String]) -> Result<Vec<(String, i32)>, String> {
    let mut out = Vec::new();
    for topic in topics {
        let metadata = client
            .fetch_metadata(Some(topic), READ_TIMEOUT)
            .map_err(|e| format!("metadata of {topic}: {e}"))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                out.push((t.name().to_owned(), p.id()));
            }
        }
    }
    Ok(out)
}

/// How long one metadata, offsets or watermarks request may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The sum of the high watermarks of every partition of `topics`: how many records were
/// ever written to them.
pub fn written(client: &BaseConsumer, topics: &[String]) -> Result<i64, String> {
    let mut sum = 0;
    for (topic, partition) in partitions(client, topics)? {
        let (_, high) = client
            .fetch_watermarks(&topic, partition, READ_TIMEOUT)
            .map_err(|e| format!("watermarks of {topic}/{partition}: {e}"))?;
        sum += high.max(0);
    }
    Ok(sum)
}

/// The committed offset and high watermark of every partition of `topics` for `group`.
pub fn read_group(
    client: &BaseConsumer,
    group: &str,
    topics: &[String],
) -> Result<BTreeMap<(String, i32), Reading>, String> {
    let timeout = READ_TIMEOUT;
    let partitions = partitions(client, topics)?;
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in &partitions {
        tpl.add_partition(topic, *partition);
    }
    let committed = client
        .committed_offsets(tpl, timeout)
        .map_err(|e| format!("committed offsets of group {group}: {e}"))?;
    let mut out = BTreeMap::new();
    for (topic, partition) in partitions {
        let (low, high) = client
            .fetch_watermarks(&topic, partition, timeout)
            .map_err(|e| format!("watermarks of {topic}/{partition}: {e}"))?;
        let at = committed
            .find_partition(&topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(n) => Some(n),
                _ => None,
            })
            .unwrap_or(low)
            .max(low);
        out.insert(
            (topic, partition),
            Reading {
                committed: at,
                high,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Watch {
        Watch {
            group: "g".into(),
            topics: vec!["t".into()],
            stall_after: Duration::from_secs(10),
            assigned: Assigned::default(),
            rejoin: Arc::new(Notify::new()),
            readiness: Readiness::default(),
            metrics: Metrics::default(),
        }
    }

    fn readings(parts: &[(i32, i64, i64)]) -> BTreeMap<(String, i32), Reading> {
        parts
            .iter()
            .map(|(p, committed, high)| {
                (
                    ("t".to_owned(), *p),
                    Reading {
                        committed: *committed,
                        high: *high,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn lag_without_progress_for_stall_after_is_a_stall_and_progress_ends_it() {
        let w = watch();
        let mut progress = BTreeMap::new();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        // p0 has lag and stands still; p1 has none; p2 moves.
        let v = w.judge(
            &mut progress,
            &readings(&[(0, 5, 9), (1, 9, 9), (2, 1, 9)]),
            t0,
        );
        assert!(v.stalled.is_empty());
        let v = w.judge(
            &mut progress,
            &readings(&[(0, 5, 9), (1, 9, 12), (2, 3, 9)]),
            t0 + 9 * s,
        );
        assert!(v.stalled.is_empty(), "not yet stall_after");
        // p1's lag is new at 9 s: it counts from then.
        let v = w.judge(
            &mut progress,
            &readings(&[(0, 5, 9), (1, 9, 12), (2, 4, 9)]),
            t0 + 10 * s,
        );
        assert_eq!(v.stalled, vec![("t".to_owned(), 0)]);
        assert!(!v.persisting);
        let v = w.judge(
            &mut progress,
            &readings(&[(0, 5, 9), (1, 9, 12), (2, 5, 9)]),
            t0 + 19 * s,
        );
        assert_eq!(v.stalled, vec![("t".to_owned(), 0), ("t".to_owned(), 1)]);
        assert!(
            !v.persisting,
            "p0 stood still for 19 s, under 2 x stall_after"
        );
        let v = w.judge(
            &mut progress,
            &readings(&[(0, 5, 9), (1, 9, 12), (2, 6, 9)]),
            t0 + 20 * s,
        );
        assert_eq!(v.stalled.len(), 2);
        assert!(v.persisting, "p0 stood still for 2 x stall_after");
        let v = w.judge(
            &mut progress,
            &readings(&[(0, 6, 9), (1, 12, 12), (2, 9, 9)]),
            t0 + 21 * s,
        );
        assert!(v.stalled.is_empty() && !v.persisting);
    }
}
