//! Reading a snapshot of a topic: a fresh consumer with manual `assign` (no group, no commit)
//! reads every partition from a start offset up to an end offset fixed before reading.
//!
//! The DLQ API and replays read the dead-letter topic this way, from the beginning to the end
//! of each partition, and filter in memory. The end of a partition is where the consumer
//! reports end-of-partition (the high watermark of the fetch), not the high watermark of a
//! `ListOffsets` call: tansu 0.6 answers that one too low after multi-record batches. A snapshot
//! is therefore "what the read saw"; callers that need to read it again record the last offset
//! they saw per partition. Likewise every read starts at the beginning of the partition and
//! skips records before its start offset (see `read_blocking`); only [`Scanner::one`] tries
//! the record's own offset first. Listing and counting letters read the DLQ index instead
//! (`crate::index`); replays read the topic this way.

use std::{collections::BTreeMap, time::Duration};

use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
    message::{Message, OwnedMessage},
};
use sked_core::config::KafkaOptions;
use tokio::sync::mpsc;

/// Offsets per partition.
pub type Offsets = BTreeMap<i32, i64>;

/// Records in flight between the reading thread and the async side.
const CHANNEL: usize = 1024;
/// A scan with no record and no end of partition for this long fails.
const STALL: Duration = Duration::from_secs(30);
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a fetch at a record's own offset may take before the record is looked for from
/// the beginning of its partition.
const DIRECT: Duration = Duration::from_secs(2);

/// A scan failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker failed or could not be reached.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The topic does not exist or has no partitions.
    #[error("topic {0} not found")]
    NoTopic(String),
    /// No progress for a long time.
    #[error("reading {topic} made no progress for {STALL:?}")]
    Stalled {
        /// The topic.
        topic: String,
    },
    /// The reading thread stopped.
    #[error("reader task failed: {0}")]
    Task(String),
}

/// Opens snapshot readers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Scanner {
    kafka: KafkaOptions,
}

impl Scanner {
    /// A scanner of the brokers in `kafka`.
    pub fn new(kafka: KafkaOptions) -> Self {
        Self { kafka }
    }

    fn consumer(&self) -> Result<BaseConsumer, Error> {
        let mut config: ClientConfig =
            sked_core::kafka::consumer_config(&self.kafka, "replayer-scan", "sked-replayer-scan");
        config.set("enable.partition.eof", "true");
        Ok(config.create()?)
    }

    /// The partitions of `topic` (metadata only; no offsets asked).
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>, Error> {
        let consumer = self.consumer()?;
        let topic = topic.to_owned();
        blocking(move || partitions_blocking(&consumer, &topic)).await
    }

    /// (low, high) watermarks of every partition of `topic`.
    pub async fn watermarks(&self, topic: &str) -> Result<BTreeMap<i32, (i64, i64)>, Error> {
        let consumer = self.consumer()?;
        let topic = topic.to_owned();
        blocking(move || {
            let mut out = BTreeMap::new();
            for p in partitions_blocking(&consumer, &topic)? {
                out.insert(p, consumer.fetch_watermarks(&topic, p, METADATA_TIMEOUT)?);
            }
            Ok(out)
        })
        .await
    }

    /// Every partition of `topic`, unbounded: pass as `to` of [`Scanner::read`] to read to the
    /// end of each partition.
    pub async fn unbounded(&self, topic: &str) -> Result<Offsets, Error> {
        Ok(self
            .watermarks(topic)
            .await?
            .into_keys()
            .map(|p| (p, i64::MAX))
            .collect())
    }

    /// High watermarks of every partition of `topic` as `ListOffsets` reports them. On Kafka
    /// they are exact; on tansu they may be low. Either way nothing at or after them existed
    /// before the call, so they are safe start offsets for "what was written since".
    pub async fn ends(&self, topic: &str) -> Result<Offsets, Error> {
        Ok(self
            .watermarks(topic)
            .await?
            .into_iter()
            .map(|(p, (_, high))| (p, high))
            .collect())
    }

