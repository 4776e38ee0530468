//! The concurrent consume → process → commit pipeline (the worker's): records into
//! concurrent, per-key ordered executions ([`Execute`], supplied by the service), with
//! offsets committed only behind finished records ([`Offsets`]). The batch consumers use
//! [`super::pipeline`]; both share the receive backoff, the readiness `kafka`, the stall
//! watch's rejoin and the drain deadline ([`crate::runtime::deadline_after`]).
//!
//! Protocol:
//! 1. **consuming**: each record read is tracked as in flight ([`Offsets`]). Records with the
//!    same key (job id) run one after another in offset order; a record whose key is busy
//!    waits in that key's queue. Different keys run in parallel, at most
//!    `worker.max_in_flight` handlers at once. When `worker.max_in_flight` records are in
//!    flight the loop stops taking records from the consumer until one finishes; librdkafka
//!    stops fetching once its own queue is full (`queued.max.messages.kbytes`). The stall is
//!    bounded by one handler timeout, far below `max.poll.interval.ms` (5 min by default),
//!    so the group membership stays. (Not `pause`/`resume`: a resume fetches from the
//!    offset after the last record handed to the application, usually inside a record
//!    batch, which tansu 0.6, the test broker, answers with nothing.);
//! 2. a finished record ([`Execute::execute`] returned durable) leaves the in-flight set;
//!    every `worker.commit_interval`, each partition's position moves up to its lowest
//!    unfinished offset and is committed;
//! 3. partitions revoked by a rebalance are forgotten at the next commit: their unfinished
//!    records are redelivered to the new owner, which deduplicates them through Redis.
//!
//! **rejoin** (the stall watch's notification, [`super::stall`]): commit synchronously, then
//! leave and rejoin the group ([`super::stall::rejoin`]).
//!
//! **draining** (first SIGTERM): stop reading; records waiting for their key or a slot are
//! abandoned (not committed, redelivered later); running ones finish until the drain
//! deadline; commit synchronously; **done**. At the deadline the remaining records are
//! abandoned too.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    message::OwnedMessage,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::intake::Intake;
use super::{Context, offsets::Offsets};
use crate::readiness::Readiness;

/// The processing of one record, supplied by a service.
pub trait Execute: Send + Sync + 'static {
    /// Runs `msg`; `true` when its effect is durable (its offset may be committed), `false`
    /// when it was abandoned (the drain deadline): it is redelivered.
    fn execute(&self, msg: &OwnedMessage) -> impl Future<Output = bool> + Send;
}

/// The metrics the pipeline keeps.
#[derive(Clone, Default)]
pub struct KeyedMetrics {
    /// Records read.
    pub received: Counter,
    /// Records read and not finished.
    pub in_flight: Gauge,
    /// Times intake stopped at the in-flight bound.
    pub pauses: Counter,
    /// Failed commits.
    pub commit_errors: Counter,
}

/// Settings of the consumer loop.
pub struct Settings {
    /// In-flight bound (pause above it).
    pub max_in_flight: usize,
    /// Commit period.
    pub commit_interval: Duration,
}

/// A finished record task.
struct Done {
    topic: String,
    partition: i32,
    offset: i64,
    key: Vec<u8>,
    durable: bool,
}

/// A concurrent consumer: see the module docs for its protocol.
pub struct Keyed<E> {
    /// The consumer, subscribed to `topics`.
    pub consumer: StreamConsumer<Context>,
    /// The subscribed topics.
    pub topics: Vec<String>,
    /// Notified by the stall watch: leave and rejoin the group.
    pub rejoin: Arc<tokio::sync::Notify>,
    /// Runs each record.
    pub executor: Arc<E>,
    /// In-flight bound and commit period.
    pub settings: Settings,
    /// Its metrics.
    pub metrics: KeyedMetrics,
    /// Its `kafka` check is turned on and off here.
    pub readiness: Readiness,
}

/// Mutable state of the loop.
struct State {
    offsets: Offsets,
    /// Keys with a running record, and the records waiting behind it.
    keys: HashMap<Vec<u8>, VecDeque<OwnedMessage>>,
    running: usize,
    paused: bool,
    done_tx: mpsc::Sender<Done>,
}

