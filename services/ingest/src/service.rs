//! Wiring: builds the consumer, the REST API and the admin endpoints from [`Config`], and runs
//! them under one cancellation token.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use sked_core::{
    config::Config, kafka, request::Limits, service::Base, store::calendars::CalendarCache,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

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
    base: Base,
}

impl Running {
    /// Waits until every task has stopped (after the token is cancelled), then flushes.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.base.wait().await
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
    // The REST listener first: a taken port stops the service before anything else binds.
    let http_listener = TcpListener::bind(config.http.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on http.listen_addr {}",
                config.http.listen_addr
            )
        })?;
    let http_addr = http_listener.local_addr()?;
    info!(%http_addr, "rest api listening");
    let producer = Base::producer(&config, SERVICE)?;
    let gate = sked_core::auth::Gate::new(&config, http::rules, producer.clone(), &mut registry)
        .await
        .context("cannot set up API auth")?;
    let stall = kafka::stall::Metrics::new(&mut registry);
    let mut base = Base::start(
        &config,
        SERVICE,
        config.ingest.drain_timeout.get(),
        registry,
        producer,
        &cancel,
    )
    .await?;
    let quotas = crate::quota::Quotas::new(&config.quotas, base.store.clone(), &metrics);
    if let Some(refresh) = gate.refresh_task(cancel.clone()) {
        base.tasks.spawn("jwks", refresh);
    }

    let consumer: StreamConsumer<_> =
        kafka::consumer_config(&config.kafka, SERVICE, &config.ingest.group_id)
            .create_with_context(IngestConsumer::context(&metrics))
            .context("cannot create kafka consumer")?;
    let mut topics = vec![config.topics.ingest.as_str()];
    topics.extend(config.ingest.topics.iter().map(String::as_str));
    consumer
        .subscribe(&topics)
        .with_context(|| format!("cannot subscribe to {}", topics.join(", ")))?;
    let topics: Vec<String> = topics.into_iter().map(str::to_owned).collect();
    let rejoin = base.spawn_stall_watch(
        &config,
        &config.ingest.group_id,
        topics.clone(),
        consumer.context().assigned(),
        stall,
        cancel.clone(),
    );

    let limits = Arc::new(Limits {
        max_bytes: config.limits.max_request_bytes,
        max_horizon: config.limits.max_horizon.get(),
        default_timezone: config.default_timezone,
        apps: config.app_registry(),
    });
    let operations = crate::ops::Operations::new(base.store.clone());
    let calendars = CalendarCache::new(base.store.clone(), config.calendar_set());
    let api = Api {
        store: base.store.clone(),
        limits: limits.clone(),
        metrics: metrics.clone(),
        ops: operations.clone(),
        calendars: calendars.clone(),
        quotas: quotas.clone(),
        cluster: crate::cluster::View::default(),
    };
    base.tasks
        .spawn("operations", operations.run(cancel.clone()));
    base.tasks.spawn(
        "recurring-index",
        backfill_recurring(base.store.clone(), cancel.clone()),
    );
    base.tasks.spawn(
        "cluster-view",
        crate::cluster::run(
            api.cluster.clone(),
            config.clone(),
            base.store.clone(),
            cancel.clone(),
        ),
    );
    let http_cancel = cancel.clone();
    base.tasks.spawn("http", async move {
        axum::serve(http_listener, http::router(api, gate))
            .with_graceful_shutdown(async move { http_cancel.cancelled().await })
            .await
            .context("rest api failed")
    });

    let dlq = base.dlq_sender(&config, metrics.dlq_counters(), &[]);
    let ingest = IngestConsumer {
        consumer,
        topics,
        rejoin,
        dlq,
        store: base.store.clone(),
        settings: Settings {
            batch_max: config.ingest.batch_max,
            batch_linger: config.ingest.batch_linger.get(),
            drain_timeout: config.ingest.drain_timeout.get(),
            limits: (*limits).clone(),
            tenants: config.ingest.clone(),
        },
        metrics,
        readiness: base.readiness.clone(),
        calendars,
        quotas,
    };
    base.tasks.spawn("consumer", ingest.run(cancel.clone()));
    base.spawn_announce(|_| {}, cancel.clone());
    base.spawn_probe(config.topics.ingest.clone(), cancel);
    Ok(Running {
        http_addr,
        admin_addr: base.admin_addr,
        base,
    })
}

/// Puts the recurring jobs of a store written by a version without the recurring index into
/// it (`Store::backfill_recurring`), retrying after Redis errors; ends once done. A listing by
/// kind reads the state sets until then, so nothing is missed meanwhile.
async fn backfill_recurring(
    store: sked_core::store::Store,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = sked_core::backoff::Backoff::new(std::time::Duration::from_secs(30));
    loop {
        let started = std::time::Instant::now();
        match store.backfill_recurring(&cancel).await {
            Ok(added) => {
                if added > 0 {
                    tracing::info!(
                        added,
                        seconds = started.elapsed().as_secs_f64(),
                        "recurring index backfilled"
                    );
                }
                return Ok(());
            }
            Err(err) => {
                tracing::warn!(error = %err, "recurring index backfill failed; retrying");
                if !backoff.sleep(&cancel).await {
                    return Ok(());
                }
            }
        }
    }
}
