//! Wiring: the firing loops, the wake-up listener and the admin endpoints, from [`Config`].

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures::StreamExt;
use prometheus_client::registry::Registry;
use sked_core::{
    backoff::Backoff, config::Config, job::Shard, service::Base, store::calendars::CalendarCache,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{
    firing::{self, Firing, Route, Settings},
    metrics::Metrics,
};

const SERVICE: &str = "scheduler";

/// A started scheduler.
pub struct Running {
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    base: Base,
}

impl Running {
    /// Waits until every task stopped (after cancel), then flushes the producer.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.base.wait().await
    }
}

/// Starts the scheduler and runs it until `cancel`.
///
/// Shutdown order, on cancel:
/// 1. `/readyz` turns 503;
/// 2. each firing loop finishes its round: fires produced, acknowledged by Kafka, acked in
///    Redis, within `scheduler.drain_timeout` (a round cut short by it, or by a kill, leaves
///    leases that any scheduler reclaims within `scheduler.lease`);
/// 3. the producer flushes.
pub async fn run(config: Config, cancel: CancellationToken) -> anyhow::Result<()> {
    start(config, cancel).await?.wait().await
}

/// Starts the service; [`Running::wait`] runs it to the end.
pub async fn start(config: Config, cancel: CancellationToken) -> anyhow::Result<Running> {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let producer = Base::producer(&config, SERVICE)?;
    let mut base = Base::start(
        &config,
        SERVICE,
        config.scheduler.drain_timeout.get(),
        registry,
        producer,
        &cancel,
    )
    .await?;

    let settings = Arc::new(settings(&config));
    let loops = usize::from(config.scheduler.loops.max(1));
    let calendars = CalendarCache::new(base.store.clone(), config.calendar_set());
    let mut wakers = Vec::with_capacity(loops);
    for i in 0..loops {
        let shards: Vec<Shard> = (0..config.redis.shards)
            .filter(|s| usize::from(*s) % loops == i)
            .map(Shard)
            .collect();
        let (tx, rx) = watch::channel(i64::MAX);
        wakers.push(tx);
        let claim_limits = shards
            .iter()
            .map(|_| std::sync::atomic::AtomicUsize::new(settings.claim_batch))
            .collect();
        let hard_stop =
            sked_core::runtime::deadline_after(&cancel, config.scheduler.drain_timeout.get());
        let firing = Firing {
            store: base.store.clone(),
            producer: base.producer.clone(),
            shards,
            settings: settings.clone(),
            metrics: metrics.clone(),
            wake: rx,
            readiness: base.readiness.clone(),
            calendars: calendars.clone(),
            claim_limits,
            hard_stop,
        };
        base.tasks.spawn("firing", firing.run(cancel.clone()));
    }
    base.tasks.spawn(
        "wake",
        listen_for_wakeups(
            config.redis.urls().into_iter().map(str::to_owned).collect(),
            base.store.keys().wake_channel(),
            wakers,
            cancel.clone(),
        ),
    );
    let (claimed, fired, early, recent) = (
        metrics.claimed.clone(),
        metrics.fired.clone(),
        metrics.early.clone(),
        metrics.recent.clone(),
    );
    base.tasks.spawn(
        "gauges",
        firing::gauges(base.store.clone(), metrics, cancel.clone()),
    );
    base.spawn_announce(
        move |me| {
            let n = |c: &prometheus_client::metrics::counter::Counter| {
                i64::try_from(c.get()).unwrap_or(i64::MAX)
            };
            me.figures = [
                ("claimed".to_owned(), n(&claimed)),
                ("fired".to_owned(), n(&fired)),
                ("early".to_owned(), n(&early)),
            ]
            .into();
            me.lateness = Some(recent.window());
        },
        cancel.clone(),
    );
    base.spawn_probe(config.topics.due.clone(), cancel);
    Ok(Running {
        admin_addr: base.admin_addr,
        base,
    })
}

fn settings(config: &Config) -> Settings {
    let default_route = Route {
        topic: config.topics.due.clone(),
        format: Default::default(),
    };
    let routes = config
        .apps
        .iter()
        .map(|(name, app)| {
            let topic = app
                .topic
                .clone()
                .unwrap_or_else(|| config.topics.due.clone());
            (
                name.clone(),
                Route {
                    topic,
                    format: app.envelope,
                },
            )
        })
        .collect();
    Settings {
        claim_batch: config.scheduler.claim_batch,
        lease: config.scheduler.lease.get(),
        poll_interval: config.scheduler.poll_interval.get(),
        misfire_threshold: config.scheduler.misfire_threshold.get(),
        unknown_key_hold: config.scheduler.unknown_key_hold.get(),
        default_route,
        routes,
    }
}

/// Subscribes to the wake channel: ingest (and acks) publish `<shard>:<due ms>` when a job
/// lands earlier than its shard's earliest. The loop owning the shard wakes and looks again.
/// Reconnects with backoff; the firing loops' poll interval covers the gap.
///
/// On a Redis Cluster any node will do: a `PUBLISH` reaches every node over the cluster bus.
/// Each attempt takes the next of the seed `urls`, so one node down does not stop wake-ups.
async fn listen_for_wakeups(
    urls: Vec<String>,
    channel: String,
    wakers: Vec<watch::Sender<i64>>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(Duration::from_secs(5));
    let mut seeds = urls.iter().cycle();
    while !cancel.is_cancelled() {
        let Some(url) = seeds.next() else {
            return Ok(());
        };
        let subscribed = async {
            let client = redis::Client::open(url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match subscribed.await {
            Ok(p) => p,
            Err(err) => {
                warn!(error = %err, "cannot subscribe to wake-ups; relying on the poll interval");
                if !backoff.sleep(&cancel).await {
                    break;
                }
                continue;
            }
        };
        backoff.reset();
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                msg = messages.next() => msg,
            };
            let Some(msg) = msg else { break };
            let Ok(text) = msg.get_payload::<String>() else {
                continue;
            };
            let Some((shard, due)) = text.split_once(':') else {
                continue;
            };
            let (Ok(shard), Ok(due)) = (shard.parse::<usize>(), due.parse::<i64>()) else {
                continue;
            };
            if let Some(waker) = wakers.get(shard % wakers.len().max(1)) {
                waker.send_replace(due);
            }
        }
    }
    Ok(())
}
