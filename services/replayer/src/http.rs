//! The DLQ API, used by `sked dlq ...`; its request and answer types are `sked_api::dlq`'s:
//!
//! | call | answer |
//! |---|---|
//! | `GET /v1/dlq?app&reason&stage&error&since&until&job_id&limit&order` | `{"letters": [...], "matched", "scanned", "order"}`: matching letters, `order=newest` (default: newest `error-timestamp` first) or `order=offset` (partition, offset); `limit` default 100, at most 10000 |
//! | `GET /v1/dlq/stats?<filters>` | `{"total", "by_app", "by_reason", "by_stage", "scanned"}` |
//! | `GET /v1/dlq/{partition}/{offset}` | one letter: summary, `headers` (map), `key`, `value` (`{"text": ...}` or `{"base64": ...}`) |
//! | `POST /v1/dlq/replays` | body: the filters plus `limit`, `dry_run`, `rate`, `target_topic`; starts a replay (202) or counts (dry run, 200); answers its progress |
//! | `GET /v1/dlq/replays/{id}` | a replay's progress |
//!
//! `since` / `until` are RFC 3339 or epoch ms, on `error-timestamp` (`until` exclusive);
//! `error` is a case-insensitive substring of `error-message`. Errors are
//! `{"error": {"code", "message"}}`: 400 `invalid_field`, 404 `not_found`, 503 `unavailable`
//! (Kafka or Redis), 500 `internal` (no internals in the body).

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::JsonRejection, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use sked_api::{
    ErrorDetail,
    dlq::{Counts, DEFAULT_LIMIT, DlqStats, LetterList, LetterQuery, MAX_LIMIT},
};
use tracing::warn;

use crate::{
    letter::{self, Letter, Matcher, TopN},
    replay::{self, Replays},
    scan::{self, Offsets, Scanner},
};

/// What handlers share.
#[derive(Clone)]
pub struct Api {
    /// Reads topics.
    pub scanner: Scanner,
    /// `topics.dlq`.
    pub dlq_topic: String,
    /// Replays.
    pub replays: Replays,
}

/// The router of the DLQ API.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/v1/dlq", get(list))
        .route("/v1/dlq/stats", get(stats))
        .route("/v1/dlq/replays", post(start_replay))
        .route("/v1/dlq/replays/{id}", get(replay_progress))
        .route("/v1/dlq/{partition}/{offset}", get(show))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .with_state(api)
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_field", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorDetail::new(self.code, self.message).into_body();
        (self.status, Json(body)).into_response()
    }
}

impl From<scan::Error> for ApiError {
    fn from(err: scan::Error) -> Self {
        warn!(error = %err, "reading kafka failed");
        match err {
            scan::Error::NoTopic(t) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("topic {t} not found"),
            ),
            _ => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "kafka is unavailable; retry later",
            ),
        }
    }
}

impl From<replay::Error> for ApiError {
    fn from(err: replay::Error) -> Self {
        match err {
            replay::Error::Invalid(m) => Self::invalid(m),
            replay::Error::NotFound(id) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("replay {id} not found"),
            ),
            replay::Error::Scan(e) => e.into(),
            replay::Error::Redis(e) => {
                warn!(error = %e, "redis call failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "redis is unavailable; retry later",
                )
            }
            other => {
                warn!(error = %other, "replay call failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

/// Calls `each` on every letter of the DLQ, read to the end now; returns how many were read.
async fn each_letter(api: &Api, mut each: impl FnMut(Letter)) -> Result<u64, ApiError> {
    let ends = api.scanner.unbounded(&api.dlq_topic).await?;
    let mut rx = api.scanner.read(&api.dlq_topic, &Offsets::new(), &ends);
    let mut scanned = 0;
    while let Some(msg) = rx.recv().await {
        scanned += 1;
        each(letter::of(&msg?));
    }
    Ok(scanned)
}

async fn list(
    State(api): State<Api>,
    query: Result<Query<LetterQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit: must be between 1 and {MAX_LIMIT}"
        )));
    }
    let matcher = Matcher::new(query.filter()).map_err(ApiError::invalid)?;
    let mut top = TopN::new(query.order, limit);
    let scanned = each_letter(&api, |l| {
        if matcher.matches(&l) {
            top.push(l);
        }
    })
    .await?;
    let matched = top.matched;
    Ok(Json(LetterList {
        letters: top.finish(),
        matched,
        scanned,
        order: query.order,
    })
    .into_response())
}

async fn stats(
    State(api): State<Api>,
    query: Result<Query<LetterQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let matcher = Matcher::new(query.filter()).map_err(ApiError::invalid)?;
    let mut counts = Counts::default();
    let scanned = each_letter(&api, |l| {
        if matcher.matches(&l) {
            counts.add(&l);
        }
    })
    .await?;
    Ok(Json(DlqStats { counts, scanned }).into_response())
}

async fn show(
    State(api): State<Api>,
    Path((partition, offset)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (Ok(partition), Ok(offset)) = (partition.parse::<i32>(), offset.parse::<i64>()) else {
        return Err(ApiError::invalid(
            "expected /v1/dlq/<partition>/<offset> with whole numbers",
        ));
    };
    match api.scanner.one(&api.dlq_topic, partition, offset).await? {
        Some(msg) => Ok(Json(letter::detail(&msg)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no dead letter at {partition}/{offset}"),
        )),
    }
}

async fn start_replay(
    State(api): State<Api>,
    body: Result<Json<replay::Request>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    let dry_run = req.dry_run;
    let progress = api.replays.start(req).await?;
    let status = if dry_run || progress.status == "done" {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(progress)).into_response())
}

async fn replay_progress(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("replay {id} not found"),
        ));
    }
    Ok(Json(api.replays.progress(&id).await?).into_response())
}
