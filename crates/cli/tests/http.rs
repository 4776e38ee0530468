//! The full request/response path of `sked job ...` against a canned stand-in of sked's own
//! REST API on 127.0.0.1 (no Kafka, no Redis): URLs, headers, bodies, output, exit codes.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use sked_cli::{CliError, exit, run};

const PAYLOAD: &str = r#"{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}"#;

/// What the stand-in received on `POST /v1/jobs`: the idempotency header and the body.
type Seen = Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>;

fn job_body(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","state":"pending","next_due":"2026-11-23T04:00:00Z","job":{{"id":"{id}","app":"sms","idempotency_key":null,"payload":{PAYLOAD},"schedule":{{"kind":"once","at":"2026-11-23T04:00:00Z"}},"first_due":"2026-11-23T04:00:00Z","priority":"normal","timeout_ms":null,"retry":null,"labels":{{}},"format":"native"}}}}"#
    )
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn not_found(id: &str) -> Response {
    json(
        StatusCode::NOT_FOUND,
        format!(r#"{{"error":{{"code":"not_found","message":"job {id} not found"}}}}"#),
    )
}

async fn fetch(Path(id): Path<String>) -> Response {
    match id.as_str() {
        "r1" | "a/b" => json(StatusCode::OK, job_body(&id)),
        "garbled" => json(StatusCode::OK, "{\"id\":".to_owned()),
        "down" => (StatusCode::SERVICE_UNAVAILABLE, "upstream connect error\n").into_response(),
        _ => not_found(&id),
    }
}

async fn cancel(Path(id): Path<String>) -> Response {
    match id.as_str() {
        "r1" => json(StatusCode::OK, r#"{"id":"r1","status":"cancelled"}"#.to_owned()),
        "gone" => json(
            StatusCode::CONFLICT,
            r#"{"error":{"code":"already_dispatched","message":"job gone has no pending fire left to cancel (dispatched)"}}"#
                .to_owned(),
        ),
        _ => not_found(&id),
    }
}

async fn submit(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.lock()
        .expect("lock")
        .push((key.clone(), body.to_vec()));
    if body.starts_with(b"{\"appName\"") {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"code":"invalid_time","message":"field scheduledTime: missing"}}"#
                .to_owned(),
        );
    }
    match key.as_deref() {
        Some("again") => json(
            StatusCode::OK,
            r#"{"id":"first","status":"duplicate"}"#.to_owned(),
        ),
        _ => json(
            StatusCode::CREATED,
            r#"{"id":"new-1","status":"created","due_at":"2026-11-23T04:00:00Z"}"#.to_owned(),
        ),
    }
}

/// Serves the stand-in on an ephemeral port; returns its base URL.
async fn serve() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/v1/jobs", post(submit))
        .route("/v1/jobs/{id}", get(fetch).delete(cancel))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr: SocketAddr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), seen)
}

async fn sked(api: &str, args: &[&str]) -> Result<String, CliError> {
    run(["sked", "--api", api]
        .into_iter()
        .chain(args.iter().copied()))
    .await
}

#[tokio::test]
async fn job_get_prints_aligned_lines_with_the_raw_payload() {
    let (api, _) = serve().await;
    let out = sked(&api, &["job", "get", "r1"]).await.unwrap();
    assert_eq!(
        out,
        format!(
            "id:       r1\napp:      sms\nstate:    pending\nnext due: 2026-11-23T04:00:00Z\n\
             schedule: once at 2026-11-23T04:00:00Z\nrun:      none yet\npayload:  {PAYLOAD}\n"
        )
    );
}

#[tokio::test]
async fn job_get_json_prints_the_server_body_unchanged() {
    let (api, _) = serve().await;
    let out = sked(&api, &["job", "get", "r1", "--json"]).await.unwrap();
    assert_eq!(out, job_body("r1") + "\n");
}

#[tokio::test]
async fn job_get_encodes_the_id_in_the_path() {
    let (api, _) = serve().await;
    let out = sked(&format!("{api}/"), &["job", "get", "a/b"])
        .await
        .unwrap();
    assert!(out.starts_with("id:       a/b\n"), "{out}");
}

#[tokio::test]
async fn job_get_missing_is_not_found() {
    let (api, _) = serve().await;
    let err = sked(&api, &["job", "get", "foo"]).await.unwrap_err();
    assert_eq!(err.code, exit::NOT_FOUND);
    assert_eq!(err.line(), "sked: job foo not found");
}

