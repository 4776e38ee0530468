//! Dead letters of the batch consumers (ingest, the replayer's retry drain) that Kafka did not
//! acknowledge: parked and retried with backoff, each holding back the commit of the partition
//! its record came from, and only that one. The other partitions, and the later records of the
//! same partition, go on; the held partition's position stays at the parked record's offset
//! until its letter is acknowledged (or dropped by the [`Sender`]), then moves to where its
//! batches got. At most [`MAX_PARKED`] letters (or [`MAX_PARKED_BYTES`]) are parked: when the
//! backlog is full the consumer stops reading until one is acknowledged.
//!
//! A crash loses nothing: a held position was never committed, so the next owner gets the
//! record again and dead-letters it again. A partition revoked from this consumer is
//! forgotten ([`Backlog::retain`]) for the same reason.

use std::collections::BTreeMap;

use prometheus_client::metrics::gauge::Gauge;
use rdkafka::{Offset, TopicPartitionList, error::KafkaResult, message::Message};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Record, Sender, Sent};
use crate::backoff::Backoff;

/// Most letters parked at once.
pub const MAX_PARKED: usize = 1000;
/// Most bytes of letters parked at once.
pub const MAX_PARKED_BYTES: usize = 64 << 20;
/// Longest wait between two tries of one parked letter.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

/// Where a record was read: what its letter holds back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl Origin {
    /// The origin of `msg`.
    pub fn of<M: Message>(msg: &M) -> Self {
        Self {
            topic: msg.topic().to_owned(),
            partition: msg.partition(),
            offset: msg.offset(),
        }
    }
}

struct Parked {
    origin: Origin,
    letter: Record,
    backoff: Backoff,
    retry_at: Instant,
}

/// The parked letters of one consumer and the positions they hold back.
pub struct Backlog {
    parked: Vec<Parked>,
    /// Per held partition: the position its batches reached, committed once it is free.
    held: BTreeMap<(String, i32), i64>,
    bytes: usize,
    gauge: Gauge,
}

impl Backlog {
    /// An empty backlog that reports its size in `gauge`.
    pub fn new(gauge: Gauge) -> Self {
        Self {
            parked: Vec::new(),
            held: BTreeMap::new(),
            bytes: 0,
            gauge,
        }
    }

    /// Letters parked.
    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// True when nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    /// True when no more letters may be parked: the consumer stops reading meanwhile.
    pub fn is_full(&self) -> bool {
        self.parked.len() >= MAX_PARKED || self.bytes >= MAX_PARKED_BYTES
    }

    /// When the next parked letter is due for a retry.
    pub fn next_retry(&self) -> Option<Instant> {
        self.parked.iter().map(|p| p.retry_at).min()
    }

    /// Produces `letters` concurrently, once each (a letter too large is cut, one that cannot
    /// be written is dropped: see [`Sender::send`]); parks those that failed.
    pub async fn deliver(&mut self, sender: &Sender, letters: Vec<(Origin, Record)>) {
        let sends = letters.iter().map(|(_, letter)| sender.send(letter));
        let results = futures::future::join_all(sends).await;
        for ((origin, letter), sent) in letters.into_iter().zip(results) {
            if let Sent::Failed(err) = sent {
                warn!(
                    messaging.source.name = %origin.topic,
                    messaging.kafka.partition = origin.partition,
                    messaging.kafka.offset = origin.offset,
                    error = %err,
                    messaging.destination.name = sender.topic(),
                    "dead letter not acknowledged; parked, its partition's commit held"
                );
                self.park(origin, letter);
            }
        }
        self.gauge.set(self.parked.len() as i64);
    }

    fn park(&mut self, origin: Origin, letter: Record) {
        let mut backoff = Backoff::new(MAX_BACKOFF);
        let retry_at = Instant::now() + backoff.next_delay();
        self.bytes += super::fit::size(&letter);
        self.parked.push(Parked {
            origin,
            letter,
            backoff,
            retry_at,
        });
    }

    /// The positions to commit instead of `positions` (the offsets after a batch): a partition
    /// with a parked letter commits up to that letter's record, and the batch's position is
    /// kept until the partition is free.
    pub fn hold(&mut self, positions: &TopicPartitionList) -> KafkaResult<TopicPartitionList> {
        let mut out = TopicPartitionList::new();
        for e in positions.elements() {
            let Offset::Offset(position) = e.offset() else {
                continue;
            };
            let lowest = self
                .parked
                .iter()
                .filter(|p| p.origin.topic == e.topic() && p.origin.partition == e.partition())
                .map(|p| p.origin.offset)
                .min();
            let commit = match lowest {
                Some(offset) => {
                    let reached = self
                        .held
                        .entry((e.topic().to_owned(), e.partition()))
                        .or_insert(position);
                    *reached = (*reached).max(position);
                    offset.min(position)
                }
                None => position,
            };
            out.add_partition_offset(e.topic(), e.partition(), Offset::Offset(commit))?;
        }
        Ok(out)
    }

