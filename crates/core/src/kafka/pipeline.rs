//! The consume → process → commit pipeline of the batch consumers (ingest, the replayer's
//! retry drain): [`Batches`] owns the Kafka side, a service supplies the processing
//! ([`Process`]).
//!
//! Protocol, one batch at a time:
//! 1. **consuming**: wait for a record (readiness `kafka` on when one arrives; off, and a
//!    jittered backoff, on a consume error), then take what arrives within `linger`, up to
//!    `max` records ([`batch::fill`]). Only the wait for the first record is cancelled: a
//!    batch being filled is never cut, or the records it took would be lost;
//! 2. **processing**: [`Process::process`] makes the batch durable and returns its dead
//!    letters, or `None` when the drain deadline cut it short (nothing is committed then);
//! 3. the letters are produced and their answers awaited ([`Backlog::deliver`]): one that
//!    Kafka does not acknowledge is parked and retried between batches, holding back the
//!    commit of its own partition only;
//! 4. **commit**, per partition, the offset after the batch's last record, or for a
//!    partition with a parked letter that letter's record ([`Backlog::hold`]): no offset passes
//!    an unfinished record. Commits are asynchronous, synchronous when draining or rejoining.
//!    With the backlog full, reading stops until a parked letter is acknowledged.
//!
//! **Rejoin**: a notification of the stall watch ([`super::stall`]) is taken between batches
//! only, and only with no letter parked (a batch cut short would lose its place in the
//! partition): the batch's offsets are committed synchronously, then the consumer leaves and
//! rejoins the group ([`super::stall::rejoin`]). Never pause/resume: on tansu a fetch that
//! starts inside a record batch returns nothing.
//!
//! **Revoke**: parked letters of partitions this consumer no longer owns are forgotten before
//! every retry and every commit; their records go to the new owner, which dead-letters them
//! again.
//!
//! **draining** (cancel): stop reading, finish the batch in flight within the drain deadline
//! ([`runtime::deadline_after`]), try the parked letters once more, commit synchronously,
//! **done**. A batch cut short is not committed and is redelivered to the next owner; so are
//! the records of letters still parked.

use std::{future::Future, sync::Arc, time::Duration};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use rdkafka::{
    TopicPartitionList,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    message::BorrowedMessage,
};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::intake::Intake;
use super::{
    Context, batch,
    dlq::{self, Backlog, Origin},
    stall,
};
use crate::{readiness::Readiness, runtime};

/// The processing of one batch, supplied by a service.
pub trait Process: Sync {
    /// Makes `batch` durable; returns the dead letters of its records that cannot be
    /// processed, with their records' origins, or `None` when `hard_stop` (the drain
    /// deadline) cut it short.
    fn process(
        &self,
        batch: &[BorrowedMessage<'_>],
        hard_stop: &CancellationToken,
    ) -> impl Future<Output = anyhow::Result<Option<Vec<(Origin, dlq::Record)>>>> + Send;

    /// Called once a batch and its letters are done, before its commit, with the time since
    /// its processing began.
    fn batch_done(&self, elapsed: Duration) {
        let _ = elapsed;
    }
}

/// How batches are cut and how long the drain may last.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Most records per batch.
    pub max: usize,
    /// Wait for more records after the first.
    pub linger: Duration,
    /// Bound on the drain after cancel.
    pub drain_timeout: Duration,
}

/// A batch consumer: see the module docs for its protocol.
pub struct Batches {
    /// The consumer, subscribed to `topics`.
    pub consumer: StreamConsumer<Context>,
    /// The subscribed topics (for a rejoin).
    pub topics: Vec<String>,
    /// Notified by the stall watch: leave and rejoin the group (between batches).
    pub rejoin: Arc<Notify>,
    /// Produces the dead letters.
    pub dlq: dlq::Sender,
    /// Its `kafka` check is turned on and off here.
    pub readiness: Readiness,
    /// Batch size, linger and drain deadline.
    pub settings: BatchSettings,
    /// Counts failed commits.
    pub commit_errors: Counter,
    /// The number of parked letters.
    pub parked: Gauge,
    /// Names the consumer in its logs.
    pub name: &'static str,
}

