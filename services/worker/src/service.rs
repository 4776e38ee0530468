//! Wiring: the handlers of every app, the consumer and the admin endpoints, from [`Config`],
//! under one cancellation token.

use std::{collections::BTreeMap, net::SocketAddr, num::NonZeroU32, sync::Arc, time::Duration};

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use rdkafka::{
    consumer::{Consumer as _, StreamConsumer},
    producer::FutureProducer,
};
use sked_core::{
    config::{AppRetryOptions, Config},
    kafka,
    request::{Backoff, RetryPolicy},
    service::Base,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    breaker::{Breaker, BreakerSettings},
    consumer::{self, Context, WorkerConsumer},
    execute::{self, Executor, Route},
    forward::KafkaHandler,
    handler::{Handler, Handlers},
    http::HttpHandler,
    limits::Limits,
    metrics::Metrics,
    rate_limit::RateLimiter,
};

const SERVICE: &str = "worker";

/// A worker with custom handlers, built with [`Worker::builder`].
///
/// ```no_run
/// # async fn demo(config: sked_core::config::Config) -> anyhow::Result<()> {
/// use sked_worker::{HandlerError, Job, Worker};
///
/// let worker = Worker::builder(config)
///     .handler("sms", |job: Job| async move {
///         println!("sending {}", job.payload);
///         Ok::<(), HandlerError>(())
///     })
///     .build();
/// worker.run(sked_core::runtime::shutdown_on_signals()).await
/// # }
/// ```
pub struct Worker {
    config: Config,
    handlers: Handlers,
}

/// Builds a [`Worker`].
pub struct Builder {
    config: Config,
    handlers: Handlers,
}

impl Worker {
    /// A builder for a worker with `config`.
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            handlers: Handlers::new(),
        }
    }

    /// Starts the worker; see [`start_with`].
    pub async fn start(self, cancel: CancellationToken) -> anyhow::Result<Running> {
        start_with(self.config, self.handlers, cancel).await
    }

    /// Runs the worker until `cancel` and the drain end.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        self.start(cancel).await?.wait().await
    }
}

impl Builder {
    /// Registers a custom handler: it runs the jobs of the apps whose `handler` is `name`,
    /// and of the app called `name` when that app is not configured.
    pub fn handler(mut self, name: impl Into<String>, handler: impl Handler) -> Self {
        self.handlers.register(name, handler);
        self
    }

    /// The worker.
    pub fn build(self) -> Worker {
        Worker {
            config: self.config,
            handlers: self.handlers,
        }
    }
}

