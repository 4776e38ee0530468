//! The indexer: one replayer at a time (a lease in Redis) reads the DLQ topic and keeps the
//! [`DlqIndex`] up to date.
//!
//! It resumes each partition at the next offset the index recorded with the letters it holds
//! (the two are written by one script), so a replayer killed at any point leaves an index that
//! is complete up to that offset, and the next indexer reads on from there; a letter read twice
//! is not counted twice. With no recorded offset (a new index, or a Redis that lost it) it reads
//! the partition from the beginning: the index is rebuilt from the topic.
//!
//! A fetch at the recorded offset that skips records (the first record read is past it) or
//! finds nothing while the partition holds records past it is read again from the beginning,
//! skipping what is indexed. Kafka never needs this; the test broker (tansu 0.6) does: a fetch
//! that starts inside a record batch answers with the batches after it, or with nothing.
//!
//! Every [`MAINTAIN`] it also drops letters the topic no longer holds (below a partition's low
//! watermark, after retention), evicts the oldest letters beyond `replayer.index_max_letters`,
//! picks up new partitions and writes its heartbeat (`caught_up`: every partition read to its
//! end).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    error::KafkaError,
    message::BorrowedMessage,
};
use redis::AsyncCommands;
use sked_core::{backoff::Backoff, config::KafkaOptions, store::Connection};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{DlqIndex, Entry, Error};
use crate::{letter, metrics::Metrics, scan::Scanner};

/// The indexer's lease: a dead indexer's successor starts after at most this long.
const LEASE: Duration = Duration::from_secs(10);
/// Most letters written in one step.
const BATCH: usize = 500;
/// How long a step waits for more letters after its first.
const LINGER: Duration = Duration::from_millis(20);
/// How often partitions, retention, the size bound and the heartbeat are looked after.
pub const MAINTAIN: Duration = Duration::from_secs(5);
/// Letters removed per step of retention and eviction.
const REMOVE_STEP: usize = 1000;

const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// What the indexer needs.
pub struct Indexer {
    /// The index.
    pub index: DlqIndex,
    /// Redis, for the lease.
    pub conn: Connection,
    /// The brokers.
    pub kafka: KafkaOptions,
    /// `topics.dlq`.
    pub topic: String,
    /// `replayer.index_max_letters`.
    pub max_letters: u64,
    /// Reads watermarks.
    pub scanner: Scanner,
    /// Metrics.
    pub metrics: Metrics,
}

/// (low, high) watermarks per partition.
type Marks = BTreeMap<i32, (i64, i64)>;

/// Per partition: where reading stands.
#[derive(Debug, Default)]
struct Part {
    /// The next offset to index.
    next: i64,
    /// The offset the fetch was started at, until its first record or end arrives.
    started_at: Option<i64>,
    /// Read again from the beginning once already: take what comes.
    reread: bool,
    /// Sought back to the beginning, and no record at or before `next` seen since: records
    /// past `next` still come from the fetch before the seek, and are dropped.
    rewinding: bool,
    /// Reached the end of the partition since the last record.
    at_end: bool,
}

