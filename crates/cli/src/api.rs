//! A small client of the sked REST API (`/v1/jobs...`, `/v1/apps...`, `/v1/tenants...`,
//! `/v1/pauses`, `/v1/stats`, `/v1/operations...`) and of the replayer's DLQ API
//! (`/v1/dlq...`). The bodies are `sked_api` types.
//!
//! Every call returns the body of a 2xx answer as text, unchanged (what `--json` prints), or
//! an [`Error`] already classified by exit code; [`decode`] reads a body as its `sked_api`
//! type.

use std::time::Duration;

use reqwest::{Method, Url, header};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{self, Error, exit};

/// The header that makes a submission idempotent.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The header that makes `PUT /v1/jobs/{id}` conditional on the job's etag.
pub const IF_MATCH_HEADER: &str = "If-Match";

/// A 2xx body read as its `sked_api` type; a body of another shape is an [`Error`] (exit 1).
pub fn decode<T: DeserializeOwned>(body: &str) -> Result<T, Error> {
    serde_json::from_str(body).map_err(|e| {
        Error::new(
            exit::FAILURE,
            format!("unexpected answer from the sked API: {e}"),
        )
    })
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, unchanged.
    pub body: String,
}

/// A client bound to one API base URL.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
}

impl Client {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:8080`, a path prefix is kept);
    /// each call gives up after `timeout`, and sends `token` as its bearer token.
    pub fn new(base: Url, timeout: Duration, token: Option<&str>) -> Result<Self, Error> {
        let mut headers = header::HeaderMap::new();
        if let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) {
            let mut value = header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| Error::new(exit::USAGE, "--token / SKED_TOKEN: not visible ASCII"))?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .user_agent(concat!("sked-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::new(exit::FAILURE, format!("cannot set up the HTTP client: {e}"))
            })?;
        Ok(Self { base, http })
    }

    /// `POST /v1/jobs` with `body` as the request, and the `Idempotency-Key` header if given.
    pub async fn submit(
        &self,
        body: Vec<u8>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, Error> {
        let mut request = self
            .http
            .request(Method::POST, self.url(&["v1", "jobs"])?)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_HEADER, key);
        }
        self.send(request).await
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn get(&self, id: &str) -> Result<Answer, Error> {
        self.send(self.http.get(self.url(&["v1", "jobs", id])?))
            .await
    }

    /// `DELETE /v1/jobs/{id}`.
    pub async fn cancel(&self, id: &str) -> Result<Answer, Error> {
        self.send(self.http.delete(self.url(&["v1", "jobs", id])?))
            .await
    }

    /// `GET` of `segments` with query pairs (pairs with `None` are left out).
    pub async fn get_with(
        &self,
        segments: &[&str],
        query: &[(&str, Option<String>)],
    ) -> Result<Answer, Error> {
        let mut url = self.url(segments)?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                if let Some(v) = v {
                    pairs.append_pair(k, v);
                }
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.send(self.http.get(url)).await
    }

    /// `POST` of a JSON body to `segments`.
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<Answer, Error> {
        self.send(self.http.post(self.url(segments)?).json(body))
            .await
    }

    /// `POST` without a body to `segments` (the verbs that take none, e.g. `resume`).
    pub async fn post_empty(&self, segments: &[&str]) -> Result<Answer, Error> {
        self.send(self.http.post(self.url(segments)?)).await
    }

    /// `GET` of `segments` with a raw query string (`a=1&b=2`, already encoded; empty for
    /// none).
    pub async fn get_query(&self, segments: &[&str], query: &str) -> Result<Answer, Error> {
        let mut url = self.url(segments)?;
        url.set_query((!query.is_empty()).then_some(query));
        self.send(self.http.get(url)).await
    }

    /// `PUT /v1/jobs/{id}` with `body` as the request and `If-Match: <etag>`.
    pub async fn replace(&self, id: &str, body: Vec<u8>, etag: &str) -> Result<Answer, Error> {
        let request = self
            .http
            .put(self.url(&["v1", "jobs", id])?)
            .header(header::CONTENT_TYPE, "application/json")
            .header(IF_MATCH_HEADER, etag)
            .body(body);
        self.send(request).await
    }

    /// The base URL with `segments` appended, each percent-encoded (an id may hold `/`).
    fn url(&self, segments: &[&str]) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| Error::new(exit::USAGE, format!("--api {}: not a base URL", self.base)))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, Error> {
        let response = request
            .send()
            .await
            .map_err(|e| error::from_transport(&self.base, &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| error::from_transport(&self.base, &e))?;
        if !status.is_success() {
            return Err(error::from_response(status, &body));
        }
        let body = String::from_utf8(body.to_vec()).map_err(|_| {
            Error::new(
                exit::FAILURE,
                format!(
                    "unexpected answer from the sked API (HTTP {}): not UTF-8",
                    status.as_u16()
                ),
            )
        })?;
        Ok(Answer {
            status: status.as_u16(),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(Url::parse(base).unwrap(), Duration::from_secs(1), None).unwrap()
    }

    #[test]
    fn urls_keep_the_prefix_and_encode_ids() {
        let c = client("http://127.0.0.1:8080");
        assert_eq!(
            c.url(&["v1", "jobs"]).unwrap().as_str(),
            "http://127.0.0.1:8080/v1/jobs"
        );
        let c = client("https://sked.example/api/?x=1#f");
        assert_eq!(
            c.url(&["v1", "jobs", "a/b c?d"]).unwrap().as_str(),
            "https://sked.example/api/v1/jobs/a%2Fb%20c%3Fd"
        );
    }
}
