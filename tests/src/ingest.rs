//! An ingest service started in-process, as the tests drive it.

use std::{net::SocketAddr, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;
use sked_core::config::Config;
use tokio_util::sync::CancellationToken;

/// A running in-process ingest service.
pub struct Ingest {
    /// REST address.
    pub http: SocketAddr,
    /// Admin address.
    pub admin: SocketAddr,
    run: crate::InProcess,
}

impl Ingest {
    /// Starts one with `config`.
    pub async fn start(config: Config) -> Self {
        let cancel = CancellationToken::new();
        let running = sked_ingest::start(config, cancel.clone())
            .await
            .expect("start ingest");
        let (http, admin) = (running.http_addr, running.admin_addr);
        let run = crate::InProcess::spawn("ingest", cancel.clone(), running.wait());
        Self { http, admin, run }
    }

    /// SIGTERM-equivalent: cancels and waits for the drain.
    pub async fn stop(self) {
        self.run.stop().await;
    }

    /// Base URL of the REST API.
    pub fn api(&self) -> String {
        format!("http://{}", self.http)
    }

    /// `GET /v1/jobs/{id}`: status and JSON body.
    pub async fn get_job(&self, id: &str) -> (StatusCode, Value) {
        let resp = crate::http()
            .get(format!("{}/v1/jobs/{id}", self.api()))
            .send()
            .await
            .expect("GET job");
        let status = resp.status();
        (status, resp.json().await.expect("json body"))
    }

    /// Waits until the latest run of job `id` is in `state` (`succeeded`, `dead`, ...).
    pub async fn wait_run_state(&self, id: &str, state: &str, timeout: Duration) {
        crate::eventually(timeout, &format!("{id} {state}"), || async {
            let (_, job) = self.get_job(id).await;
            (job["run"]["state"] == state).then_some(())
        })
        .await;
    }

    /// `GET /v1/jobs/{id}` raw text, when 200.
    pub async fn get_job_text(&self, id: &str) -> Option<String> {
        let resp = crate::http()
            .get(format!("{}/v1/jobs/{id}", self.api()))
            .send()
            .await
            .expect("GET job");
        (resp.status() == StatusCode::OK).then_some(())?;
        Some(resp.text().await.expect("body"))
    }

    /// Status of `/readyz`.
    pub async fn readyz(&self) -> StatusCode {
        crate::http()
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .expect("readyz")
            .status()
    }
}