/// A started worker.
pub struct Running {
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

/// Runs a worker with the built-in handlers only, until `cancel`.
///
/// Shutdown order, on cancel:
/// 1. `/readyz` turns 503 and the consumer stops reading;
/// 2. running handlers finish (bounded by `worker.drain_timeout`); queued records are left
///    for redelivery;
/// 3. finished offsets are committed synchronously;
/// 4. the producer flushes (retry and dead-letter records are already acknowledged).
pub async fn run(config: Config, cancel: CancellationToken) -> anyhow::Result<()> {
    start(config, cancel).await?.wait().await
}

/// Starts a worker with the built-in handlers only; [`Running::wait`] runs it to the end.
pub async fn start(config: Config, cancel: CancellationToken) -> anyhow::Result<Running> {
    start_with(config, Handlers::new(), cancel).await
}

/// Starts a worker with custom `handlers` besides the built-in `http` and `kafka`.
pub async fn start_with(
    config: Config,
    handlers: Handlers,
    cancel: CancellationToken,
) -> anyhow::Result<Running> {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let stall = kafka::stall::Metrics::new(&mut registry);
    let producer = Base::producer(&config, SERVICE)?;
    // Routes first: a misconfigured app stops the worker before it binds or consumes.
    let routes = routes(&config, &handlers, &producer, &metrics)?;
    let mut base = Base::start(
        &config,
        SERVICE,
        config.worker.drain_timeout.get(),
        registry,
        producer,
        &cancel,
    )
    .await?;

    let topics = due_topics(&config);
    let consumer: StreamConsumer<Context> =
        kafka::consumer_config(&config.kafka, SERVICE, &config.worker.group_id)
            .create_with_context(Context::new("worker", metrics.commit_errors.clone()))
            .context("cannot create kafka consumer")?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .with_context(|| format!("cannot subscribe to {topics:?}"))?;
    info!(topics = ?topics, group = %config.worker.group_id, "worker consuming");
    if config.global_limits.any() {
        info!(
            app_rates = config.global_limits.apps.len(),
            tenant_rates = config.global_limits.tenants.len()
                + usize::from(config.global_limits.default_tenant.is_some()),
            concurrency_keys = config.global_limits.concurrency.len(),
            "global limits on (shared through redis)"
        );
    }
    let rejoin = base.spawn_stall_watch(
        &config,
        &config.worker.group_id,
        topics.clone(),
        consumer.context().assigned(),
        stall,
        cancel.clone(),
    );

    let max_in_flight = config.worker.max_in_flight.max(1);
    // The drain deadline, shared by the consumer and every running record.
    let hard_stop = sked_core::runtime::deadline_after(&cancel, config.worker.drain_timeout.get());
    let dlq = base.dlq_sender(
        &config,
        metrics.dlq_counters(),
        std::slice::from_ref(&config.topics.retry),
    );
    let executor = Arc::new(Executor {
        store: base.store.clone(),
        producer: base.producer.clone(),
        dlq,
        settings: execute::Settings {
            routes,
            default_timeout: config.worker.default_timeout.get(),
            lease_grace: config.worker.lease_grace.get(),
            retry_topic: config.topics.retry.clone(),
            limits: Limits::from_options(&config.global_limits),
            attempts_kept: config.worker.attempts_kept,
        },
        metrics: metrics.clone(),
        readiness: base.readiness.clone(),
        slots: Semaphore::new(max_in_flight),
        cancel: cancel.clone(),
        hard_stop: hard_stop.clone(),
    });
    let worker = WorkerConsumer {
        consumer,
        topics: topics.clone(),
        rejoin,
        executor,
        settings: consumer::Settings {
            max_in_flight,
            commit_interval: config
                .worker
                .commit_interval
                .get()
                .max(Duration::from_millis(10)),
        },
        metrics: metrics.keyed(),
        readiness: base.readiness.clone(),
    };
    base.tasks
        .spawn("consumer", worker.run(cancel.clone(), hard_stop));
    let in_flight = metrics.in_flight.clone();
    base.spawn_announce(
        move |me| me.figures = [("in_flight".to_owned(), in_flight.get())].into(),
        cancel.clone(),
    );
    let probe_topic = topics.first().cloned().unwrap_or(config.topics.due.clone());
    base.spawn_probe(probe_topic, cancel);
    Ok(Running {
        admin_addr: base.admin_addr,
        base,
    })
}

/// `worker.topics`, or `topics.due` plus every app's own topic.
pub fn due_topics(config: &Config) -> Vec<String> {
    config.worker_topics()
}

/// The route of every configured app, and of every registered handler's own app name.
fn routes(
    config: &Config,
    handlers: &Handlers,
    producer: &FutureProducer,
    metrics: &Metrics,
) -> anyhow::Result<BTreeMap<String, Route>> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("cannot build the http client")?;
    let mut routes = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, app) in &config.apps {
        let handler: Option<Arc<dyn Handler>> = match app.handler.as_str() {
            "http" => match HttpHandler::new(name, app, client.clone()) {
                Ok(h) => Some(Arc::new(h)),
                Err(err) => {
                    problems.push(err.to_string());
                    None
                }
            },
            "kafka" => match KafkaHandler::new(app, producer.clone()) {
                Some(h) => Some(Arc::new(h)),
                None => {
                    problems.push(format!(
                        "`apps.{name}.target_topic`: is required when handler = \"kafka\""
                    ));
                    None
                }
            },
            custom => {
                let found = handlers.get(custom);
                if found.is_none() {
                    warn!(app = %name, handler = custom, "no custom handler registered under this name; the app's jobs go to the DLQ with reason no_handler");
                }
                found
            }
        };
        routes.insert(
            name.clone(),
            Route {
                handler,
                timeout: app.timeout.map(|t| t.get()),
                retry: app.retry.as_ref().map(policy),
                rate_limit: app.rate_limit.as_ref().map(|limit| {
                    let waited = metrics
                        .rate_limited_seconds
                        .get_or_create(&Metrics::app(name))
                        .clone();
                    Arc::new(RateLimiter::from_options(limit, waited))
                }),
                breaker: app.circuit_breaker.as_ref().map(|breaker| {
                    let gauge = metrics
                        .circuit_state
                        .get_or_create(&Metrics::app(name))
                        .clone();
                    Arc::new(Breaker::new(BreakerSettings::from(breaker), gauge))
                }),
            },
        );
    }
    if !problems.is_empty() {
        anyhow::bail!("invalid app configuration: {}", problems.join("; "));
    }
    for name in handlers.names() {
        if !routes.contains_key(name) {
            routes.insert(
                name.to_owned(),
                Route {
                    handler: handlers.get(name),
                    timeout: None,
                    retry: None,
                    rate_limit: None,
                    breaker: None,
                },
            );
        }
    }
    Ok(routes)
}

