//! The REST API: `POST /v1/jobs`, `GET /v1/jobs/{id}`, `DELETE /v1/jobs/{id}`.
//!
//! Same validation and same store as the Kafka path. Every error has a JSON body
//! `{"error": {"code": "...", "message": "..."}}`; `code` is a `sked-reason` value for
//! rejected requests. 5xx bodies never carry internals.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sked_core::{
    job::JobId,
    request::{self, Limits, Origin},
    store::{self, Applied, Cancelled, JobRecord, Op, Store, runs::RunInfo},
};
use tracing::warn;

use crate::{consumer::outcome, metrics::Metrics};

/// What handlers share.
#[derive(Clone)]
pub struct Api {
    /// The job store.
    pub store: Store,
    /// Request limits.
    pub limits: Arc<Limits>,
    /// Metrics.
    pub metrics: Metrics,
}

/// The router of the REST API.
pub fn router(api: Api) -> Router {
    // Let bodies a little over the limit through, so the request parser answers
    // `payload_too_large` in sked's JSON shape rather than axum's plain text.
    let body_limit = api.limits.max_bytes.saturating_add(1024);
    Router::new()
        .route("/v1/jobs", post(submit))
        .route("/v1/jobs/{id}", get(fetch).delete(cancel))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(api)
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<request::Error> for ApiError {
    fn from(err: request::Error) -> Self {
        let status = match err.reason {
            sked_core::reason::Reason::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, err.reason.to_string(), err.message)
    }
}

impl From<store::Error> for ApiError {
    fn from(err: store::Error) -> Self {
        warn!(error = %err, "store call failed");
        if err.is_transient() {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the job store is unavailable; retry later",
            )
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}

#[derive(Serialize)]
struct Submitted {
    id: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    due_at: Option<DateTime<Utc>>,
}

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

async fn submit(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let header_key = match headers.get(IDEMPOTENCY_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "header Idempotency-Key must be non-empty visible ASCII",
            ));
        }
    };
    // Without an id in the body: the Idempotency-Key header, else a new time-ordered UUID.
    let fallback = match &header_key {
        Some(key) => JobId::parse(key).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                format!("header Idempotency-Key: {e}"),
            )
        })?,
        None => JobId::new_v7(),
    };
    let origin = Origin {
        now: Utc::now(),
        fallback_id: Some(fallback),
    };
    let mut spec = request::parse(&body, &api.limits, &origin)?;
    if spec.idempotency_key.is_none() {
        spec.idempotency_key = header_key;
    }
    let span = tracing::info_span!(
        "submit",
        otel.name = "POST /v1/jobs",
        otel.kind = "server",
        sked.job.id = %spec.id,
    );
    let incoming = headers
        .get(sked_core::kafka::headers::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    sked_core::trace::set_parent(&span, incoming);
    spec.traceparent = sked_core::trace::traceparent(&span).or_else(|| incoming.map(str::to_owned));
    let id = spec.id.to_string();
    let due_at = spec.first_due;
    let applied = api.store.apply(&[Op::insert(spec, &body)]).await?;
    let applied = applied.into_iter().next().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })?;
    api.metrics.stored(outcome(&applied), "http");
    let (status, body) = match applied {
        Applied::Created => (
            StatusCode::CREATED,
            Submitted {
                id,
                status: "created",
                due_at: Some(due_at),
            },
        ),
        Applied::Updated => (
            StatusCode::OK,
            Submitted {
                id,
                status: "updated",
                due_at: Some(due_at),
            },
        ),
        Applied::Duplicate { existing } => (
            StatusCode::OK,
            Submitted {
                id: existing.to_string(),
                status: "duplicate",
                due_at: None,
            },
        ),
        Applied::Cancel(_) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ));
        }
    };
    Ok((status, Json(body)).into_response())
}

fn parse_id(raw: &str) -> Result<JobId, ApiError> {
    JobId::parse(raw)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_id", e.to_string()))
}

/// `GET /v1/jobs/{id}` body.
#[derive(Serialize)]
struct JobView {
    id: String,
    state: &'static str,
    next_due: Option<DateTime<Utc>>,
    job: request::JobSpec,
    /// The latest run by a worker (`null` when none within `redis.idempotency_ttl`).
    run: Option<RunInfo>,
}

impl JobView {
    fn new(record: JobRecord, run: Option<RunInfo>) -> Self {
        Self {
            id: record.spec.id.to_string(),
            state: record.state.into(),
            next_due: record.next_due,
            job: record.spec,
            run,
        }
    }
}

async fn fetch(State(api): State<Api>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    match api.store.get(&id).await? {
        Some(record) => {
            let run = api.store.run_info(&id).await?;
            Ok(Json(JobView::new(record, run)).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("job {id} not found"),
        )),
    }
}

async fn cancel(State(api): State<Api>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let result = api.store.cancel(&id).await?;
    api.metrics.stored(result.into(), "http");
    match result {
        Cancelled::Cancelled | Cancelled::AlreadyCancelled => {
            let status: &'static str = result.into();
            Ok(Json(serde_json::json!({ "id": id.as_str(), "status": status })).into_response())
        }
        Cancelled::NotFound => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("job {id} not found"),
        )),
        Cancelled::Dispatched | Cancelled::Finished => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_dispatched",
            format!("job {id} has no pending fire left to cancel ({result})"),
        )),
    }
}
