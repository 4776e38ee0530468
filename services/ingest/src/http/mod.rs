//! The REST API of the ingest service: jobs, their verbs, app and tenant pauses, counts,
//! schedule previews and exclusion calendars.
//!
//! | call | module |
//! |---|---|
//! | `POST /v1/jobs`, `GET /v1/jobs`, `GET/PUT/DELETE /v1/jobs/{id}` | [`jobs`] |
//! | `POST /v1/jobs/{id}/pause`, `resume`, `trigger`, `backfill`, `reschedule` | [`verbs`] |
//! | `POST /v1/operations`, `GET /v1/operations`, `GET /v1/operations/{id}`, `POST /v1/operations/{id}/cancel` | [`ops`] |
//! | `POST /v1/schedules/preview` | [`preview`] |
//! | `GET /v1/calendars`, `GET/PUT/DELETE /v1/calendars/{name}` | [`calendars`] |
//! | `POST /v1/apps/{app}/pause`, `resume`, the same under `/v1/tenants/{tenant}`, `GET /v1/pauses`, `GET /v1/stats`, `GET /v1/openapi.json` | [`scopes`] |
//!
//! Same validation and same store as the Kafka path. Every error, 404, 405 and 413 included,
//! has the JSON body `{"error": {"code": "...", "message": "...", "param"?: "..."}}` (types in
//! `sked-api`); `code` is a `sked-reason` value for rejected requests. 5xx bodies never carry
//! internals.

pub use ops::selector_filter;

mod calendars;
mod convert;
mod jobs;
mod ops;
mod preview;
mod scopes;
mod verbs;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    http::{Method, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use sked_api::ErrorDetail;
use sked_core::{
    auth::{AuditNote, Confine, Gate, Principal, Rule},
    config::Scope,
    reason::Reason,
    request::{self, Limits},
    store::{self, Store, calendars::CalendarCache, fires::Refused},
};
use tracing::warn;

use crate::metrics::Metrics;

/// What handlers share.
#[derive(Clone)]
pub struct Api {
    /// The job store.
    pub store: Store,
    /// Request limits.
    pub limits: Arc<Limits>,
    /// Metrics.
    pub metrics: Metrics,
    /// Bulk operations.
    pub ops: crate::ops::Operations,
    /// Exclusion calendars (config and stored).
    pub calendars: CalendarCache,
    /// Submission quotas.
    pub quotas: crate::quota::Quotas,
    /// The figures of `GET /v1/cluster`.
    pub cluster: crate::cluster::View,
}

/// What each route needs: its scope, its audit action, whether it mutates.
pub fn rules(method: &Method, route: &str) -> Option<Rule> {
    use Scope::{Admin, JobsRead, JobsWrite, OpsWrite};
    let get = method == Method::GET;
    Some(match (route, method.as_str()) {
        ("/v1/jobs", "POST") => Rule::write(JobsWrite, "jobs.submit"),
        ("/v1/jobs", "GET") => Rule::read(JobsRead, "jobs.list"),
        ("/v1/jobs/{id}", "GET") => Rule::read(JobsRead, "jobs.describe"),
        ("/v1/jobs/{id}", "PUT") => Rule::write(JobsWrite, "jobs.replace"),
        ("/v1/jobs/{id}", "DELETE") => Rule::write(JobsWrite, "jobs.cancel"),
        ("/v1/jobs/{id}/pause", _) => Rule::write(JobsWrite, "jobs.pause"),
        ("/v1/jobs/{id}/resume", _) => Rule::write(JobsWrite, "jobs.resume"),
        ("/v1/jobs/{id}/trigger", _) => Rule::write(JobsWrite, "jobs.trigger"),
        ("/v1/jobs/{id}/backfill", _) => Rule::write(JobsWrite, "jobs.backfill"),
        ("/v1/jobs/{id}/reschedule", _) => Rule::write(JobsWrite, "jobs.reschedule"),
        ("/v1/apps/{name}/pause", _) => Rule::write(OpsWrite, "apps.pause"),
        ("/v1/apps/{name}/resume", _) => Rule::write(OpsWrite, "apps.resume"),
        ("/v1/tenants/{name}/pause", _) => Rule::write(OpsWrite, "tenants.pause"),
        ("/v1/tenants/{name}/resume", _) => Rule::write(OpsWrite, "tenants.resume"),
        ("/v1/operations", "POST") => Rule::write(OpsWrite, "operations.create"),
        ("/v1/operations", "GET") => Rule::read(JobsRead, "operations.list"),
        ("/v1/operations/{id}", _) => Rule::read(JobsRead, "operations.get"),
        ("/v1/operations/{id}/cancel", _) => Rule::write(OpsWrite, "operations.cancel"),
        ("/v1/pauses", _) => Rule::read(JobsRead, "pauses.list"),
        ("/v1/stats", _) => Rule::read(JobsRead, "stats"),
        ("/v1/whoami", _) => Rule::any("whoami"),
        ("/v1/cluster", _) => Rule::read(JobsRead, "cluster"),
        ("/v1/schedules/preview", _) => Rule::read(JobsRead, "schedules.preview"),
        ("/v1/calendars", _) => Rule::read(JobsRead, "calendars.list"),
        ("/v1/calendars/{name}", _) if get => Rule::read(JobsRead, "calendars.get"),
        ("/v1/calendars/{name}", "PUT") => Rule::write(Admin, "calendars.put"),
        ("/v1/calendars/{name}", "DELETE") => Rule::write(Admin, "calendars.delete"),
        ("/v1/openapi.json", _) => Rule::read(JobsRead, "openapi"),
        _ => return None,
    })
}

/// The router of the REST API, every route behind `gate` (auth, scopes, audit).
pub fn router(api: Api, gate: Gate) -> Router {
    // Let bodies a little over the limit through, so the request parser answers
    // `payload_too_large` with its message; larger ones get axum's 413, which
    // `json_errors` turns into the JSON shape. It is the outer layer but one, so it sees
    // every answer: routes, the gate's and the fallbacks'.
    let body_limit = api.limits.max_bytes.saturating_add(1024);
    Router::new()
        .route("/v1/jobs", post(jobs::submit).get(jobs::list))
        .route(
            "/v1/jobs/{id}",
            get(jobs::describe).put(jobs::replace).delete(jobs::cancel),
        )
        .route("/v1/jobs/{id}/pause", post(verbs::pause))
        .route("/v1/jobs/{id}/resume", post(verbs::resume))
        .route("/v1/jobs/{id}/trigger", post(verbs::trigger))
        .route("/v1/jobs/{id}/backfill", post(verbs::backfill))
        .route("/v1/jobs/{id}/reschedule", post(verbs::reschedule))
        .route("/v1/apps/{name}/pause", post(scopes::pause_app))
        .route("/v1/apps/{name}/resume", post(scopes::resume_app))
        .route("/v1/tenants/{name}/pause", post(scopes::pause_tenant))
        .route("/v1/tenants/{name}/resume", post(scopes::resume_tenant))
        .route("/v1/operations", post(ops::create).get(ops::list))
        .route("/v1/operations/{id}", get(ops::get))
        .route("/v1/operations/{id}/cancel", post(ops::cancel))
        .route("/v1/pauses", get(scopes::pauses))
        .route("/v1/stats", get(scopes::stats))
        .route("/v1/whoami", get(scopes::whoami))
        .route("/v1/cluster", get(scopes::cluster))
        .route("/v1/schedules/preview", post(preview::preview))
        .route("/v1/calendars", get(calendars::list))
        .route(
            "/v1/calendars/{name}",
            get(calendars::get)
                .put(calendars::put)
                .delete(calendars::delete),
        )
        .route("/v1/openapi.json", get(scopes::openapi))
        .route_layer(middleware::from_fn_with_state(gate, sked_core::auth::gate))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(middleware::from_fn_with_state(
            BODY_LIMIT,
            sked_core::api_errors::json_errors,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(api)
}

/// The body size limit, as the 413 message names it.
const BODY_LIMIT: &str = "the size limit (`limits.max_request_bytes`)";

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
    /// `Retry-After` seconds (429).
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            detail: ErrorDetail::new(code, message),
            retry_after: None,
        }
    }

