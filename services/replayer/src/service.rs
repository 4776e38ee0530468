//! Wiring: builds the retry drain, the DLQ API, the replays and the admin endpoints from
//! [`Config`], and runs them under one cancellation token.

use std::net::SocketAddr;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use sked_core::{config::Config, kafka, service::Base};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    http::{self, Api},
    index::{DlqIndex, build::Indexer},
    metrics::Metrics,
    replay::{Replays, Settings},
    retry::RetryDrain,
    scan::Scanner,
};

const SERVICE: &str = "replayer";

/// A started replayer.
pub struct Running {
    /// Where the DLQ API listens.
    pub http_addr: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    base: Base,
    replays: Replays,
}

impl Running {
    /// Waits until every task has stopped (after the token is cancelled), then until the
    /// running replays have stopped, then flushes.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.base.wait_then(self.replays.wait()).await
    }
}

/// Starts the replayer and runs it until `cancel`.
///
/// Shutdown order, on cancel:
/// 1. `/readyz` turns 503 and the DLQ API stops accepting;
/// 2. the retry drain stops reading and finishes the batch in flight (bounded by
///    `replayer.drain_timeout`), then commits its offsets synchronously;
/// 3. running replays stop publishing, await the acks of their sends in flight and release
///    their lease (they stay `running` in Redis and are resumed by the next replayer);
/// 4. the producer flushes what is left.
pub async fn run(config: Config, cancel: CancellationToken) -> anyhow::Result<()> {
    start(config, cancel).await?.wait().await
}

/// Starts the service; [`Running::wait`] runs it to the end. Tests use this to learn the
/// bound addresses when they configure port 0.
pub async fn start(config: Config, cancel: CancellationToken) -> anyhow::Result<Running> {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    // The DLQ API listener first: a taken port stops the service before anything else binds.
    let http_listener = TcpListener::bind(config.replayer.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on replayer.listen_addr {}",
                config.replayer.listen_addr
            )
        })?;
    let http_addr = http_listener.local_addr()?;
    info!(%http_addr, "dlq api listening");
    let producer = Base::producer(&config, SERVICE)?;
    let gate = sked_core::auth::Gate::new(&config, http::rules, producer.clone(), &mut registry)
        .await
        .context("cannot set up API auth")?;
    let stall = kafka::stall::Metrics::new(&mut registry);
    let mut base = Base::start(
        &config,
        SERVICE,
        config.replayer.drain_timeout.get(),
        registry,
        producer,
        &cancel,
    )
    .await?;
    if let Some(refresh) = gate.refresh_task(cancel.clone()) {
        base.tasks.spawn("jwks", refresh);
    }

    let consumer: StreamConsumer<_> =
        kafka::consumer_config(&config.kafka, SERVICE, &config.replayer.group_id)
            .create_with_context(RetryDrain::context(&metrics))
            .context("cannot create kafka consumer")?;
    consumer
        .subscribe(&[config.topics.retry.as_str()])
        .with_context(|| format!("cannot subscribe to {}", config.topics.retry))?;
    let rejoin = base.spawn_stall_watch(
        &config,
        &config.replayer.group_id,
        vec![config.topics.retry.clone()],
        consumer.context().assigned(),
        stall,
        cancel.clone(),
    );

    let scanner = Scanner::new(config.kafka.clone());
    let replays = Replays::new(
        base.store.connection(),
        scanner.clone(),
        base.producer.clone(),
        Settings {
            prefix: config.redis.key_prefix.clone(),
            dlq_topic: config.topics.dlq.clone(),
            max_replays: config.replayer.max_replays,
            default_rate: config.replayer.replay_rate,
        },
        metrics.clone(),
        cancel.clone(),
    );
    let dlq_index = DlqIndex::new(base.store.connection(), &config.redis.key_prefix);
    let indexer = Indexer {
        index: dlq_index.clone(),
        conn: base.store.connection(),
        kafka: config.kafka.clone(),
        topic: config.topics.dlq.clone(),
        max_letters: config.replayer.index_max_letters,
        scanner: scanner.clone(),
        metrics: metrics.clone(),
    };
    base.tasks.spawn("dlq-index", indexer.run(cancel.clone()));
    let api = Api {
        scanner,
        dlq_topic: config.topics.dlq.clone(),
        replays: replays.clone(),
        index: dlq_index,
    };
    let http_cancel = cancel.clone();
    base.tasks.spawn("http", async move {
        axum::serve(http_listener, http::router(api, gate))
            .with_graceful_shutdown(async move { http_cancel.cancelled().await })
            .await
            .context("dlq api failed")
    });
    base.tasks.spawn("replays", replays.clone().sweep());

    let dlq = base.dlq_sender(&config, metrics.dlq_counters(), &[]);
    let drain = RetryDrain {
        consumer,
        topic: config.topics.retry.clone(),
        rejoin,
        dlq,
        store: base.store.clone(),
        drain_timeout: config.replayer.drain_timeout.get(),
        metrics,
        readiness: base.readiness.clone(),
    };
    base.tasks.spawn("retry", drain.run(cancel.clone()));
    base.spawn_announce(|_| {}, cancel.clone());
    base.spawn_probe(config.topics.retry.clone(), cancel);
    Ok(Running {
        http_addr,
        admin_addr: base.admin_addr,
        base,
        replays,
    })
}
