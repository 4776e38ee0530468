//! The DLQ API, used by `sked dlq ...`; its request and answer types are `sked_api::dlq`'s:
//!
//! | call | answer |
//! |---|---|
//! | `GET /v1/dlq?app&reason&stage&error&since&until&job_id&limit&order` | `{"letters": [...], "matched", "scanned", "order", "index"}`: matching letters, `order=newest` (default: newest `error-timestamp` first) or `order=offset` (partition, offset); `limit` default 100, at most 10000 |
//! | `GET /v1/dlq/stats?<filters>` | `{"total", "by_app", "by_reason", "by_stage", "scanned", "index"}` |
//! | `GET /v1/dlq/{partition}/{offset}` | one letter: summary, `headers` (map), `key`, `value` (`{"text": ...}` or `{"base64": ...}`) |
//!
//! List and stats read the DLQ index ([`crate::index`]), not the topic; `index` says how
//! complete it is. Show finds the letter in the index and reads its record from the topic.
//! | `POST /v1/dlq/replays` | body: the filters plus `limit`, `dry_run`, `rate`, `target_topic`; starts a replay (202) or counts (dry run, 200); answers its progress |
//! | `GET /v1/dlq/replays/{id}` | a replay's progress |
//!
//! `since` / `until` are RFC 3339 or epoch ms, on `error-timestamp` (`until` exclusive);
//! `error` is a case-insensitive substring of `error-message`. Errors are
//! `{"error": {"code", "message"}}`: 400 `invalid_field`, 404 `not_found`, 413
//! `payload_too_large` (a body over [`BODY_LIMIT_BYTES`]), 503 `unavailable` (Kafka or
//! Redis), 500 `internal` (no internals in the body); the answers axum gives by itself have
//! the same shape ([`sked_core::api_errors`]).

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    extract::{
        DefaultBodyLimit, Path, Query, State, rejection::JsonRejection, rejection::QueryRejection,
    },
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use sked_api::{
    ErrorDetail,
    dlq::{
        DEFAULT_LIMIT, DEFAULT_REPLAYS, DlqStats, LetterList, LetterQuery, MAX_LIMIT,
        REPLAY_HISTORY, ReplayList, ReplayQuery,
    },
};
use sked_core::{
    auth::{AuditNote, Confine, Gate, Principal, Rule},
    config::Scope,
};
use tracing::warn;

use crate::{
    index::{self, DlqIndex},
    letter::{self, Matcher},
    replay::{self, Replays},
    scan::{self, Scanner},
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
    /// The DLQ index, which list, stats and show read.
    pub index: DlqIndex,
}

/// What each route needs: its scope, its audit action, whether it mutates.
pub fn rules(method: &Method, route: &str) -> Option<Rule> {
    Some(match (route, method.as_str()) {
        ("/v1/dlq", _) => Rule::read(Scope::DlqRead, "dlq.list"),
        ("/v1/dlq/stats", _) => Rule::read(Scope::DlqRead, "dlq.stats"),
        ("/v1/dlq/replays", "POST") => Rule::write(Scope::DlqReplay, "dlq.replay"),
        ("/v1/dlq/replays", _) => Rule::read(Scope::DlqRead, "dlq.replays"),
        ("/v1/dlq/replays/{id}", _) => Rule::read(Scope::DlqRead, "dlq.replay_progress"),
        ("/v1/dlq/{partition}/{offset}", _) => Rule::read(Scope::DlqRead, "dlq.show"),
        _ => return None,
    })
}

/// Largest request body: a replay request is filters and a few numbers.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The body size limit, as the 413 message names it.
const BODY_LIMIT: &str = "the size limit of the DLQ API (64 KiB)";

