//! Evidence about lost fires, to tell a sked bug from a broker one: where each lost fire's
//! records are in Kafka (due, retry and dead-letter topics, with partition, offset and
//! attempt), what the app saw of it, and how far the worker group has committed on those
//! partitions compared with their high watermarks. A fire record below the committed offset
//! that the app never saw succeed was committed without being run.

use std::{collections::HashMap, time::Duration};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};

use super::app::Exec;

/// One record that carries a fire id.
struct Seen {
    topic: String,
    partition: i32,
    offset: i64,
    attempt: String,
}

fn consumer(brokers: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?)
}

/// Every record of `topic` with a `sked-fire-id` header, by fire id.
fn scan(
    brokers: &str,
    topic: &str,
    partitions: i32,
    into: &mut HashMap<String, Vec<Seen>>,
) -> anyhow::Result<()> {
    let c = consumer(brokers, &crate::unique("chaos-evidence"))?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for p in 0..partitions {
        let (_, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        ends.insert(p, high);
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    let mut done: HashMap<i32, i64> = HashMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline
        && ends
            .iter()
            .any(|(p, end)| done.get(p).copied().unwrap_or(0) < *end)
    {
        let Some(Ok(m)) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        done.insert(m.partition(), m.offset() + 1);
        let m = m.detach();
        if let Some(fire) = crate::header(&m, "sked-fire-id") {
            into.entry(fire).or_default().push(Seen {
                topic: topic.to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                attempt: crate::header(&m, "sked-attempt").unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// The worker group's committed offset and the high watermark of each partition of `topic`.
fn offsets(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Vec<(i64, i64)>> {
    let c = consumer(brokers, group)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10))?;
    (0..partitions)
        .map(|p| {
            let at = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            };
            let (_, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            Ok((at, high))
        })
        .collect()
}

/// What the topics and the app say about each of `lost` (first 10), plus the worker group's
/// offsets. Blocking (Kafka reads).
pub fn gather(
    brokers: &str,
    topics: [&str; 3],
    worker_group: &str,
    partitions: i32,
    lost: &[String],
    execs: &[Exec],
    start_ms: i64,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut seen = HashMap::new();
    for topic in topics {
        if let Err(err) = scan(brokers, topic, partitions, &mut seen) {
            lines.push(format!("cannot read {topic}: {err:#}"));
        }
    }
    let due = topics[0];
    match offsets(brokers, worker_group, due, partitions) {
        Ok(o) => {
            let text: Vec<String> = o
                .iter()
                .enumerate()
                .map(|(p, (c, h))| format!("p{p} committed {c} / end {h}"))
                .collect();
            lines.push(format!("worker group on {due}: {}", text.join(", ")));
        }
        Err(err) => lines.push(format!("cannot read the worker group's offsets: {err:#}")),
    }
    for fire in lost.iter().take(10) {
        let records: Vec<String> = seen
            .get(fire)
            .map(|v| {
                v.iter()
                    .map(|s| {
                        format!(
                            "{}[{}]@{} attempt {}",
                            s.topic, s.partition, s.offset, s.attempt
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let calls: Vec<String> = execs
            .iter()
            .filter(|e| &e.fire_id == fire)
            .map(|e| {
                format!(
                    "attempt {} answered {} at {:.1} s",
                    e.attempt,
                    e.status,
                    (e.at_ms - start_ms) as f64 / 1000.0
                )
            })
            .collect();
        lines.push(format!(
            "{fire}: records [{}]; app saw [{}]",
            records.join(", "),
            calls.join(", ")
        ));
    }
    lines
}
