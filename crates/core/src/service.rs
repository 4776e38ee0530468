//! The start-up and the end of the drain every sked service shares: its Kafka producer, the
//! admin endpoints, the Redis store, the readiness probe, and at the end its tasks joined and
//! the producer flushed. What differs between services (their listeners, consumers and loops)
//! stays in the service and runs as tasks of [`Base::tasks`].
//!
//! A service's `start`, in order:
//! 1. binds its own listeners, if any (a taken port fails before anything else binds);
//! 2. [`Base::producer`], then what needs the producer before anything binds (the worker's
//!    routes);
//! 3. [`Base::start`]: the admin endpoints, then Redis;
//! 4. its consumers, listeners and loops, as tasks of [`Base::tasks`];
//! 5. [`Base::spawn_announce`] (who runs, for `GET /v1/cluster`), then [`Base::spawn_probe`],
//!    last, so `/readyz` passes only once everything runs.
//!
//! Its `Running::wait` is [`Base::wait`] (or [`Base::wait_then`]).

use std::{future::Future, net::SocketAddr};

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    admin,
    config::Config,
    kafka,
    readiness::{self, Readiness},
    runtime::{self, StoppedBeforeReady},
    store::{Keyring, Store, replicas},
    supervise::Tasks,
};

/// What every service runs on: built by [`Base::start`], ended by [`Base::wait`].
pub struct Base {
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    /// The `/readyz` checks: `redis`, `kafka` and `not_draining`.
    pub readiness: Readiness,
    /// The service's named tasks, joined by [`Base::wait`]; the admin listener is the first.
    pub tasks: Tasks,
    /// The connected job store.
    pub store: Store,
    /// The service's producer, flushed last by [`Base::wait`].
    pub producer: FutureProducer,
    service: &'static str,
}

impl Base {
    /// The service's Kafka producer (`kafka.*`), sending records of up to
    /// `limits.max_request_bytes` + [`kafka::size::HEADER_ROOM`] unless `kafka.rdkafka` sets
    /// `message.max.bytes`. Creating it does not connect, so a bad setting stops the service
    /// before it binds; a service builds what needs the producer (the worker's routes)
    /// between this and [`Base::start`].
    pub fn producer(config: &Config, service: &str) -> anyhow::Result<FutureProducer> {
        kafka::producer_config(
            &config.kafka,
            service,
            kafka::size::wanted(config.limits.max_request_bytes),
        )
        .create()
        .context("cannot create kafka producer")
    }

    /// The service's dead-letter sender to `topics.dlq`, counting in `counters`, and the
    /// start-up check of record sizes: a warning when `kafka.rdkafka` sets a
    /// `message.max.bytes` too small for a largest request; then, in the background, the
    /// `max.message.bytes` of `topics.dlq` and of `also` (the other topics the service
    /// produces to) is read from the brokers, a warning logged for each one that is too
    /// small, and the sender fits letters to the DLQ topic's limit. Brokers that cannot
    /// answer are logged and skipped.
    pub fn dlq_sender(
        &self,
        config: &Config,
        counters: kafka::dlq::Counters,
        also: &[String],
    ) -> kafka::dlq::Sender {
        let limit = kafka::size::MessageLimit::of(&config.kafka, config.limits.max_request_bytes);
        limit.warn_if_too_small();
        let sender = kafka::dlq::Sender::new(
            self.producer.clone(),
            config.topics.dlq.clone(),
            &limit,
            counters,
        );
        let mut topics = vec![config.topics.dlq.clone()];
        topics.extend(also.iter().filter(|t| **t != config.topics.dlq).cloned());
        let (options, dlq, needed) = (config.kafka.clone(), sender.clone(), limit.wanted);
        // Detached: a diagnostic of at most 15 s that nothing waits for.
        tokio::spawn(async move {
            let limits = kafka::size::check_topics(&options, &topics, needed).await;
            if let Some((_, bytes)) = limits.iter().find(|(t, _)| t == dlq.topic()) {
                dlq.lower_limit(*bytes);
            }
        });
        sender
    }