impl<E: Execute> Keyed<E> {
    /// Runs until `cancel`, then drains (see the module docs) until `hard_stop`, the drain
    /// deadline ([`crate::runtime::deadline_after`]), which the running records share.
    pub async fn run(
        self,
        cancel: CancellationToken,
        hard_stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let capacity = self.settings.max_in_flight.clamp(1, 65_536) * 2;
        let (done_tx, mut done_rx) = mpsc::channel::<Done>(capacity);
        let mut state = State {
            offsets: Offsets::default(),
            keys: HashMap::new(),
            running: 0,
            paused: false,
            done_tx,
        };
        let mut tick = tokio::time::interval(self.settings.commit_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut intake = Intake::new(self.readiness.clone(), "worker");
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(done) = done_rx.recv() => self.finished(&mut state, done, true),
                _ = tick.tick() => self.commit(&mut state.offsets, CommitMode::Async),
                _ = self.rejoin.notified() => {
                    self.commit(&mut state.offsets, CommitMode::Sync);
                    super::stall::rejoin(&self.consumer, &self.topics);
                }
                msg = self.consumer.recv(), if state.offsets.in_flight() < self.settings.max_in_flight => match msg {
                    Ok(msg) => {
                        intake.received();
                        let msg = msg.detach();
                        self.received(&mut state, msg);
                    }
                    Err(err) => {
                        if !intake.failed(&err, &cancel).await {
                            break;
                        }
                    }
                },
            }
        }

        // Draining: queued records are abandoned; running ones finish within the deadline.
        let abandoned: usize = state.keys.values().map(VecDeque::len).sum();
        for queue in state.keys.values_mut() {
            queue.clear();
        }
        info!(
            running = state.running,
            abandoned, "draining: waiting for running jobs"
        );
        while state.running > 0 {
            tokio::select! {
                Some(done) = done_rx.recv() => self.finished(&mut state, done, false),
                _ = hard_stop.cancelled() => {
                    warn!(running = state.running, "drain deadline passed, abandoning running jobs");
                    break;
                }
            }
        }
        self.commit(&mut state.offsets, CommitMode::Sync);
        info!("consumer drained");
        Ok(())
    }

    fn received(&self, state: &mut State, msg: OwnedMessage) {
        self.metrics.received.inc();
        state
            .offsets
            .start(msg.topic(), msg.partition(), msg.offset());
        self.metrics.in_flight.set(state.offsets.in_flight() as i64);
        // Records without a key have no order to keep: a key of their own.
        let key = msg.key().map_or_else(
            || format!("\0{}/{}/{}", msg.topic(), msg.partition(), msg.offset()).into_bytes(),
            <[u8]>::to_vec,
        );
        match state.keys.get_mut(&key) {
            Some(queue) => queue.push_back(msg),
            None => {
                state.keys.insert(key.clone(), VecDeque::new());
                self.spawn(state, key, msg);
            }
        }
        if state.offsets.in_flight() >= self.settings.max_in_flight && !state.paused {
            // The loop stops taking records until one finishes (see the module docs).
            self.metrics.pauses.inc();
            state.paused = true;
            debug!(
                in_flight = state.offsets.in_flight(),
                "in-flight bound reached, intake paused"
            );
        }
    }

    fn spawn(&self, state: &mut State, key: Vec<u8>, msg: OwnedMessage) {
        state.running += 1;
        let executor = self.executor.clone();
        let done_tx = state.done_tx.clone();
        tokio::spawn(async move {
            let durable = executor.execute(&msg).await;
            let done = Done {
                topic: msg.topic().to_owned(),
                partition: msg.partition(),
                offset: msg.offset(),
                key,
                durable,
            };
            // The loop receives until every running task reported; a send fails only after
            // the loop gave up at the drain deadline.
            let _ = done_tx.send(done).await;
        });
    }

    fn finished(&self, state: &mut State, done: Done, start_next: bool) {
        state.running = state.running.saturating_sub(1);
        if done.durable {
            state
                .offsets
                .finish(&done.topic, done.partition, done.offset);
        }
        self.metrics.in_flight.set(state.offsets.in_flight() as i64);
        let next = state.keys.get_mut(&done.key).and_then(VecDeque::pop_front);
        match next {
            Some(msg) if start_next => self.spawn(state, done.key, msg),
            _ => {
                state.keys.remove(&done.key);
            }
        }
        if state.paused && state.offsets.in_flight() < self.settings.max_in_flight {
            state.paused = false;
            debug!(
                in_flight = state.offsets.in_flight(),
                "below the in-flight bound, intake resumed"
            );
        }
    }

    /// Commits every partition's position up to its lowest unfinished offset. Partitions no
    /// longer assigned are forgotten first.
    fn commit(&self, offsets: &mut Offsets, mode: CommitMode) {
        if let Ok(assignment) = self.consumer.assignment() {
            offsets
                .retain(|topic, partition| assignment.find_partition(topic, partition).is_some());
            self.metrics.in_flight.set(offsets.in_flight() as i64);
        }
        let positions = offsets.committable();
        if positions.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), position) in &positions {
            if let Err(err) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*position))
            {
                warn!(messaging.destination.name = topic, partition, error = %err, "cannot build commit");
                return;
            }
        }
        match self.consumer.commit(&tpl, mode) {
            Ok(()) => offsets.committed(&positions),
            Err(err) => {
                self.metrics.commit_errors.inc();
                warn!(error = %err, "offset commit failed; records will be redelivered and deduplicated");
            }
        }
    }
}