    fn bad_param(param: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            detail: ErrorDetail::invalid_parameter(param, message),
            retry_after: None,
        }
    }

    fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<Confine> for ApiError {
    fn from(err: Confine) -> Self {
        match err {
            Confine::Foreign(_) => Self::new(StatusCode::FORBIDDEN, "forbidden", err.to_string()),
            Confine::Ambiguous(_) => Self::bad_param("tenant", err.to_string()),
        }
    }
}

impl From<ErrorDetail> for ApiError {
    fn from(detail: ErrorDetail) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            detail,
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.detail.into_body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::quota::Exceeded> for ApiError {
    fn from(err: crate::quota::Exceeded) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            Reason::QuotaExceeded.to_string(),
            err.to_string(),
        );
        e.retry_after = Some(err.retry_after().as_secs().max(1));
        e
    }
}

impl From<request::Error> for ApiError {
    fn from(err: request::Error) -> Self {
        let status = match err.reason {
            Reason::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, err.reason.to_string(), err.message)
    }
}

impl From<store::Error> for ApiError {
    fn from(err: store::Error) -> Self {
        warn!(error = %err, "store call failed");
        if let store::Error::UnknownKey { key_id, .. } = &err {
            // An operator's problem, named so it can be fixed: the key id is no secret.
            return Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unknown_encryption_key",
                format!(
                    "the job's payload is sealed with encryption key `{key_id}`, which is not configured (encryption.keys)"
                ),
            );
        }
        if err.is_transient() {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the job store is unavailable; retry later",
            )
        } else {
            Self::internal()
        }
    }
}

impl From<Refused> for ApiError {
    fn from(err: Refused) -> Self {
        match err {
            Refused::NotFound => Self::not_found("job"),
            Refused::Cancelled => Self::new(StatusCode::CONFLICT, "cancelled", err.to_string()),
            Refused::Finished(_) => {
                Self::new(StatusCode::CONFLICT, "already_dispatched", err.to_string())
            }
            Refused::WrongKind(_) => Self::new(StatusCode::CONFLICT, "wrong_kind", err.to_string()),
            Refused::Range(message) => Self::bad_param("to", message),
            Refused::Store(e) => e.into(),
        }
    }
}

/// A JSON body of type `T`, or `T::default()` for an empty body.
fn body_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    body_of(body)
}

/// A JSON body of type `T`.
fn body_of<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Reason::InvalidJson.to_string(),
            format!("request body: {message}"),
        )
    })
}

/// What a handler answers.
type Answer = Result<Response, ApiError>;

/// The authenticated caller, put into the request by the gate.
pub struct Caller(pub Arc<Principal>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .map(Caller)
            .ok_or_else(ApiError::internal)
    }
}

/// `answer` with `note` for its audit record.
fn audited(answer: Answer, note: AuditNote) -> Answer {
    answer.map(|mut response| {
        response.extensions_mut().insert(note);
        response
    })
}

fn ok<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    (status, Json(body)).into_response()
}
