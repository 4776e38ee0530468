//! The one JSON error shape (`{"error": {"code", "message"}}`) for the answers axum gives by
//! itself: a body over the limit (413), a bad header, an unsupported media type, a failed
//! extractor. Every sked HTTP API layers [`json_errors`] outside its routes and fallbacks, so
//! no error leaves as `text/plain`.

use axum::{
    Json,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::reason::Reason;

/// Gives every error answer that is not JSON yet the JSON error shape, keeping its status and
/// headers. `limit` names the body size limit in the 413 message, e.g. "the size limit
/// (`limits.max_request_bytes`)". Layer it with
/// `axum::middleware::from_fn_with_state(limit, json_errors)`.
pub async fn json_errors(State(limit): State<&'static str>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            Reason::PayloadTooLarge.to_string(),
            format!("request body is over {limit}"),
        ),
        s if s.is_server_error() => ("internal".to_owned(), "internal error".to_owned()),
        s => (
            "bad_request".to_owned(),
            format!(
                "the request was refused: {}",
                s.canonical_reason().unwrap_or("bad request").to_lowercase()
            ),
        ),
    };
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut out = (status, Json(body)).into_response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
