//! Wiring: builds the consumer, the REST API and the admin endpoints from [`Config`], and runs
//! them under one cancellation token.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use rdkafka::{
    consumer::{Consumer as _, StreamConsumer},
    producer::{FutureProducer, Producer as _},
};
use sked_core::{
    admin::{Admin, Readiness},
    config::Config,
    kafka,
    request::Limits,
    runtime::Backoff,
    store::Store,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    consumer::{IngestConsumer, Settings},
    http::{self, Api},
    metrics::Metrics,
};

const SERVICE: &str = "ingest";

/// A started ingest service.
pub struct Running {
    /// Where the REST API listens.
    pub http_addr: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
    producer: FutureProducer,
}

impl Running {
    /// Waits until every task has stopped (after the token is cancelled), then flushes.
    pub async fn wait(self) -> anyhow::Result<()> {
        let mut first_error = None;
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    warn!(task = name, error = %err, "task failed");
                    first_error.get_or_insert(err.context(name));
                }
                Err(join) => {
                    first_error.get_or_insert(anyhow::anyhow!("task {name} panicked: {join}"));
                }
            }
        }
        let producer = self.producer;
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10))).await??;
        info!("ingest stopped");
        first_error.map_or(Ok(()), Err)
    }
}

/// Starts the ingest service and runs it until `cancel`.
///
/// Shutdown order, on cancel:
/// 1. `/readyz` turns 503 and the REST listener stops accepting;
/// 2. the consumer stops reading and finishes the batch in flight (bounded by
///    `ingest.drain_timeout`);
/// 3. it commits that batch's offsets synchronously;
/// 4. the producer flushes what is left (dead letters are already acknowledged).
pub async fn run(config: Config, cancel: CancellationToken) -> anyhow::Result<()> {
    start(config, cancel).await?.wait().await
}

/// Starts the service; [`Running::wait`] runs it to the end. Tests use this to learn the
/// bound addresses when they configure port 0.
pub async fn start(config: Config, cancel: CancellationToken) -> anyhow::Result<Running> {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let readiness = Readiness::new(&["redis", "kafka", "not_draining"]);
    readiness.set("not_draining", true);

    let admin = Admin::bind(
        config.admin.listen_addr,
        Arc::new(registry),
        readiness.clone(),
    )
    .await
    .with_context(|| {
        format!(
            "cannot listen on admin.listen_addr {}",
            config.admin.listen_addr
        )
    })?;
    let admin_addr = admin.local_addr()?;
    let http_listener = TcpListener::bind(config.http.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on http.listen_addr {}",
                config.http.listen_addr
            )
        })?;
    let http_addr = http_listener.local_addr()?;
    let mut tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> = Vec::new();
    tasks.push((
        "admin",
        tokio::spawn(admin.run(cancel.clone()).map_err_anyhow()),
    ));
    info!(%admin_addr, %http_addr, "ingest listening");

    let store = connect_store(&config, &readiness, &cancel).await?;
    let producer: FutureProducer = kafka::producer_config(&config.kafka, SERVICE)
        .create()
        .context("cannot create kafka producer")?;
    let consumer: StreamConsumer<_> =
        kafka::consumer_config(&config.kafka, SERVICE, &config.ingest.group_id)
            .create_with_context(IngestConsumer::context(metrics.clone()))
            .context("cannot create kafka consumer")?;
    consumer
        .subscribe(&[config.topics.ingest.as_str()])
        .with_context(|| format!("cannot subscribe to {}", config.topics.ingest))?;

    let limits = Arc::new(Limits {
        max_bytes: config.limits.max_request_bytes,
        max_horizon: config.limits.max_horizon.get(),
        default_timezone: config.default_timezone,
        apps: config.app_registry(),
    });
    let api = Api {
        store: store.clone(),
        limits: limits.clone(),
        metrics: metrics.clone(),
    };
    let http_cancel = cancel.clone();
    tasks.push((
        "http",
        tokio::spawn(async move {
            axum::serve(http_listener, http::router(api))
                .with_graceful_shutdown(async move { http_cancel.cancelled().await })
                .await
                .context("rest api failed")
        }),
    ));

    let ingest = IngestConsumer {
        consumer,
        producer: producer.clone(),
        store: store.clone(),
        settings: Settings {
            batch_max: config.ingest.batch_max,
            batch_linger: config.ingest.batch_linger.get(),
            drain_timeout: config.ingest.drain_timeout.get(),
            dlq_topic: config.topics.dlq.clone(),
            limits: (*limits).clone(),
        },
        metrics,
        readiness: readiness.clone(),
    };
    tasks.push(("consumer", tokio::spawn(ingest.run(cancel.clone()))));
    tasks.push((
        "health",
        tokio::spawn(health(
            store,
            producer.clone(),
            config.topics.ingest.clone(),
            readiness,
            cancel,
        )),
    ));
    Ok(Running {
        http_addr,
        admin_addr,
        tasks,
        producer,
    })
}

/// Connects to Redis, retrying with backoff until it answers or `cancel`.
async fn connect_store(
    config: &Config,
    readiness: &Readiness,
    cancel: &CancellationToken,
) -> anyhow::Result<Store> {
    let mut backoff = Backoff::new(Duration::from_secs(5));
    loop {
        match Store::connect(&config.redis).await {
            Ok(store) => {
                readiness.set("redis", true);
                return Ok(store);
            }
            Err(err) => {
                readiness.set("redis", false);
                warn!(error = %err, url = %sked_core::config::redact_url(&config.redis.url), "redis unreachable, retrying");
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => anyhow::bail!("cancelled while connecting to redis"),
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// Probes Redis and Kafka every second for `/readyz`; turns `not_draining` off on cancel.
async fn health(
    store: Store,
    producer: FutureProducer,
    topic: String,
    readiness: Readiness,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        readiness.set("redis", store.ping().await.is_ok());
        let p = producer.clone();
        let t = topic.clone();
        let kafka_ok = tokio::task::spawn_blocking(move || {
            p.client()
                .fetch_metadata(Some(&t), Duration::from_secs(2))
                .is_ok()
        })
        .await
        .unwrap_or(false);
        readiness.set("kafka", kafka_ok);
        tokio::select! {
            _ = cancel.cancelled() => {
                readiness.set("not_draining", false);
                return Ok(());
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

trait MapErrAnyhow {
    fn map_err_anyhow(self) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

impl<F: std::future::Future<Output = std::io::Result<()>> + Send> MapErrAnyhow for F {
    async fn map_err_anyhow(self) -> anyhow::Result<()> {
        Ok(self.await?)
    }
}