    /// Reads the partitions of `to` from `from` (per partition; absent = the beginning) up to,
    /// excluding, `to` or the end of the partition, whichever comes first, in offset order per
    /// partition. Records arrive through a bounded channel, so a
    /// slow reader holds the scan back; dropping the receiver stops it.
    pub fn read(
        &self,
        topic: &str,
        from: &Offsets,
        to: &Offsets,
    ) -> mpsc::Receiver<Result<OwnedMessage, Error>> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let consumer = self.consumer();
        let topic = topic.to_owned();
        let (from, to) = (from.clone(), to.clone());
        tokio::task::spawn_blocking(move || {
            let result = consumer.and_then(|c| read_blocking(&c, &topic, &from, &to, &tx));
            if let Err(err) = result {
                let _ = tx.blocking_send(Err(err));
            }
        });
        rx
    }

    /// The record at `partition`/`offset` of `topic`, or `None` when there is none.
    pub async fn one(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<OwnedMessage>, Error> {
        let marks = self.watermarks(topic).await?;
        let Some(&(low, _)) = marks.get(&partition) else {
            return Ok(None);
        };
        if offset < low {
            return Ok(None);
        }
        let consumer = self.consumer()?;
        let topic_owned = topic.to_owned();
        if let Some(msg) =
            blocking(move || direct_blocking(&consumer, &topic_owned, partition, offset)).await?
        {
            return Ok(Some(msg));
        }
        let from = Offsets::from([(partition, offset)]);
        let to = Offsets::from([(partition, offset + 1)]);
        let mut rx = self.read(topic, &from, &to);
        while let Some(msg) = rx.recv().await {
            let msg = msg?;
            if msg.offset() == offset {
                return Ok(Some(msg));
            }
        }
        Ok(None)
    }
}

fn partitions_blocking(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>, Error> {
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(Error::NoTopic(topic.to_owned()));
    }
    Ok(partitions)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// The record at `offset`, fetched at that offset: on Kafka this finds it; on tansu 0.6 a fetch
/// inside a record batch answers with later batches or nothing (`None`; the caller then reads
/// from the beginning).
fn direct_blocking(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Option<OwnedMessage>, Error> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&tpl)?;
    let until = std::time::Instant::now() + DIRECT;
    while std::time::Instant::now() < until {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) if msg.partition() == partition => {
                return Ok((msg.offset() == offset).then(|| msg.detach()));
            }
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

fn read_blocking(
    consumer: &BaseConsumer,
    topic: &str,
    from: &Offsets,
    to: &Offsets,
    tx: &mpsc::Sender<Result<OwnedMessage, Error>>,
) -> Result<(), Error> {
    let mut tpl = TopicPartitionList::new();
    let mut open: BTreeMap<i32, i64> = BTreeMap::new();
    for (&partition, &end) in to {
        if from.get(&partition).is_some_and(|s| *s >= end) {
            continue;
        }
        // Always from the beginning, skipping what is before `from`: tansu 0.6 answers a fetch
        // at an offset inside a record batch with the batches after it (or nothing), losing
        // records; Kafka would not need this.
        tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
        open.insert(partition, end);
    }
    if open.is_empty() {
        return Ok(());
    }
    consumer.assign(&tpl)?;
    let mut last_progress = std::time::Instant::now();
    while !open.is_empty() {
        if tx.is_closed() {
            return Ok(());
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(msg)) => {
                last_progress = std::time::Instant::now();
                let partition = msg.partition();
                let Some(&end) = open.get(&partition) else {
                    continue;
                };
                if from.get(&partition).is_some_and(|s| msg.offset() < *s) {
                    continue;
                }
                if msg.offset() >= end {
                    open.remove(&partition);
                    continue;
                }
                if msg.offset() + 1 >= end {
                    open.remove(&partition);
                }
                if tx.blocking_send(Ok(msg.detach())).is_err() {
                    return Ok(());
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                // The end of the partition: nothing more to read.
                last_progress = std::time::Instant::now();
                open.remove(&partition);
            }
            Some(Err(err)) => {
                tracing::debug!(error = %err, topic, "scan poll error");
            }
        }
        if last_progress.elapsed() > STALL {
            return Err(Error::Stalled {
                topic: topic.to_owned(),
            });
        }
    }
    Ok(())
}
