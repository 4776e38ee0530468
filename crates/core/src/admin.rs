//! The admin listener every service has: `/healthz` (the process is alive), `/readyz` (every
//! dependency check passes and the service is not draining), `/metrics` (Prometheus text).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus_client::registry::Registry;
use rdkafka::producer::{FutureProducer, Producer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{readiness::Readiness, store::Store, supervise::Tasks};

#[derive(Clone)]
struct AdminState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// A bound admin listener.
pub struct Admin {
    listener: TcpListener,
    router: Router,
}

impl Admin {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(
        addr: SocketAddr,
        registry: Arc<Registry>,
        readiness: Readiness,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            router: router(AdminState {
                registry,
                readiness,
            }),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `cancel`.
    pub async fn run(self, cancel: CancellationToken) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
    }
}

fn router(state: AdminState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let checks = state.readiness.snapshot();
    let ready = checks.values().all(|ok| *ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": ready, "checks": checks });
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response(),
    }
}

/// Probes Redis and Kafka every second for `/readyz` until `cancel`, then turns the
/// `not_draining` check off so load balancers stop sending work.
pub async fn probe(
    store: Store,
    producer: FutureProducer,
    topic: String,
    readiness: Readiness,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        readiness.set("redis", store.ping().await.is_ok());
        let (p, t) = (producer.clone(), topic.clone());
        let kafka_ok = tokio::task::spawn_blocking(move || {
            p.client()
                .fetch_metadata(Some(&t), std::time::Duration::from_secs(2))
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
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

/// Binds the admin listener on `addr` (`admin.listen_addr`) and serves it as the lingering
/// task `admin` of `tasks`: until every other task has ended, the end of the drain. Returns
/// the bound address (port 0 picks one).
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    readiness: Readiness,
    tasks: &mut Tasks,
) -> anyhow::Result<SocketAddr> {
    let admin = Admin::bind(addr, Arc::new(registry), readiness)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on admin.listen_addr {addr}: {e}"))?;
    let bound = admin.local_addr()?;
    // Up to the end of the drain, so that /readyz answers 503 (not_draining) all through it.
    tasks.spawn_lingering("admin", |stop| async move { Ok(admin.run(stop).await?) });
    Ok(bound)
}