    /// Retries the parked letters that are due (every one with `all`); returns the positions
    /// of the partitions that no longer hold a parked letter.
    pub async fn retry(&mut self, sender: &Sender, all: bool) -> KafkaResult<TopicPartitionList> {
        let now = Instant::now();
        let (due, waiting): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| all || p.retry_at <= now);
        self.parked = waiting;
        let results = futures::future::join_all(due.iter().map(|p| sender.send(&p.letter))).await;
        for (mut p, sent) in due.into_iter().zip(results) {
            match sent {
                Sent::Acked { .. } | Sent::Dropped => {
                    self.bytes = self.bytes.saturating_sub(super::fit::size(&p.letter));
                    info!(
                        messaging.source.name = %p.origin.topic,
                        messaging.kafka.partition = p.origin.partition,
                        messaging.kafka.offset = p.origin.offset,
                        "parked dead letter handled"
                    );
                }
                Sent::Failed(err) => {
                    warn!(
                        messaging.kafka.partition = p.origin.partition,
                        messaging.kafka.offset = p.origin.offset,
                        error = %err,
                        "parked dead letter still not acknowledged"
                    );
                    p.retry_at = Instant::now() + p.backoff.next_delay();
                    self.parked.push(p);
                }
            }
        }
        self.gauge.set(self.parked.len() as i64);
        self.release()
    }

    /// Takes the positions of held partitions without parked letters out of `held`.
    fn release(&mut self) -> KafkaResult<TopicPartitionList> {
        let parked = &self.parked;
        let free: Vec<(String, i32)> = self
            .held
            .keys()
            .filter(|(t, p)| {
                !parked
                    .iter()
                    .any(|x| &x.origin.topic == t && x.origin.partition == *p)
            })
            .cloned()
            .collect();
        let mut out = TopicPartitionList::new();
        for key in free {
            if let Some(position) = self.held.remove(&key) {
                out.add_partition_offset(&key.0, key.1, Offset::Offset(position))?;
            }
        }
        Ok(out)
    }

    /// Forgets the letters and held positions of partitions `owned` says this consumer no
    /// longer has: their records go to the new owner again (their position was not
    /// committed past them).
    pub fn retain(&mut self, owned: impl Fn(&str, i32) -> bool) {
        let before = self.parked.len();
        self.parked
            .retain(|p| owned(&p.origin.topic, p.origin.partition));
        self.held.retain(|(t, p), _| owned(t, *p));
        if self.parked.len() != before {
            self.bytes = self
                .parked
                .iter()
                .map(|p| super::fit::size(&p.letter))
                .sum();
            info!(
                forgotten = before - self.parked.len(),
                "parked dead letters of revoked partitions forgotten; the new owner dead-letters them again"
            );
        }
        self.gauge.set(self.parked.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rdkafka::message::OwnedHeaders;

    use super::*;

    fn parked(backlog: &mut Backlog, topic: &str, partition: i32, offset: i64) {
        backlog.park(
            Origin {
                topic: topic.into(),
                partition,
                offset,
            },
            Record {
                key: None,
                payload: Some(b"x".to_vec()),
                headers: OwnedHeaders::new(),
            },
        );
    }

    fn positions(list: &[(&str, i32, i64)]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in list {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o)).unwrap();
        }
        tpl
    }

    fn offsets(tpl: &TopicPartitionList) -> Vec<(String, i32, i64)> {
        tpl.elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => (e.topic().to_owned(), e.partition(), o),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_parked_letter_holds_only_its_own_partition_at_its_offset() {
        let mut b = Backlog::new(Gauge::default());
        parked(&mut b, "in", 0, 5);
        let out = b.hold(&positions(&[("in", 0, 9), ("in", 1, 4)])).unwrap();
        assert_eq!(
            offsets(&out),
            [("in".into(), 0, 5), ("in".into(), 1, 4)],
            "partition 0 held at the parked record, partition 1 goes on"
        );
        let out = b.hold(&positions(&[("in", 0, 12)])).unwrap();
        assert_eq!(offsets(&out), [("in".into(), 0, 5)]);
        assert_eq!(b.held.get(&("in".into(), 0)), Some(&12), "where it got");
        b.parked.clear();
        assert_eq!(offsets(&b.release().unwrap()), [("in".into(), 0, 12)]);
        assert!(b.held.is_empty());
    }

    #[test]
    fn revoked_partitions_are_forgotten() {
        let mut b = Backlog::new(Gauge::default());
        parked(&mut b, "in", 0, 5);
        parked(&mut b, "in", 1, 3);
        b.hold(&positions(&[("in", 0, 9), ("in", 1, 4)])).unwrap();
        b.retain(|_, p| p == 1);
        assert_eq!(b.len(), 1);
        assert_eq!(b.held.len(), 1);
        assert!(!b.is_full());
    }
}
