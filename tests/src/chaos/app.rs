//! The app the workers call: a local HTTP server that records every execution (job id, fire
//! id, attempt, when, what it answered). Jobs whose id starts with `f-` fail their first
//! attempt with 503 (transient: the worker retries them through the replayer); everything
//! else succeeds.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{Router, extract::State, http::HeaderMap, http::StatusCode, routing::any};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

/// One request the app received.
#[derive(Debug, Clone)]
pub struct Exec {
    /// `sked-job-id`.
    pub job_id: String,
    /// `sked-fire-id`.
    pub fire_id: String,
    /// `sked-attempt` (0 when missing or not a number).
    pub attempt: u32,
    /// When it arrived, epoch ms.
    pub at_ms: i64,
    /// What the app answered.
    pub status: u16,
}

impl Exec {
    /// Whether the app answered success.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

type Log = Arc<Mutex<Vec<Exec>>>;

/// The running app; stops on drop.
pub struct App {
    /// Its address.
    pub addr: SocketAddr,
    log: Log,
    cancel: CancellationToken,
}

impl App {
    /// Starts it on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let log: Log = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let router = Router::new()
            .route("/{*path}", any(execute))
            .with_state(log.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Ok(Self { addr, log, cancel })
    }

    /// The URL the workers call.
    pub fn url(&self) -> String {
        format!("http://{}/run", self.addr)
    }

    /// Every execution so far.
    pub fn executions(&self) -> Vec<Exec> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn execute(State(log): State<Log>, headers: HeaderMap) -> StatusCode {
    let job_id = text(&headers, "sked-job-id");
    let attempt = text(&headers, "sked-attempt").parse().unwrap_or(0);
    let status = if job_id.starts_with("f-") && attempt <= 1 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let exec = Exec {
        fire_id: text(&headers, "sked-fire-id"),
        job_id,
        attempt,
        at_ms: Utc::now().timestamp_millis(),
        status: status.as_u16(),
    };
    if let Ok(mut l) = log.lock() {
        l.push(exec);
    }
    status
}