impl Indexer {
    /// Runs until `cancel`: waits for the lease, then indexes while holding it. Failures (Redis
    /// or Kafka down) are logged and retried with backoff; the task never ends early.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let owner = uuid::Uuid::now_v7().simple().to_string();
        let mut backoff = Backoff::new(Duration::from_secs(10));
        while !cancel.is_cancelled() {
            match self.acquire(&owner).await {
                Ok(true) => {
                    info!(topic = %self.topic, "indexing the dlq");
                    self.metrics.dlq_index_leader.set(1);
                    let result = self.lead(&owner, &cancel).await;
                    self.metrics.dlq_index_leader.set(0);
                    let _ = self.release(&owner).await;
                    match result {
                        Ok(()) => backoff.reset(),
                        Err(e) => {
                            warn!(error = %e, "dlq indexer failed; starting again");
                            backoff.sleep(&cancel).await;
                        }
                    }
                }
                Ok(false) => sleep(LEASE / 3, &cancel).await,
                Err(e) => {
                    warn!(error = %e, "dlq index lease failed");
                    backoff.sleep(&cancel).await;
                }
            }
        }
        Ok(())
    }

    async fn acquire(&self, owner: &str) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.index.lease_key())
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    async fn renew(&self, owner: &str) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::Script::new(RENEW)
            .key(self.index.lease_key())
            .arg(owner)
            .arg(LEASE.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(n == 1)
    }

    async fn release(&self, owner: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::Script::new(RELEASE)
            .key(self.index.lease_key())
            .arg(owner)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    fn consumer(&self) -> anyhow::Result<StreamConsumer> {
        let mut config: ClientConfig =
            sked_core::kafka::consumer_config(&self.kafka, "replayer-index", "sked-replayer-index");
        config.set("enable.partition.eof", "true");
        Ok(config.create()?)
    }

    /// Indexes while the lease holds; `Ok` when cancelled or the lease was lost.
    async fn lead(&self, owner: &str, cancel: &CancellationToken) -> anyhow::Result<()> {
        let consumer = self.consumer()?;
        let mut parts: BTreeMap<i32, Part> = BTreeMap::new();
        self.assign(&consumer, &mut parts).await?;
        let mut renew = tokio::time::interval(LEASE / 3);
        let mut maintain = tokio::time::interval(MAINTAIN);
        let mut batch: Vec<Entry> = Vec::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut caught_up = false;
        // Watermarks are read beside the loop: on a large topic the test broker takes seconds
        // to answer them, and the loop must go on reading meanwhile. The reader is watched
        // below: if it ends (a panic), indexing starts again rather than trimming by stale
        // watermarks for ever.
        let (marks_tx, mut marks_rx) = tokio::sync::watch::channel(None::<Marks>);
        let stop = cancel.child_token();
        let _stop = stop.clone().drop_guard();
        let (scanner, topic) = (self.scanner.clone(), self.topic.clone());
        let mut marks_reader = AbortOnDrop(tokio::spawn(async move {
            while !stop.is_cancelled() {
                match scanner.watermarks(&topic).await {
                    Ok(m) => {
                        let _ = marks_tx.send(Some(m));
                    }
                    Err(crate::scan::Error::NoTopic(_)) => {
                        let _ = marks_tx.send(Some(Marks::new()));
                    }
                    Err(e) => warn!(error = %e, topic, "dlq index: reading watermarks failed"),
                }
                sleep(MAINTAIN, &stop).await;
            }
        }));
        loop {
            tokio::select! {
                () = cancel.cancelled() => return self.flush(&mut batch, &mut next).await,
                ended = &mut marks_reader.0 => {
                    self.flush(&mut batch, &mut next).await?;
                    if cancel.is_cancelled() {
                        return Ok(());
                    }
                    anyhow::bail!("the dlq watermark reader ended: {}", match ended {
                        Ok(()) => "returned".to_owned(),
                        Err(e) => e.to_string(),
                    });
                }
                _ = renew.tick() => {
                    if !self.renew(owner).await? {
                        warn!("dlq index lease lost; standing by");
                        return Ok(());
                    }
                }
                _ = maintain.tick() => {
                    self.flush(&mut batch, &mut next).await?;
                    let marks = marks_rx.borrow_and_update().clone();
                    self.maintain(&consumer, &mut parts, marks).await?;
                }
                msg = consumer.recv() => {
                    self.take(&consumer, msg, &mut parts, &mut batch, &mut next)?;
                    // Linger briefly for more, up to a batch.
                    let until = tokio::time::Instant::now() + LINGER;
                    while batch.len() < BATCH {
                        match tokio::time::timeout_at(until, consumer.recv()).await {
                            Ok(msg) => self.take(&consumer, msg, &mut parts, &mut batch, &mut next)?,
                            Err(_) => break,
                        }
                    }
                    self.flush(&mut batch, &mut next).await?;
                    // Say so as soon as every partition is read to its end, not at the next
                    // maintenance only.
                    let now = parts.values().all(|p| p.at_end) && !parts.is_empty();
                    if now != caught_up {
                        caught_up = now;
                        self.index.beat(now).await?;
                        self.metrics.dlq_index_caught_up.set(i64::from(now));
                    }
                }
            }
        }
    }

    /// Handles one record or end of partition from the consumer.
    fn take(
        &self,
        consumer: &StreamConsumer,
        msg: Result<BorrowedMessage<'_>, KafkaError>,
        parts: &mut BTreeMap<i32, Part>,
        batch: &mut Vec<Entry>,
        next: &mut BTreeMap<i32, i64>,
    ) -> anyhow::Result<()> {
        match msg {
            Ok(msg) => {
                let (p, offset) = (msg.partition(), msg.offset());
                let Some(part) = parts.get_mut(&p) else {
                    return Ok(());
                };
                part.at_end = false;
                if part.rewinding {
                    if offset > part.next {
                        return Ok(());
                    }
                    part.rewinding = false;
                }
                if let Some(start) = part.started_at.take()
                    && offset > start
                    && !part.reread
                {
                    warn!(topic = %self.topic, partition = p, start, first = offset, "the fetch skipped records; reading the partition again from its beginning");
                    self.reread(consumer, p, part)?;
                    return Ok(());
                }
                if offset < part.next {
                    return Ok(());
                }
                part.next = offset + 1;
                next.insert(p, part.next);
                let detached = msg.detach();
                batch.push(self.index.entry(&letter::of(&detached)));
            }
            Err(KafkaError::PartitionEOF(p)) => {
                // Nothing at the start offset is fine when the partition ends there; the next
                // maintenance checks it against the watermarks.
                if let Some(part) = parts.get_mut(&p)
                    && !part.rewinding
                {
                    part.at_end = true;
                }
            }
            Err(e) => warn!(error = %e, topic = %self.topic, "dlq index read error"),
        }
        Ok(())
    }

    fn reread(&self, consumer: &StreamConsumer, p: i32, part: &mut Part) -> anyhow::Result<()> {
        part.reread = true;
        part.rewinding = true;
        part.started_at = None;
        part.at_end = false;
        consumer.seek(&self.topic, p, Offset::Beginning, Duration::from_secs(10))?;
        Ok(())
    }

    async fn flush(
        &self,
        batch: &mut Vec<Entry>,
        next: &mut BTreeMap<i32, i64>,
    ) -> anyhow::Result<()> {
        if batch.is_empty() && next.is_empty() {
            return Ok(());
        }
        let added = self.index.add(batch, next).await?;
        self.metrics.dlq_indexed.inc_by(added);
        batch.clear();
        next.clear();
        Ok(())
    }

    /// Assigns every partition of the topic not yet assigned, at its recorded next offset.
    async fn assign(
        &self,
        consumer: &StreamConsumer,
        parts: &mut BTreeMap<i32, Part>,
    ) -> anyhow::Result<()> {
        let partitions = match self.scanner.partitions(&self.topic).await {
            Ok(p) => p,
            Err(crate::scan::Error::NoTopic(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if partitions.iter().all(|p| parts.contains_key(p)) {
            return Ok(());
        }
        let recorded = self.index.next_offsets().await?;
        for &p in &partitions {
            parts.entry(p).or_insert_with(|| {
                let next = recorded.get(&p).copied().unwrap_or(0);
                Part {
                    next,
                    started_at: (next > 0).then_some(next),
                    ..Part::default()
                }
            });
        }
        let mut tpl = TopicPartitionList::new();
        for (&p, part) in parts.iter_mut() {
            // Every partition's fetch starts again at `next`: check its first record again.
            if part.next > 0 && !part.reread && !part.rewinding {
                part.started_at = Some(part.next);
            }
            let at = if part.rewinding {
                Offset::Beginning
            } else if part.next > 0 {
                Offset::Offset(part.next)
            } else {
                Offset::Beginning
            };
            tpl.add_partition_offset(&self.topic, p, at)?;
        }
        consumer.assign(&tpl)?;
        info!(topic = %self.topic, partitions = parts.len(), "dlq indexer assigned");
        Ok(())
    }

    /// New partitions, retention, the size bound and the heartbeat.
    async fn maintain(
        &self,
        consumer: &StreamConsumer,
        parts: &mut BTreeMap<i32, Part>,
        marks: Option<Marks>,
    ) -> anyhow::Result<()> {
        self.assign(consumer, parts).await?;
        // Watermarks not read yet: nothing to compare with this time.
        let marks_known = marks.is_some();
        let marks = marks.unwrap_or_default();
        for (&p, &(low, high)) in &marks {
            let Some(part) = parts.get_mut(&p) else {
                continue;
            };
            // Started at an offset, reached the end without a record, and the partition holds
            // records past it: the fetch lost them (see the module docs).
            if part.at_end && !part.reread && part.started_at.is_some() && high > part.next {
                warn!(topic = %self.topic, partition = p, next = part.next, high, "the fetch found nothing before the end; reading the partition again from its beginning");
                self.reread(consumer, p, part)?;
            }
            if low > 0 {
                self.trim(p, low).await?;
            }
            // Retention took what a rewind waits for: nothing at or before `next` is left.
            if part.rewinding && low > part.next {
                part.rewinding = false;
                part.next = low;
            }
        }
        self.evict().await?;
        let gone: BTreeSet<i32> = parts
            .keys()
            .filter(|p| marks_known && !marks.contains_key(p))
            .copied()
            .collect();
        let read_all = !parts.is_empty() && parts.values().all(|p| p.at_end) && gone.is_empty();
        let caught_up = read_all || (marks_known && marks.is_empty());
        self.index.beat(caught_up).await?;
        self.metrics.dlq_index_caught_up.set(i64::from(caught_up));
        self.metrics
            .dlq_index_letters
            .set(i64::try_from(self.index.len().await?).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Drops the letters of partition `p` below `low` (gone from the topic).
    async fn trim(&self, p: i32, low: i64) -> anyhow::Result<()> {
        loop {
            let ids = self.index.ids_below(p, low, REMOVE_STEP).await?;
            if ids.is_empty() {
                return Ok(());
            }
            let removed = self.remove(&ids, None).await?;
            self.metrics.index_removed("retention", removed);
        }
    }

    /// Evicts the oldest letters beyond the bound.
    async fn evict(&self) -> anyhow::Result<()> {
        loop {
            let len = self.index.len().await?;
            if len <= self.max_letters {
                return Ok(());
            }
            let over = usize::try_from(len - self.max_letters).unwrap_or(REMOVE_STEP);
            let ids = self.index.oldest(over.min(REMOVE_STEP)).await?;
            if ids.is_empty() {
                return Ok(());
            }
            let removed = self.remove(&ids, Some("evicted")).await?;
            warn!(
                removed,
                bound = self.max_letters,
                "dlq index over replayer.index_max_letters; the oldest letters left the index (not the topic)"
            );
            self.metrics.index_removed("evicted", removed);
        }
    }

    async fn remove(&self, ids: &[String], field: Option<&str>) -> anyhow::Result<u64> {
        let letters = self.index.letters(ids).await?;
        let entries: Vec<Entry> = letters
            .iter()
            .flatten()
            .map(|l| self.index.entry(l))
            .collect();
        let mut removed = self.index.remove(&entries, field).await?;
        // An id whose summary is gone or unreadable: drop its offset entry, or it stays.
        let stray: Vec<&String> = ids
            .iter()
            .zip(&letters)
            .filter(|(_, l)| l.is_none())
            .map(|(id, _)| id)
            .collect();
        if !stray.is_empty() {
            let mut conn = self.conn.clone();
            let n: u64 = conn.zrem(self.index.key("o"), stray).await?;
            removed += n;
        }
        Ok(removed)
    }
}

async fn sleep(d: Duration, cancel: &CancellationToken) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(d) => {}
    }
}

/// A task aborted when dropped, so that one spawned beside a loop ends with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
