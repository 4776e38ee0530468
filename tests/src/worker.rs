//! A worker started in-process, a local HTTP endpoint that records what the `http` handler
//! sends, and fired records built as the scheduler builds them.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::any,
};
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;
use sked_core::{config::Config, envelope::Envelope, job::Priority};
use sked_worker::Handlers;
use tokio_util::sync::CancellationToken;

/// `--set` overrides a worker test adds to [`crate::test_sets`]: its own group, short drains.
pub fn worker_sets(ns: &str) -> Vec<String> {
    vec![
        format!("worker.group_id={ns}-worker"),
        "worker.drain_timeout=10s".into(),
        "worker.commit_interval=100ms".into(),
    ]
}

/// A configuration for one worker test: [`crate::test_config`] + [`worker_sets`] + `extra`.
pub fn worker_config(ns: &str, extra: &[&str]) -> Config {
    let sets = worker_sets(ns);
    let mut all: Vec<&str> = sets.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    crate::test_config(ns, &all)
}

/// A running in-process worker.
pub struct Worker {
    /// Admin address.
    pub admin: SocketAddr,
    run: crate::InProcess,
}

impl Worker {
    /// Starts one with the built-in handlers.
    pub async fn start(config: Config) -> Self {
        Self::start_with(config, Handlers::new()).await
    }

    /// Starts one with custom handlers.
    pub async fn start_with(config: Config, handlers: Handlers) -> Self {
        let cancel = CancellationToken::new();
        let running = sked_worker::start_with(config, handlers, cancel.clone())
            .await
            .expect("start worker");
        let admin = running.admin_addr;
        let run = crate::InProcess::spawn("worker", cancel.clone(), running.wait());
        Self { admin, run }
    }

    /// SIGTERM-equivalent: cancels and waits for the drain.
    pub async fn stop(self) {
        self.run.stop().await;
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        crate::admin_metrics(self.admin).await
    }
}

/// The sum of every sample of `name` whose labels contain all of `labels` (0 when none).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let matches = series == name
                || (series.starts_with(name) && series[name.len()..].starts_with('{'));
            (matches && labels.iter().all(|x| series.contains(x)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// One request the endpoint received.
#[derive(Debug, Clone)]
pub struct Call {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// When the answer was sent (`None` while running, or when the client went away).
    pub answered: Option<DateTime<Utc>>,
    /// Its `sked-job-id` header.
    pub job_id: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

type Respond = dyn Fn(&Call, usize) -> (u16, Duration) + Send + Sync;

#[derive(Clone)]
struct EndpointState {
    calls: Arc<Mutex<Vec<Call>>>,
    respond: Arc<Respond>,
}

/// A local HTTP server standing for an app: records every request, answers what `respond`
/// says for (the request, how many earlier requests had the same `sked-job-id`).
pub struct Endpoint {
    /// Its address.
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    cancel: CancellationToken,
}

impl Endpoint {
    /// Starts one on 127.0.0.1:0.
    pub async fn start(
        respond: impl Fn(&Call, usize) -> (u16, Duration) + Send + Sync + 'static,
    ) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let state = EndpointState {
            calls: calls.clone(),
            respond: Arc::new(respond),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind endpoint");
        let addr = listener.local_addr().expect("endpoint addr");
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let app = Router::new()
            .route("/{*path}", any(record))
            .with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Self {
            addr,
            calls,
            cancel,
        }
    }

    /// URL of `path` on it.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    /// Requests so far for `job_id`.
    pub fn calls_for(&self, job_id: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.job_id == job_id)
            .collect()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn record(State(state): State<EndpointState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let job_id = headers
        .get("sked-job-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let call = Call {
        at: Utc::now(),
        answered: None,
        job_id: job_id.clone(),
        headers,
        body,
    };
    let (index, earlier) = {
        let mut calls = state.calls.lock().expect("calls");
        let earlier = calls.iter().filter(|c| c.job_id == job_id).count();
        calls.push(call.clone());
        (calls.len() - 1, earlier)
    };
    let (status, delay) = (state.respond)(&call, earlier);
    tokio::time::sleep(delay).await;
    if let Some(c) = state.calls.lock().expect("calls").get_mut(index) {
        c.answered = Some(Utc::now());
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A fired record as the scheduler writes it: (value, headers).
pub fn fire(
    job_id: &str,
    app: &str,
    due: DateTime<Utc>,
    payload: &str,
    attempt: u32,
) -> (Vec<u8>, Vec<(String, String)>) {
    let envelope = Envelope {
        job_id: job_id.to_owned(),
        fire_id: format!("{job_id}@{}", due.timestamp_millis()),
        app: app.to_owned(),
        due_at: due,
        fired_at: Utc::now(),
        attempt,
        payload: serde_json::value::RawValue::from_string(payload.to_owned())
            .expect("payload is JSON"),
        priority: Priority::Normal,
        timeout_ms: None,
        retry: None,
        labels: Default::default(),
        tenant: None,
    };
    let value = serde_json::to_vec(&envelope).expect("envelope");
    let headers = vec![
        ("sked-job-id".into(), envelope.job_id.clone()),
        ("sked-fire-id".into(), envelope.fire_id.clone()),
        ("sked-app".into(), envelope.app.clone()),
        ("sked-attempt".into(), attempt.to_string()),
        ("sked-due-at".into(), due.timestamp_millis().to_string()),
        (
            "sked-fired-at".into(),
            envelope.fired_at.timestamp_millis().to_string(),
        ),
        ("traceparent".into(), envelope.traceparent()),
    ];
    (value, headers)
}

/// Produces a [`fire`] to `topic`, keyed by the job id.
pub async fn produce_fire(
    producer: &FutureProducer,
    topic: &str,
    job_id: &str,
    app: &str,
    due: DateTime<Utc>,
    payload: &str,
) -> (Vec<u8>, Vec<(String, String)>) {
    let (value, headers) = fire(job_id, app, due, payload, 1);
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    crate::produce(
        producer,
        topic,
        None,
        Some(job_id.as_bytes()),
        Some(&value),
        &h,
    )
    .await;
    (value, headers)
}