    /// Starts what every service shares, in this order:
    /// 1. `/healthz`, `/readyz` and `/metrics` (from `registry`) are served on
    ///    `admin.listen_addr` as the task `admin` until `cancel`, with every readiness check
    ///    failing but `not_draining`, so they answer while Redis is down;
    /// 2. Redis is connected, retried with backoff until it answers (`/readyz` reports
    ///    `redis: false` meanwhile); cancelling meanwhile returns [`StoppedBeforeReady`]. The
    ///    store seals and opens payloads with the keys of `[encryption]`.
    ///
    /// The `kafka` check stays failing until [`Base::spawn_probe`].
    pub async fn start(
        config: &Config,
        service: &'static str,
        drain_timeout: std::time::Duration,
        registry: Registry,
        producer: FutureProducer,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let readiness = readiness::standard();
        let mut tasks = Tasks::supervised(cancel.clone(), readiness.clone(), drain_timeout);
        let admin_addr = admin::serve(
            config.admin.listen_addr,
            registry,
            readiness.clone(),
            &mut tasks,
        )
        .await?;
        info!(%admin_addr, "{service} listening");

        let keyring = Keyring::from_options(&config.encryption).map_err(anyhow::Error::msg)?;
        if let Some(current) = keyring.current_key() {
            info!(
                current_key = current,
                keys = config.encryption.keys.len(),
                "payloads in redis are sealed (AES-256-GCM)"
            );
        }
        let Some(store) = Store::connect_with_retry(&config.redis, &readiness, cancel).await else {
            return Err(StoppedBeforeReady.into());
        };
        let store = store.with_keyring(keyring);
        Ok(Self {
            admin_addr,
            readiness,
            tasks,
            store,
            producer,
            service,
        })
    }

    /// Spawns the readiness probe as the task `probe`: Redis, and the metadata of `topic`
    /// through the producer, every second until `cancel`, when it turns `not_draining` off.
    /// The last task a service spawns, so `/readyz` passes only once the others run.
    pub fn spawn_probe(&mut self, topic: String, cancel: CancellationToken) {
        let probe = admin::probe(
            self.store.clone(),
            self.producer.clone(),
            topic,
            self.readiness.clone(),
            cancel,
        );
        self.tasks.spawn("probe", probe);
    }

    /// Spawns the task `announce`: every [`replicas::ANNOUNCE_EVERY`] the process records
    /// itself in Redis (service, host, version, start, and what `fill` adds: its own counts,
    /// a scheduler's lateness) for
    /// `GET /v1/cluster`; at `cancel` it takes itself off the list. A Redis failure is logged
    /// (once until it answers again) and retried at the next beat; the task never ends early.
    pub fn spawn_announce<F>(&mut self, fill: F, cancel: CancellationToken)
    where
        F: Fn(&mut replicas::Replica) + Send + 'static,
    {
        let store = self.store.clone();
        let now = chrono::Utc::now();
        let mut me = replicas::Replica {
            service: self.service.to_owned(),
            id: uuid::Uuid::now_v7().simple().to_string(),
            host: std::env::var("HOSTNAME").unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: now,
            seen_at: now,
            figures: std::collections::BTreeMap::new(),
            lateness: None,
        };
        self.tasks.spawn("announce", async move {
            let mut failing = false;
            loop {
                me.seen_at = chrono::Utc::now();
                fill(&mut me);
                match store.announce(&me).await {
                    Ok(()) => failing = false,
                    Err(err) if !failing => {
                        failing = true;
                        tracing::warn!(error = %err, "cannot announce this process in redis; retrying");
                    }
                    Err(_) => {}
                }
                tokio::select! {
                    () = cancel.cancelled() => {
                        if let Err(err) = store.retire(&me.id).await {
                            tracing::warn!(error = %err, "cannot take this process off the list of replicas; it drops off in 20 s");
                        }
                        return Ok(());
                    }
                    () = tokio::time::sleep(replicas::ANNOUNCE_EVERY) => {}
                }
            }
        });
    }

    /// Starts the stall watch of the consumer group `group` over `topics` as the task
    /// `stall-watch` (kafka/stall.rs): `assigned` is the group consumer's
    /// [`kafka::Context::assigned`], `metrics` were registered before [`Base::start`]. The
    /// returned handle is notified when the consumer should leave and rejoin its group.
    pub fn spawn_stall_watch(
        &mut self,
        config: &Config,
        group: &str,
        topics: Vec<String>,
        assigned: kafka::stall::Assigned,
        metrics: kafka::stall::Metrics,
        cancel: CancellationToken,
    ) -> std::sync::Arc<tokio::sync::Notify> {
        let rejoin = std::sync::Arc::new(tokio::sync::Notify::new());
        let watch = kafka::stall::Watch {
            group: group.to_owned(),
            topics,
            stall_after: config.kafka.stall_after.get(),
            assigned,
            rejoin: rejoin.clone(),
            readiness: self.readiness.clone(),
            metrics,
        };
        self.tasks
            .spawn("stall-watch", watch.run(config.kafka.clone(), cancel));
        rejoin
    }

    /// The end of every drain, once `cancel` fired: waits until every task has stopped, then
    /// flushes the producer and logs `<service> stopped`. Returns the flush's error, else the
    /// first task failure.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.wait_then(std::future::ready(())).await
    }

    /// [`Base::wait`], awaiting `drained` after the tasks have stopped and before the producer
    /// flushes: work the tasks started but do not own (the replayer's running replays).
    pub async fn wait_then(self, drained: impl Future<Output = ()>) -> anyhow::Result<()> {
        let result = self.tasks.join().await;
        drained.await;
        runtime::flush(self.producer).await?;
        info!("{} stopped", self.service);
        result
    }
}