/// The router of the DLQ API, every route behind `gate` (auth, scopes, audit).
pub fn router(api: Api, gate: Gate) -> Router {
    Router::new()
        .route("/v1/dlq", get(list))
        .route("/v1/dlq/stats", get(stats))
        .route("/v1/dlq/replays", post(start_replay).get(list_replays))
        .route("/v1/dlq/replays/{id}", get(replay_progress))
        .route("/v1/dlq/{partition}/{offset}", get(show))
        .route_layer(axum::middleware::from_fn_with_state(
            gate,
            sked_core::auth::gate,
        ))
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
        .layer(axum::middleware::from_fn_with_state(
            BODY_LIMIT,
            sked_core::api_errors::json_errors,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(api)
}

/// The caller, put into the request by the gate.
fn caller(ext: &Extension<Arc<Principal>>) -> &Principal {
    &ext.0
}

/// The tenant a caller's filter is confined to (403 for another tenant, 400 when it acts
/// for several and names none).
fn confine(who: &Principal, tenant: Option<String>) -> Result<Option<String>, ApiError> {
    who.confine(tenant.as_deref()).map_err(|e| match e {
        Confine::Foreign(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
        Confine::Ambiguous(_) => ApiError::invalid(e.to_string()),
    })
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

impl From<JsonRejection> for ApiError {
    /// A body over the limit is 413 `payload_too_large`; any other bad body 400.
    fn from(err: JsonRejection) -> Self {
        if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is over {BODY_LIMIT}"),
            )
        } else {
            Self::invalid(err.body_text())
        }
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

impl From<index::Error> for ApiError {
    fn from(err: index::Error) -> Self {
        warn!(error = %err, "dlq index read failed");
        match err {
            index::Error::Redis(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "redis is unavailable; retry later",
            ),
            index::Error::Corrupt(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ),
        }
    }
}

async fn list(
    State(api): State<Api>,
    who: Extension<Arc<Principal>>,
    query: Result<Query<LetterQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(mut query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    query.tenant = confine(caller(&who), query.tenant.take())?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit: must be between 1 and {MAX_LIMIT}"
        )));
    }
    let matcher = Matcher::new(query.filter()).map_err(ApiError::invalid)?;
    let (letters, matched, scanned) = api.index.list(&matcher, query.order, limit).await?;
    Ok(Json(LetterList {
        letters,
        matched,
        scanned,
        order: query.order,
        index: Some(api.index.state().await?),
    })
    .into_response())
}

async fn stats(
    State(api): State<Api>,
    who: Extension<Arc<Principal>>,
    query: Result<Query<LetterQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(mut query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    query.tenant = confine(caller(&who), query.tenant.take())?;
    let matcher = Matcher::new(query.filter()).map_err(ApiError::invalid)?;
    let (counts, scanned) = api.index.stats(&matcher).await?;
    Ok(Json(DlqStats {
        counts,
        scanned,
        index: Some(api.index.state().await?),
    })
    .into_response())
}

async fn show(
    State(api): State<Api>,
    who: Extension<Arc<Principal>>,
    Path((partition, offset)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (Ok(partition), Ok(offset)) = (partition.parse::<i32>(), offset.parse::<i64>()) else {
        return Err(ApiError::invalid(
            "expected /v1/dlq/<partition>/<offset> with whole numbers",
        ));
    };
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no dead letter at {partition}/{offset}"),
        )
    };
    // The index says whether the letter exists and whose it is; only while it has not read
    // to the end of the topic may a letter it lacks still be there.
    let indexed = api.index.get(partition, offset).await?;
    match &indexed {
        Some(l) if !caller(&who).sees(l.tenant.as_deref()) => return Err(not_found()),
        None if api.index.state().await?.caught_up => return Err(not_found()),
        _ => {}
    }
    let seen =
        |msg: &rdkafka::message::OwnedMessage| caller(&who).sees(letter::of(msg).tenant.as_deref());
    match api
        .scanner
        .one(&api.dlq_topic, partition, offset)
        .await?
        .filter(seen)
    {
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
    who: Extension<Arc<Principal>>,
    body: Result<Json<replay::Request>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut req) = body?;
    req.tenant = confine(caller(&who), req.tenant.take())?;
    let dry_run = req.dry_run;
    let selector = serde_json::to_value(req.filter()).ok();
    let progress = api.replays.start(req).await?;
    let status = if dry_run || progress.status == "done" {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut response = (status, Json(&progress)).into_response();
    response.extensions_mut().insert(AuditNote {
        target: Some(progress.spec.id.clone()),
        selector,
        count: None,
    });
    Ok(response)
}

/// A replay of a tenant the caller does not act for is 404 to it, like one that does not exist.
async fn replay_progress(
    State(api): State<Api>,
    who: Extension<Arc<Principal>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("replay {id} not found"),
        )
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(not_found());
    }
    let progress = api.replays.progress(&id).await?;
    if !caller(&who).sees(progress.spec.filter.tenant.as_deref()) {
        return Err(not_found());
    }
    Ok(Json(progress).into_response())
}

/// The latest replays the caller may see (those of its tenants when it is bound to some).
async fn list_replays(
    State(api): State<Api>,
    who: Extension<Arc<Principal>>,
    query: Result<Query<ReplayQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_REPLAYS);
    if !(1..=REPLAY_HISTORY).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit: must be between 1 and {REPLAY_HISTORY}"
        )));
    }
    let who = caller(&who);
    let replays = api
        .replays
        .history(limit, |p| who.sees(p.spec.filter.tenant.as_deref()))
        .await?;
    Ok(Json(ReplayList { replays }).into_response())
}
