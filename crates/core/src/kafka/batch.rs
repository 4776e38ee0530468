//! Batch consumption shared by the services that make whole batches durable before they
//! commit (ingest, the replayer's retry drain).

use std::{collections::BTreeMap, time::Duration};

use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{ConsumerContext, StreamConsumer},
    error::KafkaResult,
    message::{BorrowedMessage, Message},
};
use tokio::time::Instant;

/// Waits for one record, then takes what arrives within `linger`, up to `max` records. A
/// consume error after the first record closes the batch (the error comes back next time).
pub async fn next<'a, C: ConsumerContext + 'static>(
    consumer: &'a StreamConsumer<C>,
    max: usize,
    linger: Duration,
) -> KafkaResult<Vec<BorrowedMessage<'a>>> {
    let first = consumer.recv().await?;
    Ok(fill(consumer, first, max, linger).await)
}

/// The batch that starts with `first`: what arrives within `linger`, up to `max` records. A
/// consumer that waits for `first` itself (in a `select!` with other work: `recv` may be
/// cancelled, this may not, or the records it took would be lost) builds the batch with this.
pub async fn fill<'a, C: ConsumerContext + 'static>(
    consumer: &'a StreamConsumer<C>,
    first: BorrowedMessage<'a>,
    max: usize,
    linger: Duration,
) -> Vec<BorrowedMessage<'a>> {
    let mut batch = Vec::with_capacity(max.min(4096));
    batch.push(first);
    let deadline = Instant::now() + linger;
    while batch.len() < max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(msg)) => batch.push(msg),
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "consume error inside a batch; closing the batch");
                break;
            }
            Err(_) => break,
        }
    }
    batch
}

/// The positions to commit once every record of `batch` is durable: per partition, the offset
/// after its last record.
pub fn positions_after<M: Message>(batch: &[M]) -> KafkaResult<TopicPartitionList> {
    let mut last: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for msg in batch {
        let e = last
            .entry((msg.topic(), msg.partition()))
            .or_insert(msg.offset());
        *e = (*e).max(msg.offset());
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in last {
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset + 1))?;
    }
    Ok(tpl)
}
