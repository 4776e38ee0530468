//! The one JSON error shape (`{"error": {"code", "message"}}`) for the answers axum gives by
//! itself: a body over the limit (413), a bad header, an unsupported media type, a failed
//! extractor, a handler that panicked. Every sked HTTP API layers [`json_errors`] outside its
//! routes and fallbacks, so no error leaves as `text/plain` and no panic drops a connection.

use axum::{
    Json,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use futures::FutureExt;

use crate::reason::Reason;

/// Gives every error answer that is not JSON yet the JSON error shape, keeping its status and
/// headers, and a handler that panics the JSON 500 (logged, with the panic's message), where
/// hyper would drop the connection. `limit` names the body size limit in the 413 message, e.g.
/// "the size limit (`limits.max_request_bytes`)". Layer it with
/// `axum::middleware::from_fn_with_state(limit, json_errors)`.
pub async fn json_errors(State(limit): State<&'static str>, req: Request, next: Next) -> Response {
    let response = run_catching(req, next)
        .await
        .unwrap_or_else(|Panicked| StatusCode::INTERNAL_SERVER_ERROR.into_response());
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

/// A handler panicked (logged by [`run_catching`]).
#[derive(Debug)]
pub struct Panicked;

/// Runs the rest of a middleware stack, catching a panic in it: logged at error with the
/// method, path and the panic's message, then `Err(Panicked)` for the caller to answer 500 in
/// its own shape (JSON here, an HTML page in the console).
pub async fn run_catching(req: Request, next: Next) -> Result<Response, Panicked> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(response) => Ok(response),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%method, path, panic = what, "an HTTP handler panicked; answered 500");
            Err(Panicked)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, middleware::from_fn_with_state, routing::get};

    use super::*;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_the_json_500_and_the_server_goes_on() {
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(from_fn_with_state("the limit", json_errors));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        for _ in 0..2 {
            let res = client
                .get(format!("http://{addr}/boom"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
            assert_eq!(
                body,
                serde_json::json!({"error": {"code": "internal", "message": "internal error"}})
            );
        }
        let res = client
            .get(format!("http://{addr}/fine"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.text().await.unwrap(), "fine");
    }
}
