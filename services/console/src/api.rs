//! The console's only way to sked: the public REST API (ingest) and the DLQ API (replayer),
//! called with the signed-in user's bearer token. Whatever a page shows or does, a script with
//! the same token can show or do.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use sked_api::ErrorBody;

/// Which API a call goes to.
#[derive(Debug, Clone, Copy)]
pub enum Api {
    /// The REST API of the ingest service (`console.api_url`).
    Rest,
    /// The DLQ API of the replayer (`console.dlq_api_url`).
    Dlq,
}

/// A refused or failed call, as the page shows it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The HTTP status to answer with (the API's, or 502 when it could not be reached).
    pub status: StatusCode,
    /// The API's error code (`forbidden`, `not_found`, `invalid_parameter`, ...).
    pub code: String,
    /// The API's message.
    pub message: String,
    /// The parameter at fault, if the API named one.
    pub param: Option<String>,
}

impl Failure {
    fn unreachable(api: Api, err: reqwest::Error) -> Self {
        // reqwest's Display names the URL (no credentials are in it) and the cause; the
        // token travels in a header, which it never prints.
        let what = match api {
            Api::Rest => "the REST API (console.api_url)",
            Api::Dlq => "the DLQ API (console.dlq_api_url)",
        };
        Self {
            status: StatusCode::BAD_GATEWAY,
            code: "unavailable".into(),
            message: format!("cannot reach {what}: {}", err.without_url()),
            param: None,
        }
    }

    /// A failure made by the console itself.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            param: None,
        }
    }
}

/// The HTTP client of both APIs.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    rest: String,
    dlq: String,
}

impl Client {
    /// A client of the APIs at these base URLs.
    pub fn new(rest: &str, dlq: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            rest: rest.trim_end_matches('/').to_owned(),
            dlq: dlq.trim_end_matches('/').to_owned(),
        })
    }

    /// Whether the REST API answers at all (any HTTP status counts).
    pub async fn reachable(&self) -> bool {
        self.http
            .get(format!("{}/v1/whoami", self.rest))
            .send()
            .await
            .is_ok()
    }

    /// `GET path` (with its query) and decode the answer.
    pub async fn get<T: DeserializeOwned>(
        &self,
        api: Api,
        token: &str,
        path: &str,
    ) -> Result<T, Failure> {
        self.call(api, Method::GET, token, path, None::<&()>, &[])
            .await
    }

    /// `method path` with a JSON body (or none) and extra headers; decode the answer.
    pub async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        api: Api,
        method: Method,
        token: &str,
        path: &str,
        body: Option<&B>,
        headers: &[(&str, &str)],
    ) -> Result<T, Failure> {
        let base = match api {
            Api::Rest => &self.rest,
            Api::Dlq => &self.dlq,
        };
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let answer = req.send().await.map_err(|e| Failure::unreachable(api, e))?;
        let status = answer.status();
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| Failure::unreachable(api, e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::new(
                    StatusCode::BAD_GATEWAY,
                    "bad_answer",
                    format!("the API's answer could not be read: {e}"),
                )
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Failure {
                status,
                code: body.error.code,
                message: body.error.message,
                param: body.error.param,
            },
            Err(_) => Failure::new(status, "error", format!("the API answered {status}")),
        })
    }
}

/// A query string (`?a=1&b=2`, or empty) of the non-empty pairs.
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if !v.trim().is_empty() {
            out.append_pair(k, v.trim());
            any = true;
        }
    }
    if any {
        format!("?{}", out.finish())
    } else {
        String::new()
    }
}

/// A path segment, percent-encoded (job ids are checked by the API, never trusted here).
pub fn seg(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