/// An app's retry policy: exponential, jitter 0.2.
fn policy(retry: &AppRetryOptions) -> RetryPolicy {
    RetryPolicy {
        max_attempts: retry.max_attempts.max(NonZeroU32::MIN),
        backoff: Backoff::Exponential,
        initial_ms: u64::try_from(retry.initial.get().as_millis()).unwrap_or(u64::MAX),
        max_ms: u64::try_from(retry.max.get().as_millis()).unwrap_or(u64::MAX),
        jitter: RetryPolicy::default().jitter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sked_core::config::{Layers, load};

    fn config(sets: &[&str]) -> Result<Config, String> {
        load(&Layers {
            sets: sets.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn rate_limit_and_circuit_breaker_tables_parse_with_defaults() {
        let c = config(&[
            "apps.a.handler=custom",
            "apps.a.rate_limit={ per_second = 2.5 }",
            "apps.a.circuit_breaker={ min_calls = 3 }",
        ])
        .unwrap();
        let app = &c.apps["a"];
        let limit = app.rate_limit.as_ref().unwrap();
        assert_eq!((limit.per_second, limit.effective_burst()), (2.5, 3));
        let b = app.circuit_breaker.as_ref().unwrap();
        assert_eq!((b.failure_rate, b.min_calls), (0.5, 3));
        assert_eq!(b.window.get(), Duration::from_secs(30));
        assert_eq!(b.open_for.get(), Duration::from_secs(30));
        assert!(
            config(&["apps.a.handler=custom"]).unwrap().apps["a"]
                .rate_limit
                .is_none()
        );
    }

    #[test]
    fn out_of_range_values_and_unknown_keys_are_rejected() {
        for (set, key) in [
            (
                "apps.a.rate_limit={ per_second = 0.0 }",
                "rate_limit.per_second",
            ),
            (
                "apps.a.rate_limit={ per_second = -1.0 }",
                "rate_limit.per_second",
            ),
            (
                "apps.a.rate_limit={ per_second = 1.0, burst = 0 }",
                "rate_limit.burst",
            ),
            ("apps.a.rate_limit={ per_second = 1.0, brust = 2 }", "brust"),
            (
                "apps.a.circuit_breaker={ failure_rate = 0.0 }",
                "circuit_breaker.failure_rate",
            ),
            (
                "apps.a.circuit_breaker={ failure_rate = 1.5 }",
                "circuit_breaker.failure_rate",
            ),
            (
                "apps.a.circuit_breaker={ min_calls = 0 }",
                "circuit_breaker.min_calls",
            ),
            (
                "apps.a.circuit_breaker={ open_for = \"0s\" }",
                "circuit_breaker.open_for",
            ),
            (
                "apps.a.circuit_breaker={ window = \"0s\" }",
                "circuit_breaker.window",
            ),
        ] {
            let err = config(&["apps.a.handler=custom", set]).unwrap_err();
            assert!(err.contains(key), "{set}: {err}");
        }
        assert!(
            config(&[
                "apps.a.handler=custom",
                "apps.a.circuit_breaker={ failure_rate = 1.0 }"
            ])
            .is_ok()
        );
    }
}
