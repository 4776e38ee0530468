//! `sked job ls|describe|trigger|update`, `sked ops ...`, `sked stats` against a canned
//! stand-in of the REST API on 127.0.0.1: query strings, bodies, headers, tables, cursor
//! following, confirmation and exit codes.

use std::{
    io::IsTerminal,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use sked_cli::{CliError, exit, run};

/// Every request the stand-in saw: method, path and query, If-Match, body.
type Seen = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

fn json(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

fn error(status: u16, code: &str, param: Option<&str>) -> Response {
    let param = param
        .map(|p| format!(r#","param":"{p}""#))
        .unwrap_or_default();
    json(
        StatusCode::from_u16(status).expect("status"),
        format!(r#"{{"error":{{"code":"{code}","message":"it went wrong"{param}}}}}"#),
    )
}

fn summary(id: &str, labels: &str) -> String {
    format!(
        r#"{{"id":"{id}","app":"sms","tenant":null,"state":"scheduled","kind":"cron","next_due":"2026-11-23T03:00:00Z","schedule":"cron 0 9 * * * Asia/Dhaka","labels":{labels},"paused":null}}"#
    )
}

async fn record(seen: &Seen, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
    let if_match = headers
        .get("if-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.lock().expect("lock").push((
        format!("{method} {uri}"),
        if_match,
        String::from_utf8_lossy(body).into_owned(),
    ));
}

async fn list(State(seen): State<Seen>, uri: Uri, RawQuery(q): RawQuery) -> Response {
    record(&seen, &Method::GET, &uri, &HeaderMap::new(), b"").await;
    let q = q.unwrap_or_default();
    if q.contains("cursor=c2") {
        json(
            StatusCode::OK,
            format!(r#"{{"jobs":[{}],"next_cursor":null}}"#, summary("b", "{}")),
        )
    } else if q.contains("app=fail") {
        error(400, "invalid_parameter", Some("limit"))
    } else {
        json(
            StatusCode::OK,
            format!(
                r#"{{"jobs":[{}],"next_cursor":"c2"}}"#,
                summary("a-long-id", r#"{"team":"pay","tier":"1"}"#)
            ),
        )
    }
}

const DESCRIPTION: &str = r#"{"id":"r1","app":"sms","tenant":null,"state":"scheduled","kind":"once","schedule":"once","labels":{},"next_due":"2026-11-23T03:00:00Z","etag":"e1","paused":null,"next":["2026-11-23T03:00:00Z"],"history":[],"counters":{},"run":null,"job":{"app":"sms"}}"#;

async fn describe(State(seen): State<Seen>, uri: Uri, Path(id): Path<String>) -> Response {
    record(&seen, &Method::GET, &uri, &HeaderMap::new(), b"").await;
    match id.as_str() {
        "r1" => json(StatusCode::OK, DESCRIPTION),
        "s400" => error(400, "invalid_parameter", Some("next")),
        "s409" => error(409, "conflict", None),
        "s412" => error(412, "precondition_failed", None),
        "s429" => error(429, "too_many_requests", None),
        "s503" => error(503, "unavailable", None),
        _ => error(404, "not_found", None),
    }
}

async fn replace(State(seen): State<Seen>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    record(&seen, &Method::PUT, &uri, &headers, &body).await;
    match headers.get("if-match").and_then(|v| v.to_str().ok()) {
        Some("e1") => json(
            StatusCode::OK,
            r#"{"id":"r1","status":"updated","due_at":"2026-11-24T03:00:00Z"}"#,
        ),
        _ => error(412, "precondition_failed", Some("If-Match")),
    }
}

async fn verb(State(seen): State<Seen>, uri: Uri, body: Bytes) -> Response {
    record(&seen, &Method::POST, &uri, &HeaderMap::new(), &body).await;
    json(
        StatusCode::OK,
        r#"{"id":"r1","status":"triggered","fire_ids":["r1@1800000000000"]}"#,
    )
}

fn operation(state: &str, dry_run: bool, processed: u64) -> String {
    format!(
        r#"{{"id":"op1","action":"cancel","selector":{{"app":"sms"}},"dry_run":{dry_run},"rate":null,"offset":null,"state":"{state}","estimate":3,"processed":{processed},"outcomes":{{"cancelled":{processed}}},"created_at":"2026-11-23T03:00:00Z","updated_at":"2026-11-23T03:00:00Z","finished_at":null,"history":[]}}"#
    )
}

async fn create_op(State(seen): State<Seen>, uri: Uri, body: Bytes) -> Response {
    record(&seen, &Method::POST, &uri, &HeaderMap::new(), &body).await;
    let text = String::from_utf8_lossy(&body);
    if text.contains(r#""dry_run":true"#) {
        json(StatusCode::OK, operation("succeeded", true, 0))
    } else {
        json(StatusCode::CREATED, operation("running", false, 1))
    }
}

async fn get_op(State(seen): State<Seen>, uri: Uri) -> Response {
    record(&seen, &Method::GET, &uri, &HeaderMap::new(), b"").await;
    json(StatusCode::OK, operation("succeeded", false, 3))
}

async fn serve() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/v1/jobs", get(list))
        .route("/v1/jobs/{id}", get(describe).put(replace))
        .route("/v1/jobs/{id}/trigger", post(verb))
        .route("/v1/operations", post(create_op))
        .route("/v1/operations/{id}", get(get_op))
        .route(
            "/v1/stats",
            get(|| async {
                json(
                    StatusCode::OK,
                    r#"{"pending":3,"by_state":{"scheduled":2,"paused":1},"by_app":{"sms":3},"by_tenant":{}}"#,
                )
            }),
        )
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

fn requests(seen: &Seen) -> Vec<(String, Option<String>, String)> {
    seen.lock().expect("lock").clone()
}

#[tokio::test]
async fn job_ls_prints_a_table_and_the_next_page_command() {
    let (api, seen) = serve().await;
    let out = sked(
        &api,
        &[
            "job",
            "ls",
            "--state",
            "scheduled,paused",
            "--app",
            "sms",
            "--label",
            "team=pay",
            "--label",
            "tier=1",
            "--kind",
            "cron",
            "--due-after",
            "2026-01-01T00:00:00Z",
            "--limit",
            "1",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        "ID         APP  TENANT  STATE      NEXT DUE              SCHEDULE                   LABELS\n\
         a-long-id  sms  -       scheduled  2026-11-23T03:00:00Z  cron 0 9 * * * Asia/Dhaka  team=pay,tier=1\n\
         next: sked job ls --state scheduled,paused --app sms --label team=pay --label tier=1 \
         --kind cron --due-after 2026-01-01T00:00:00Z --limit 1 --cursor c2\n"
    );
    let (path, _, _) = &requests(&seen)[0];
    assert_eq!(
        path,
        "GET /v1/jobs?state=scheduled%2Cpaused&app=sms&label=team%3Dpay&label=tier%3D1&kind=cron\
         &due_after=2026-01-01T00%3A00%3A00Z&limit=1"
    );
}

#[tokio::test]
async fn job_ls_all_follows_the_cursor_to_the_end() {
    let (api, seen) = serve().await;
    let out = sked(&api, &["job", "ls", "--all"]).await.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with("a-long-id ") && lines[2].starts_with("b "),
        "{out}"
    );
    let paths: Vec<String> = requests(&seen).into_iter().map(|r| r.0).collect();
    assert_eq!(paths, ["GET /v1/jobs", "GET /v1/jobs?cursor=c2"]);
    let json = sked(&api, &["job", "ls", "--all", "--json"]).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["jobs"].as_array().unwrap().len(), 2);
    assert!(v["next_cursor"].is_null());
}

#[tokio::test]
async fn job_ls_json_prints_the_page_unchanged() {
    let (api, _) = serve().await;
    let out = sked(&api, &["job", "ls", "--json"]).await.unwrap();
    assert!(out.starts_with(r#"{"jobs":[{"id":"a-long-id""#) && out.ends_with("\"c2\"}\n"));
}

#[tokio::test]
async fn bad_filters_and_selectors_are_usage_errors() {
    let (api, seen) = serve().await;
    for (args, want) in [
        (
            &["job", "ls", "--state", "asleep"][..],
            "unknown state `asleep`",
        ),
        (&["job", "ls", "--label", "team"], "expected key=value"),
        (&["job", "ls", "--limit", "0"], "0 is not in 1..=1000"),
        (&["job", "ls", "--due-before", "soon"], "RFC 3339"),
        (
            &[
                "ops",
                "create",
                "--action",
                "cancel",
                "--selector",
                "colour=red",
            ],
            "unknown key `colour`",
        ),
        (
            &["ops", "create", "--action", "cancel", "--selector", "sms"],
            "not a key=value term",
        ),
        (
            &[
                "ops",
                "create",
                "--action",
                "explode",
                "--selector",
                "app=sms",
            ],
            "unknown action",
        ),
        (
            &[
                "ops",
                "create",
                "--action",
                "reschedule",
                "--selector",
                "app=sms",
            ],
            "needs --offset",
        ),
        (
            &[
                "ops",
                "create",
                "--action",
                "pause",
                "--selector",
                "app=sms",
                "--offset",
                "+1h",
            ],
            "only to --action reschedule",
        ),
    ] {
        let err = sked(&api, args).await.unwrap_err();
        assert_eq!(err.code, exit::USAGE, "{args:?}: {err:?}");
        assert!(err.message.contains(want), "{args:?}: {}", err.message);
    }
    assert!(requests(&seen).is_empty(), "nothing was sent");
}

#[tokio::test]
async fn http_errors_map_to_exit_codes_with_one_line() {
    let (api, _) = serve().await;
    for (id, code, line) in [
        (
            "s400",
            exit::REJECTED,
            "sked: request rejected (invalid_parameter, next): it went wrong",
        ),
        ("nope", exit::NOT_FOUND, "sked: it went wrong"),
        (
            "s409",
            exit::CONFLICT,
            "sked: conflict (conflict): it went wrong",
        ),
        (
            "s412",
            exit::PRECONDITION_FAILED,
            "sked: precondition failed (precondition_failed): it went wrong",
        ),
        (
            "s429",
            exit::UNAVAILABLE,
            "sked: the sked API is unavailable (too_many_requests): it went wrong",
        ),
        (
            "s503",
            exit::UNAVAILABLE,
            "sked: the sked API is unavailable (unavailable): it went wrong",
        ),
    ] {
        let err = sked(&api, &["job", "describe", id]).await.unwrap_err();
        assert_eq!((err.code, err.line().as_str()), (code, line), "{id}");
    }
    let err = sked(&api, &["job", "ls", "--app", "fail"])
        .await
        .unwrap_err();
    assert_eq!(err.code, exit::REJECTED);
}

#[tokio::test]
async fn job_describe_asks_for_next_and_history() {
    let (api, seen) = serve().await;
    let out = sked(
        &api,
        &["job", "describe", "r1", "--next", "3", "--history", "2"],
    )
    .await
    .unwrap();
    assert!(
        out.contains("etag:     e1\n") && out.contains("next fires:\n  2026-11-23T03:00:00Z\n"),
        "{out}"
    );
    assert_eq!(requests(&seen)[0].0, "GET /v1/jobs/r1?next=3&history=2");
}

#[tokio::test]
async fn job_update_reads_the_etag_then_puts_with_if_match() {
    let (api, seen) = serve().await;
    let path = std::env::temp_dir().join(format!("sked-cli-update-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"app":"sms","delay":"1h"}"#).unwrap();
    let file = path.to_str().unwrap();
    let out = sked(&api, &["job", "update", "r1", "--file", file])
        .await
        .unwrap();
    assert_eq!(out, "updated job r1, due 2026-11-24T03:00:00Z\n");
    let seen_now = requests(&seen);
    assert_eq!(seen_now[0].0, "GET /v1/jobs/r1?next=0");
    assert_eq!(seen_now[1].0, "PUT /v1/jobs/r1");
    assert_eq!(seen_now[1].1.as_deref(), Some("e1"));
    assert_eq!(seen_now[1].2, r#"{"app":"sms","delay":"1h"}"#);
    let err = sked(
        &api,
        &["job", "update", "r1", "--file", file, "--if-match", "old"],
    )
    .await
    .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(err.code, exit::PRECONDITION_FAILED);
    assert!(
        err.message.contains("precondition_failed, If-Match"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn job_trigger_sends_a_key_and_prints_it() {
    let (api, seen) = serve().await;
    let out = sked(&api, &["job", "trigger", "r1", "--key", "k1"])
        .await
        .unwrap();
    assert_eq!(out, "triggered job r1: fire r1@1800000000000 (key k1)\n");
    assert_eq!(requests(&seen)[0].2, r#"{"key":"k1"}"#);
    let out = sked(&api, &["job", "trigger", "r1"]).await.unwrap();
    let body = &requests(&seen)[1].2;
    let key = body
        .strip_prefix(r#"{"key":""#)
        .and_then(|k| k.strip_suffix(r#""}"#))
        .unwrap();
    assert_eq!(key.len(), 36, "a uuid: {key}");
    assert!(out.contains(&format!("(key {key})")), "{out}");
}

#[tokio::test]
async fn destructive_ops_are_refused_without_yes_off_a_terminal() {
    if std::io::stdin().is_terminal() {
        return; // Someone could answer; the refusal is for scripts.
    }
    let (api, seen) = serve().await;
    let err = sked(
        &api,
        &[
            "ops",
            "create",
            "--action",
            "cancel",
            "--selector",
            "app=sms",
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, exit::NOT_CONFIRMED);
    assert_eq!(
        err.line(),
        "sked: refusing to cancel 3 jobs without --yes (stdin is not a terminal)"
    );
    let sent = requests(&seen);
    assert_eq!(sent.len(), 1, "only the dry run: {sent:?}");
    assert!(sent[0].2.contains(r#""dry_run":true"#), "{sent:?}");
}

#[tokio::test]
async fn ops_create_with_yes_and_wait_follows_to_the_end() {
    let (api, seen) = serve().await;
    let out = sked(
        &api,
        &[
            "ops",
            "create",
            "--action",
            "cancel",
            "--selector",
            "app=sms,state=scheduled",
            "--yes",
            "--wait",
            "--rate",
            "5",
        ],
    )
    .await
    .unwrap();
    assert!(
        out.contains("state:     succeeded\n") && out.contains("progress:  3/3\n"),
        "{out}"
    );
    let sent = requests(&seen);
    assert_eq!(sent[0].0, "POST /v1/operations");
    assert_eq!(
        sent[0].2,
        r#"{"action":"cancel","selector":{"state":"scheduled","app":"sms"},"dry_run":false,"rate":5}"#
    );
    assert_eq!(sent[1].0, "GET /v1/operations/op1");
}

#[tokio::test]
async fn stats_lists_counts_largest_first() {
    let (api, _) = serve().await;
    let out = sked(&api, &["stats"]).await.unwrap();
    assert_eq!(
        out,
        "pending: 3\nby state:\n  scheduled  2\n  paused     1\npending by app:\n  sms  3\npending by tenant:\n"
    );
}
