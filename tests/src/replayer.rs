//! A replayer started in-process (or as a process), and the records the worker and ingest
//! write for it: retry records and dead letters with their full header sets.

use std::{net::SocketAddr, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use reqwest::StatusCode;
use serde_json::Value;
use sked_core::config::{Config, Layers, load};
use tokio_util::sync::CancellationToken;

/// [`crate::test_sets`] plus the replayer's own: a unique group, a free port for the API.
pub fn replayer_sets(ns: &str) -> Vec<String> {
    let mut sets = crate::test_sets(ns);
    sets.push(format!("replayer.group_id={ns}-replayer"));
    sets.push("replayer.listen_addr=127.0.0.1:0".into());
    sets.push("replayer.drain_timeout=5s".into());
    sets
}

/// A configuration for one replayer test, with `extra` overrides.
pub fn replayer_config(ns: &str, extra: &[&str]) -> Config {
    let mut sets = replayer_sets(ns);
    sets.extend(extra.iter().map(|s| s.to_string()));
    load(&Layers {
        sets,
        ..Default::default()
    })
    .expect("test configuration is valid")
}

/// A free TCP port on loopback (for a replayer run as a process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A running in-process replayer.
pub struct Replayer {
    /// DLQ API address.
    pub http: SocketAddr,
    /// Admin address.
    pub admin: SocketAddr,
    run: crate::InProcess,
}

impl Replayer {
    /// Starts one with `config`.
    pub async fn start(config: Config) -> Self {
        let replayer = Self::start_unindexed(config).await;
        replayer.indexed().await;
        replayer
    }

    /// Starts one with `config`, not waiting for the DLQ index.
    pub async fn start_unindexed(config: Config) -> Self {
        let cancel = CancellationToken::new();
        let running = sked_replayer::start(config, cancel.clone())
            .await
            .expect("start replayer");
        let (http, admin) = (running.http_addr, running.admin_addr);
        let run = crate::InProcess::spawn("replayer", cancel.clone(), running.wait());
        Self { http, admin, run }
    }

    /// Waits until the DLQ index has read every partition of the DLQ to its end (the API
    /// answers from the index; letters written before now are in it after this).
    pub async fn indexed(&self) {
        let url = format!("{}/v1/dlq/stats", self.api());
        crate::eventually(Duration::from_secs(30), "dlq index caught up", || async {
            let body = crate::try_json(&url).await?;
            (body["index"]["caught_up"] == true).then_some(())
        })
        .await
    }

    /// Cancels and waits for the drain.
    pub async fn stop(self) {
        self.run.stop().await;
    }

    /// Base URL of the DLQ API.
    pub fn api(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        crate::admin_metrics(self.admin).await
    }
}

/// `GET url`: status and JSON body.
pub async fn get(url: &str) -> (StatusCode, Value) {
    let resp = crate::http().get(url).send().await.expect("GET");
    let status = resp.status();
    (status, resp.json().await.expect("json body"))
}

/// `POST url` with a JSON body: status and JSON body.
pub async fn post(url: &str, body: &Value) -> (StatusCode, Value) {
    let resp = crate::http()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = resp.status();
    (status, resp.json().await.expect("json body"))
}

/// Polls `GET {api}/v1/dlq/replays/{id}` until the replay is `done`; returns its progress.
pub async fn wait_replay(api: &str, id: &str, timeout: Duration) -> Value {
    let url = format!("{api}/v1/dlq/replays/{id}");
    crate::eventually(timeout, "replay done", || async {
        let resp = crate::http().get(&url).send().await.ok()?;
        let body: Value = resp.json().await.ok()?;
        (body["status"] == "done").then_some(body)
    })
    .await
}

/// Starts a replay of `selection` (`POST {api}/v1/dlq/replays`), asserts it was accepted and
/// waits until it is done; returns its progress.
pub async fn replay_and_wait(api: &str, selection: &Value, timeout: Duration) -> Value {
    let (status, started) = post(&format!("{api}/v1/dlq/replays"), selection).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().expect("replay id");
    wait_replay(api, id, timeout).await
}

/// A fired envelope as the scheduler writes it (attempt 1), and its fire id.
pub fn envelope(job_id: &str, app: &str, due: DateTime<Utc>) -> (String, String) {
    let fire_id = format!("{job_id}@{}", due.timestamp_millis());
    let at = due.to_rfc3339_opts(SecondsFormat::Millis, true);
    let json = format!(
        r#"{{"job_id":"{job_id}","fire_id":"{fire_id}","app":"{app}","due_at":"{at}","fired_at":"{at}","attempt":1,"payload":{{"n":12345678901234567890}},"priority":"normal"}}"#
    );
    (json, fire_id)
}

/// The headers of a retry record as the worker writes them: the fired headers plus
/// `sked-retry-at`, `sked-attempt` (the next attempt), `retry-count`, `last-error`.
pub fn retry_headers(
    job_id: &str,
    fire_id: &str,
    app: &str,
    due: DateTime<Utc>,
    retry_at: DateTime<Utc>,
    next_attempt: u32,
) -> Vec<(String, String)> {
    let due_ms = due.timestamp_millis().to_string();
    vec![
        ("sked-job-id".into(), job_id.into()),
        ("sked-fire-id".into(), fire_id.into()),
        ("sked-app".into(), app.into()),
        ("sked-due-at".into(), due_ms.clone()),
        ("sked-fired-at".into(), due_ms),
        (
            "traceparent".into(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        ),
        ("sked-attempt".into(), next_attempt.to_string()),
        (
            "sked-retry-at".into(),
            retry_at.timestamp_millis().to_string(),
        ),
        ("retry-count".into(), (next_attempt - 1).to_string()),
        ("last-error".into(), "http 503 from handler".into()),
    ]
}

/// What a dead letter says about its failure.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// Topic the failed record came from (the replay target).
    pub original_topic: &'a str,
    /// `ingest` or `execute`.
    pub stage: &'a str,
    /// `sked-reason`.
    pub reason: &'a str,
    /// `error-message`.
    pub message: &'a str,
    /// `error-timestamp`.
    pub at: DateTime<Utc>,
    /// `sked-app`.
    pub app: &'a str,
    /// `sked-job-id`.
    pub job_id: &'a str,
    /// `sked-attempts`.
    pub attempts: u32,
    /// `sked-replay-count`, when the letter was replayed before.
    pub replay_count: Option<u32>,
}

/// The full header set of a dead letter, as `sked_core::kafka::dlq::record` builds it after
/// the original fired headers.
///
/// The original offset is derived from the job, stage and replay count, so distinct failures
/// have distinct origins (a replay skips a second letter of the same origin) and the same
/// failure written twice has the same one.
pub fn dlq_headers(f: &Failure<'_>) -> Vec<(String, String)> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let ms = f.at.timestamp_millis().to_string();
    let mut origin = DefaultHasher::new();
    (f.job_id, f.stage, f.replay_count).hash(&mut origin);
    let original_offset = (origin.finish() >> 1).to_string();
    let mut out: Vec<(String, String)> = vec![
        ("sked-job-id".into(), f.job_id.into()),
        ("sked-fire-id".into(), format!("{}@{ms}", f.job_id)),
        ("sked-app".into(), f.app.into()),
        ("sked-attempt".into(), f.attempts.to_string()),
        ("sked-due-at".into(), ms.clone()),
        ("sked-fired-at".into(), ms.clone()),
        (
            "traceparent".into(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        ),
    ];
    if let Some(n) = f.replay_count {
        out.push(("sked-replay-count".into(), n.to_string()));
    }
    out.extend([
        ("original-topic".into(), f.original_topic.into()),
        ("original-partition".into(), "0".into()),
        ("original-offset".into(), original_offset),
        ("error-message".into(), f.message.into()),
        ("error-timestamp".into(), ms),
        (
            "failed-at".into(),
            f.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
        ("error-reason".into(), f.reason.into()),
        ("sked-stage".into(), f.stage.into()),
        ("sked-reason".into(), f.reason.into()),
        ("sked-attempts".into(), f.attempts.to_string()),
        ("sked-app".into(), f.app.into()),
        ("sked-job-id".into(), f.job_id.into()),
    ]);
    out
}

/// One record to produce.
pub struct Record {
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Partition, or the producer's choice.
    pub partition: Option<i32>,
}

/// Produces `records` to `topic` concurrently and waits for every ack; returns (partition,
/// offset) of each, in order.
pub async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    records: &[Record],
) -> Vec<(i32, i64)> {
    let mut pending = Vec::with_capacity(records.len());
    for r in records {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(k) = &r.key {
            fr = fr.key(k);
        }
        if let Some(v) = &r.value {
            fr = fr.payload(v);
        }
        if let Some(p) = r.partition {
            fr = fr.partition(p);
        }
        pending.push(
            producer
                .send_result(fr)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    let mut out = Vec::with_capacity(pending.len());
    for d in pending {
        let d = d
            .await
            .expect("delivery future")
            .map_err(|(e, _)| e)
            .expect("produce");
        out.push((d.partition, d.offset));
    }
    out
}
