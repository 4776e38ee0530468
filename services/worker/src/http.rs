//! The built-in `http` handler: sends the raw payload to the app's URL and classifies the
//! answer (2xx success; 408, 429, 5xx, timeouts and connection errors transient; other 4xx
//! and 3xx permanent).

use std::sync::Arc;

use reqwest::{Method, StatusCode, header::HeaderMap};
use sked_core::{config::AppOptions, kafka::headers as h};

use crate::handler::{BoxFuture, Handler, HandlerError, Job};

/// The label a job names its own URL in, when its app sets `allow_job_url`.
pub const URL_LABEL: &str = "sked.url";

/// Why an app's `http` settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `apps.<name>.url` missing or not http(s).
    #[error("`apps.{app}.url`: {why}")]
    Url {
        /// App.
        app: String,
        /// What is wrong.
        why: String,
    },
    /// `apps.<name>.method` is not an HTTP method.
    #[error("`apps.{app}.method`: `{method}` is not an HTTP method")]
    Method {
        /// App.
        app: String,
        /// The value.
        method: String,
    },
    /// A header name or value is invalid.
    #[error("`apps.{app}.headers`: `{name}` is not a valid header")]
    Header {
        /// App.
        app: String,
        /// The header name.
        name: String,
    },
}

/// The `http` handler of one app.
#[derive(Clone)]
pub struct HttpHandler {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    url: String,
    method: Method,
    headers: HeaderMap,
    allow_job_url: bool,
}

impl HttpHandler {
    /// The handler of app `name`, sharing `client`.
    pub fn new(name: &str, app: &AppOptions, client: reqwest::Client) -> Result<Self, Error> {
        let url = app.url.clone().ok_or_else(|| Error::Url {
            app: name.to_owned(),
            why: "is required when handler = \"http\"".into(),
        })?;
        if !is_http_url(&url) {
            return Err(Error::Url {
                app: name.to_owned(),
                why: format!(
                    "`{}` is not an http:// or https:// URL",
                    sked_core::config::redact_url(&url)
                ),
            });
        }
        let method_text = app.method.clone().unwrap_or_else(|| "POST".into());
        let method =
            Method::from_bytes(method_text.to_ascii_uppercase().as_bytes()).map_err(|_| {
                Error::Method {
                    app: name.to_owned(),
                    method: method_text.clone(),
                }
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                url,
                method,
                headers: header_map(name, app)?,
                allow_job_url: app.allow_job_url,
            }),
        })
    }
}

/// `apps.<name>.headers`, then the values read from `apps.<name>.header_files`, which are
/// marked sensitive (kept out of reqwest's and hyper's debug output).
fn header_map(app: &str, options: &AppOptions) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    let plain = options.headers.iter().map(|(n, v)| (n, v.as_str(), false));
    let secret = options
        .header_secrets
        .iter()
        .map(|(n, v)| (n, v.expose(), true));
    for (name, value, sensitive) in plain.chain(secret) {
        let bad = || Error::Header {
            app: app.to_owned(),
            name: name.clone(),
        };
        let key = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| bad())?;
        value.set_sensitive(sensitive);
        map.insert(key, value);
    }
    Ok(map)
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

impl Handler for HttpHandler {
    fn handle(&self, job: Job) -> BoxFuture<Result<(), HandlerError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let url = match job.labels.get(URL_LABEL) {
                Some(url) if inner.allow_job_url => {
                    if !is_http_url(url) {
                        return Err(HandlerError::permanent(format!(
                            "label {URL_LABEL} is not an http(s) URL"
                        )));
                    }
                    url.clone()
                }
                _ => inner.url.clone(),
            };
            let response = inner
                .client
                .request(inner.method.clone(), &url)
                .headers(inner.headers.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(h::SKED_JOB_ID, &job.job_id)
                .header(h::SKED_FIRE_ID, &job.fire_id)
                .header(h::SKED_ATTEMPT, job.attempt.to_string())
                .header(h::TRACEPARENT, &job.traceparent)
                .timeout(job.timeout)
                .body(job.payload.as_bytes().to_vec())
                .send()
                .await
                .map_err(classify_error)?;
            classify_status(response.status())
        })
    }
}

/// Classifies an HTTP status: 2xx success; 408, 425, 429 and 5xx transient; the rest
/// permanent.
pub fn classify_status(status: StatusCode) -> Result<(), HandlerError> {
    if status.is_success() {
        return Ok(());
    }
    let message = format!("http status {}", status.as_u16());
    if status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY | StatusCode::TOO_MANY_REQUESTS
        )
    {
        Err(HandlerError::Transient(message))
    } else {
        Err(HandlerError::Permanent(message))
    }
}

/// Classifies a request that got no answer: a request that cannot be built is permanent,
/// everything else (timeouts, refused or reset connections) transient.
fn classify_error(err: reqwest::Error) -> HandlerError {
    // The message travels in `last-error`, dead letters and logs: never with the URL, which
    // may carry credentials.
    let err = err.without_url();
    let message = format!("http request failed: {}", error_chain(&err));
    if err.is_builder() {
        HandlerError::Permanent(message)
    } else {
        HandlerError::Transient(message)
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_success_transient_or_permanent() {
        assert_eq!(classify_status(StatusCode::OK), Ok(()));
        assert_eq!(classify_status(StatusCode::NO_CONTENT), Ok(()));
        for s in [429, 500, 502, 503, 504, 408] {
            let status = StatusCode::from_u16(s).unwrap();
            assert!(
                matches!(classify_status(status), Err(HandlerError::Transient(_))),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 410, 422, 301] {
            let status = StatusCode::from_u16(s).unwrap();
            assert!(
                matches!(classify_status(status), Err(HandlerError::Permanent(_))),
                "{s}"
            );
        }
    }

    #[test]
    fn http_apps_need_an_http_url_and_a_method() {
        let client = reqwest::Client::new();
        let mut app = AppOptions {
            handler: "http".into(),
            ..Default::default()
        };
        assert!(HttpHandler::new("a", &app, client.clone()).is_err());
        app.url = Some("ftp://x".into());
        assert!(HttpHandler::new("a", &app, client.clone()).is_err());
        app.url = Some("http://127.0.0.1:1/x".into());
        assert!(HttpHandler::new("a", &app, client.clone()).is_ok());
        app.method = Some("NOT A METHOD".into());
        assert!(HttpHandler::new("a", &app, client).is_err());
    }

    #[tokio::test]
    async fn connection_refused_is_transient() {
        let app = AppOptions {
            handler: "http".into(),
            url: Some("http://127.0.0.1:1/hook".into()),
            ..Default::default()
        };
        let handler = HttpHandler::new("a", &app, reqwest::Client::new()).unwrap();
        let job = Job {
            job_id: "j".into(),
            fire_id: "j@1".into(),
            app: "a".into(),
            attempt: 1,
            due_at: chrono::Utc::now(),
            payload: std::sync::Arc::from("{}"),
            labels: Default::default(),
            traceparent: "00-0-0-01".into(),
            timeout: std::time::Duration::from_secs(2),
        };
        assert!(matches!(
            handler.handle(job).await,
            Err(HandlerError::Transient(_))
        ));
    }
}