impl Batches {
    /// Runs until `cancel`, then drains as described in the module docs.
    pub async fn run<P: Process>(
        self,
        process: &P,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        // Fires `drain_timeout` after `cancel`: retries give up, the batch is abandoned.
        let hard_stop = runtime::deadline_after(&cancel, self.settings.drain_timeout);
        let mut intake = Intake::new(self.readiness.clone(), self.name);
        let mut backlog = Backlog::new(self.parked.clone());
        loop {
            let retry_at = backlog.next_retry();
            // Only the wait for a batch's first record is cancelled; `batch::fill` is not.
            let first = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                    self.retry_parked(&mut backlog, false, CommitMode::Async).await?;
                    continue;
                }
                first = self.consumer.recv(), if !backlog.is_full() => first,
            };
            let first = match first {
                Ok(first) => {
                    intake.received();
                    first
                }
                Err(err) => {
                    intake.failed(&err, &cancel).await;
                    continue;
                }
            };
            let batch = batch::fill(
                &self.consumer,
                first,
                self.settings.max,
                self.settings.linger,
            )
            .await;
            // Between batches only, and with no dead letter waiting for its ack: a batch cut
            // short would lose its place in the partition.
            let rejoin = backlog.is_empty()
                && tokio::select! {
                    biased;
                    _ = self.rejoin.notified() => true,
                    _ = std::future::ready(()) => false,
                };
            if let Some(tpl) = self
                .process_batch(process, &batch, &mut backlog, &hard_stop)
                .await?
            {
                let mode = if cancel.is_cancelled() || rejoin {
                    CommitMode::Sync
                } else {
                    CommitMode::Async
                };
                self.commit(&tpl, mode);
            }
            if rejoin {
                stall::rejoin(&self.consumer, &self.topics);
            }
            if backlog.is_full() {
                warn!(
                    consumer = self.name,
                    parked = backlog.len(),
                    "too many dead letters unacknowledged: reading paused until some are"
                );
            }
        }
        if !backlog.is_empty() {
            tokio::select! {
                _ = hard_stop.cancelled() => {}
                r = self.retry_parked(&mut backlog, true, CommitMode::Sync) => r?,
            }
            if !backlog.is_empty() {
                warn!(
                    consumer = self.name,
                    parked = backlog.len(),
                    "dead letters still unacknowledged at shutdown; their records go to the next owner again"
                );
            }
        }
        info!(consumer = self.name, "consumer drained");
        Ok(())
    }

    /// Steps 2 and 3: the offsets to commit, or `None` when the drain deadline cut the batch
    /// short.
    async fn process_batch<P: Process>(
        &self,
        process: &P,
        batch: &[BorrowedMessage<'_>],
        backlog: &mut Backlog,
        hard_stop: &CancellationToken,
    ) -> anyhow::Result<Option<TopicPartitionList>> {
        let started = Instant::now();
        let Some(letters) = process.process(batch, hard_stop).await? else {
            return Ok(None);
        };
        if !letters.is_empty() {
            tokio::select! {
                _ = hard_stop.cancelled() => return Ok(None),
                _ = backlog.deliver(&self.dlq, letters) => {}
            }
        }
        self.forget_revoked(backlog);
        let tpl = backlog.hold(&batch::positions_after(batch)?)?;
        process.batch_done(started.elapsed());
        Ok(Some(tpl))
    }

    /// Retries the parked dead letters that are due (all of them with `all`) and commits the
    /// positions they release.
    async fn retry_parked(
        &self,
        backlog: &mut Backlog,
        all: bool,
        mode: CommitMode,
    ) -> anyhow::Result<()> {
        self.forget_revoked(backlog);
        let released = backlog.retry(&self.dlq, all).await?;
        if released.count() > 0 {
            self.commit(&released, mode);
        }
        Ok(())
    }

    /// Forgets the parked letters of partitions this consumer no longer owns.
    fn forget_revoked(&self, backlog: &mut Backlog) {
        if backlog.is_empty() {
            return;
        }
        if let Ok(assignment) = self.consumer.assignment() {
            backlog
                .retain(|topic, partition| assignment.find_partition(topic, partition).is_some());
        }
    }

    fn commit(&self, tpl: &TopicPartitionList, mode: CommitMode) {
        if let Err(err) = self.consumer.commit(tpl, mode) {
            self.commit_errors.inc();
            warn!(
                consumer = self.name,
                error = %err,
                "offset commit failed; records will be redelivered and deduplicated"
            );
        }
    }
}