#[tokio::test]
async fn job_get_survives_odd_answers() {
    let (api, _) = serve().await;
    let err = sked(&api, &["job", "get", "garbled"]).await.unwrap_err();
    assert_eq!(err.code, exit::FAILURE);
    assert!(
        err.message
            .starts_with("unexpected answer from the sked API: "),
        "{}",
        err.message
    );
    let err = sked(&api, &["job", "get", "down"]).await.unwrap_err();
    assert_eq!(err.code, exit::UNAVAILABLE);
    assert_eq!(
        err.message,
        "the sked API is unavailable (HTTP 503): upstream connect error"
    );
}

#[tokio::test]
async fn submit_sends_the_raw_payload_and_the_idempotency_header() {
    let (api, seen) = serve().await;
    let out = sked(
        &api,
        &[
            "job",
            "submit",
            "--app",
            "sms",
            "--delay",
            "15m",
            "--payload",
            PAYLOAD,
            "--idempotency-key",
            "k1",
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, "created job new-1, due 2026-11-23T04:00:00Z\n");
    let out = sked(
        &api,
        &[
            "job",
            "submit",
            "--app",
            "sms",
            "--every",
            "1h",
            "--idempotency-key",
            "again",
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, "duplicate of job first\n");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].0.as_deref(), Some("k1"));
    assert_eq!(
        String::from_utf8(seen[0].1.clone()).unwrap(),
        format!(r#"{{"app":"sms","delay":"15m","payload":{PAYLOAD}}}"#)
    );
}

#[tokio::test]
async fn submit_from_file_reports_rejection() {
    let (api, seen) = serve().await;
    let path = std::env::temp_dir().join(format!("sked-cli-http-{}.json", std::process::id()));
    let request = format!("{{\"appName\": \"sms\", \"jobData\": {PAYLOAD}}}");
    std::fs::write(&path, &request).unwrap();
    let result = sked(&api, &["job", "submit", "--file", path.to_str().unwrap()]).await;
    std::fs::remove_file(&path).unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.code, exit::REJECTED);
    assert_eq!(
        err.line(),
        "sked: request rejected (invalid_time): field scheduledTime: missing"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        (seen[0].0.as_deref(), seen[0].1.as_slice()),
        (None, request.as_bytes())
    );
}

#[tokio::test]
async fn cancel_reports_done_missing_and_conflict() {
    let (api, _) = serve().await;
    assert_eq!(
        sked(&api, &["job", "cancel", "r1"]).await.unwrap(),
        "cancelled job r1\n"
    );
    assert_eq!(
        sked(&api, &["job", "cancel", "r1", "--json"])
            .await
            .unwrap(),
        "{\"id\":\"r1\",\"status\":\"cancelled\"}\n"
    );
    assert_eq!(
        sked(&api, &["job", "cancel", "nope"])
            .await
            .unwrap_err()
            .code,
        exit::NOT_FOUND
    );
    let err = sked(&api, &["job", "cancel", "gone"]).await.unwrap_err();
    assert_eq!(err.code, exit::CONFLICT);
    assert_eq!(
        err.message,
        "conflict (already_dispatched): job gone has no pending fire left to cancel (dispatched)"
    );
}

#[tokio::test]
async fn unreachable_api_exits_69() {
    // A port that was just free: nothing listens on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    let api = format!("http://{addr}");
    let err = sked(&api, &["job", "get", "r1"]).await.unwrap_err();
    assert_eq!(err.code, exit::UNAVAILABLE);
    assert_eq!(
        err.line(),
        format!("sked: cannot reach the sked API at {api}: connection refused")
    );
}

#[tokio::test]
async fn usage_errors_exit_2_on_one_line() {
    let err = run(["sked", "job", "submit", "--app", "sms"])
        .await
        .unwrap_err();
    assert_eq!(err.code, exit::USAGE);
    assert!(
        err.message
            .starts_with("the following required arguments were not provided: <--file"),
        "{}",
        err.message
    );
    let help = run(["sked", "--help"]).await.unwrap();
    assert!(help.contains("Exit codes:"), "{help}");
}

#[tokio::test]
async fn the_binary_prints_one_stderr_line_and_exits_with_the_code() {
    let (api, _) = serve().await;
    let bin = env!("CARGO_BIN_EXE_sked");
    let output = tokio::process::Command::new(bin)
        .args(["job", "get", "foo"])
        .env("SKED_API_URL", &api)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(i32::from(exit::NOT_FOUND)));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "sked: job foo not found\n"
    );
    assert!(output.stdout.is_empty());

    let output = tokio::process::Command::new(bin)
        .args(["--api", &api, "job", "get", "r1", "--json"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        job_body("r1") + "\n"
    );
}
