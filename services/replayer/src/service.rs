//! Wiring: builds the retry drain, the DLQ API, the replays and the admin endpoints from
//! [`Config`], and runs them under one cancellation token.

use std::net::SocketAddr;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use rdkafka::{
    consumer::{Consumer as _, StreamConsumer},
    producer::FutureProducer,
};
use sked_core::{
    admin,
    config::Config,
    kafka,
    runtime::{self, Tasks},
    store::Store,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    http::{self, Api},
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
    tasks: Tasks,
    replays: Replays,
    producer: FutureProducer,
}

impl Running {
    /// Waits until every task has stopped (after the token is cancelled), then flushes.
    pub async fn wait(self) -> anyhow::Result<()> {
        let result = self.tasks.join().await;
        self.replays.wait().await;
        runtime::flush(self.producer).await?;
        info!("replayer stopped");
        result
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
    let readiness = admin::standard_readiness();

    let mut tasks = Tasks::default();
    let admin_addr = admin::serve(
        config.admin.listen_addr,
        registry,
        readiness.clone(),
        &mut tasks,
        &cancel,
    )
    .await?;
    let http_listener = TcpListener::bind(config.replayer.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on replayer.listen_addr {}",
                config.replayer.listen_addr
            )
        })?;
    let http_addr = http_listener.local_addr()?;
    info!(%admin_addr, %http_addr, "replayer listening");

    let Some(store) = Store::connect_with_retry(&config.redis, &readiness, &cancel).await else {
        anyhow::bail!("cancelled while connecting to redis");
    };
    let producer: FutureProducer = kafka::producer_config(&config.kafka, SERVICE)
        .create()
        .context("cannot create kafka producer")?;
    let consumer: StreamConsumer<_> =
        kafka::consumer_config(&config.kafka, SERVICE, &config.replayer.group_id)
            .create_with_context(RetryDrain::context(&metrics))
            .context("cannot create kafka consumer")?;
    consumer
        .subscribe(&[config.topics.retry.as_str()])
        .with_context(|| format!("cannot subscribe to {}", config.topics.retry))?;

    let scanner = Scanner::new(config.kafka.clone());
    let replays = Replays::new(
        store.connection(),
        scanner.clone(),
        producer.clone(),
        Settings {
            prefix: config.redis.key_prefix.clone(),
            dlq_topic: config.topics.dlq.clone(),
            max_replays: config.replayer.max_replays,
            default_rate: config.replayer.replay_rate,
        },
        metrics.clone(),
        cancel.clone(),
    );
    let api = Api {
        scanner,
        dlq_topic: config.topics.dlq.clone(),
        replays: replays.clone(),
    };
    let http_cancel = cancel.clone();
    tasks.spawn("http", async move {
        axum::serve(http_listener, http::router(api))
            .with_graceful_shutdown(async move { http_cancel.cancelled().await })
            .await
            .context("dlq api failed")
    });
    tasks.spawn("replays", replays.clone().sweep());

    let drain = RetryDrain {
        consumer,
        producer: producer.clone(),
        store: store.clone(),
        dlq_topic: config.topics.dlq.clone(),
        drain_timeout: config.replayer.drain_timeout.get(),
        metrics,
        readiness: readiness.clone(),
    };
    tasks.spawn("retry", drain.run(cancel.clone()));
    tasks.spawn(
        "probe",
        admin::probe(
            store,
            producer.clone(),
            config.topics.retry.clone(),
            readiness,
            cancel,
        ),
    );
    Ok(Running {
        http_addr,
        admin_addr,
        tasks,
        replays,
        producer,
    })
}
