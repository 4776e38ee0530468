//! Steps 3 and 4 of a replay, and the resume: one publishing pass finds the letters already on
//! the target topics (on a resume), produces the rest at the replay's rate, records progress
//! and marks the replay done.

use std::time::Duration;

use chrono::Utc;
use futures::{FutureExt as _, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use rdkafka::{
    message::{Message, OwnedMessage},
    producer::FutureRecord,
};
use sked_core::kafka::{headers as h, produce};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Error, Replays, replay_record, store::parse_position};
use crate::{
    letter::{self, SKED_REPLAY_ID},
    scan::Offsets,
};

/// Most sends awaiting their ack at once.
const MAX_IN_FLIGHT: usize = 1000;
/// How often progress is written to Redis while publishing.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl Replays {
    /// One pass of publishing: finds what is already on the target topics (unless `fresh`),
    /// publishes the rest, marks the replay done.
    pub(super) async fn publish(
        &self,
        id: &str,
        fresh: bool,
        stop: &CancellationToken,
    ) -> Result<(), Error> {
        let progress = self.progress(id).await?;
        if progress.status != "running" {
            return Ok(());
        }
        let spec = progress.spec;
        let mut remaining = self.items(id).await?;
        let mut already = 0u64;
        if !fresh {
            let prefix = format!("{id}:");
            for (topic, starts) in &spec.targets {
                let ends = self.scanner.unbounded(topic).await?;
                let mut rx = self.scanner.read(topic, starts, &ends);
                while let Some(msg) = rx.recv().await {
                    let msg = msg?;
                    if let Some(pos) = letter::header(&msg, SKED_REPLAY_ID)
                        .as_deref()
                        .and_then(|r| r.strip_prefix(&prefix))
                        .and_then(parse_position)
                        && remaining.remove(&pos)
                    {
                        already += 1;
                    }
                }
            }
            self.metrics.replayed("already_published", already);
            info!(replay.id = %id, already_published = already, remaining = remaining.len(), "replay resumed");
        }
        self.set_already_published(id, already).await?;
        let mut from = Offsets::new();
        for (p, o) in &remaining {
            let e = from.entry(*p).or_insert(*o);
            *e = (*e).min(*o);
        }
        let to: Offsets = spec
            .dlq_ends
            .iter()
            .filter(|(p, _)| from.contains_key(p))
            .map(|(p, o)| (*p, *o))
            .collect();
        let mut rx = self.scanner.read(&self.dlq_topic, &from, &to);
        let mut inflight = FuturesUnordered::new();
        let mut acked = 0u64;
        let mut flushed = 0u64;
        let mut first_error: Option<Error> = None;
        let mut last_flush = Instant::now();
        let pace = (spec.rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(spec.rate)));
        let mut next_send = Instant::now();
        while let Some(msg) = rx.recv().await {
            let msg = msg?;
            if !remaining.remove(&(msg.partition(), msg.offset())) {
                continue;
            }
            if let Some(pace) = pace {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep_until(next_send) => {}
                }
                // Catch up after a slow ack, but never burst more than a second's worth.
                let floor = Instant::now()
                    .checked_sub(Duration::from_secs(1))
                    .unwrap_or(next_send);
                next_send = next_send.max(floor) + pace;
            }
            if stop.is_cancelled() || first_error.is_some() {
                break;
            }
            while inflight.len() >= MAX_IN_FLIGHT {
                if let Some(r) = inflight.next().await {
                    settle(r, &mut acked, &mut first_error);
                }
            }
            let topic = spec
                .target_topic
                .clone()
                .or_else(|| letter::header(&msg, h::ORIGINAL_TOPIC))
                .unwrap_or_default();
            // Enqueued here, in order (waiting while the producer queue is full); acked later.
            let sending = self.send(id, &topic, &msg, stop).await;
            inflight.push(sending);
            while let Some(Some(r)) = futures::FutureExt::now_or_never(inflight.next()) {
                settle(r, &mut acked, &mut first_error);
            }
            if last_flush.elapsed() >= PROGRESS_EVERY {
                self.flush_progress(id, acked - flushed).await;
                flushed = acked;
                last_flush = Instant::now();
            }
        }
        drop(rx);
        // Every send is settled before anything else happens, so a resume never scans a target
        // topic while one of ours may still land on it.
        while let Some(r) = inflight.next().await {
            settle(r, &mut acked, &mut first_error);
        }
        self.flush_progress(id, acked - flushed).await;
        self.metrics.replayed("published", acked);
        if let Some(err) = first_error {
            return Err(err);
        }
        if stop.is_cancelled() {
            return Err(Error::Interrupted);
        }
        let missing = remaining.len() as u64;
        if missing > 0 {
            warn!(replay.id = %id, missing, "selected letters no longer in the dlq");
        }
        self.finish(id, missing).await?;
        info!(replay.id = %id, published = acked + already, missing, "replay done");
        Ok(())
    }

    /// Enqueues the replay of `msg` to `topic` (a full producer queue is waited out, until
    /// `stop`); the future returned resolves when Kafka acknowledged it.
    async fn send(
        &self,
        id: &str,
        topic: &str,
        msg: &OwnedMessage,
        stop: &CancellationToken,
    ) -> BoxFuture<'static, Result<(), Error>> {
        let mut record = replay_record(id, msg, Utc::now().timestamp_millis());
        // A `sked.replay` span in the letter's trace; the replayed record continues from it.
        let span = tracing::info_span!(
            "replay",
            otel.name = "sked.replay",
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.destination.name = topic,
            messaging.operation.type = "publish",
            messaging.kafka.message.key = msg.key().and_then(|k| std::str::from_utf8(k).ok()),
            sked.replay.id = id,
            sked.dlq.offset = msg.offset(),
        );
        sked_core::trace::set_parent(&span, sked_core::trace::header(msg.headers()));
        if let Some(tp) = sked_core::trace::traceparent(&span) {
            record.headers = sked_core::trace::replace_header(&record.headers, &tp);
        }
        let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(record.headers);
        if let Some(k) = msg.key() {
            fr = fr.key(k);
        }
        if let Some(v) = msg.payload() {
            fr = fr.payload(v);
        }
        let delivery = produce::enqueue(&self.producer, fr, stop).await;
        let topic = topic.to_owned();
        let publish = async move {
            let fail = |error: produce::Error| match error {
                produce::Error::Stopped => Error::Interrupted,
                produce::Error::Kafka(error) => Error::Publish {
                    topic: topic.clone(),
                    error,
                },
            };
            delivery.map_err(fail)?.acked().await.map_err(fail)
        };
        tracing::Instrument::instrument(publish, span).boxed()
    }
}

fn settle(r: Result<(), Error>, acked: &mut u64, first_error: &mut Option<Error>) {
    match r {
        Ok(()) => *acked += 1,
        Err(e) => {
            first_error.get_or_insert(e);
        }
    }
}
