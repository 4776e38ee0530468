//! The REST API of ingest.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use reqwest::StatusCode;
use serde_json::Value;
use sked_e2e::{create_topics, http, ingest::Ingest, test_config, unique};

const FIDELITY: &str = r#"{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}"#;

async fn post(ingest: &Ingest, body: &str, idem: Option<&str>) -> (StatusCode, Value) {
    let mut req = http()
        .post(format!("{}/v1/jobs", ingest.api()))
        .body(body.to_owned());
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_submit_get_cancel_and_errors() {
    let ns = unique("rest");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config).await;

    let body = format!(
        r#"{{"id":"r-1","app":"sms","run_at":"2031-01-01T00:00:00Z","payload":{FIDELITY}}}"#
    );
    let (status, created) = post(&ingest, &body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "r-1");
    assert_eq!(created["due_at"], "2031-01-01T00:00:00Z");

    let (status, dup) = post(&ingest, &body, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dup["status"], "duplicate");

    let text = ingest.get_job_text("r-1").await.unwrap();
    assert!(text.contains(FIDELITY), "{text}");

    // Without an id: the Idempotency-Key header names the job, and dedupes.
    let anon = r#"{"app":"sms","delay":"10m"}"#;
    let (s1, first) = post(&ingest, anon, Some("client-key-1")).await;
    let (s2, second) = post(&ingest, anon, Some("client-key-1")).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first["id"], "client-key-1");
    assert_eq!(second["status"], "duplicate");

    // Without id or header: a fresh v7 UUID each time.
    let (s, fresh) = post(&ingest, anon, None).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(fresh["id"].as_str().unwrap().len(), 36);

    let (status, err) = post(&ingest, r#"{"app":"sms","run_at":"nope"}"#, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "invalid_time");
    assert!(err["error"]["message"].as_str().unwrap().contains("run_at"));

    let (status, err) = post(&ingest, "not json", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "invalid_json");

    let (status, err) = ingest.get_job("nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "not_found");

    let del = http()
        .delete(format!("{}/v1/jobs/r-1", ingest.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::OK);
    let (_, job) = ingest.get_job("r-1").await;
    assert_eq!(job["state"], "cancelled");
    let del = http()
        .delete(format!("{}/v1/jobs/missing", ingest.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NOT_FOUND);
    let body: Value = del.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    // A different spec under the same id replaces the job.
    let (status, updated) = post(
        &ingest,
        r#"{"id":"r-1","app":"sms","run_at":"2032-01-01T00:00:00Z"}"#,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["status"], "updated");
    let (_, job) = ingest.get_job("r-1").await;
    assert_eq!(job["state"], "scheduled");
    assert_eq!(job["next_due"], "2032-01-01T00:00:00Z");
    ingest.stop().await;
}
