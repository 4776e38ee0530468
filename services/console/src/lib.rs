//! `sked-console`: the web console. A service of its own, server-rendered HTML with a little
//! JavaScript on top (live refresh, local times, theme), assets embedded in the binary.
//!
//! It holds no data and no credential of its own: a user signs in with an API token (a
//! static token or a JWT from the issuer of `auth.jwt`, pasted or obtained through the
//! OpenID Connect provider of `console.oidc`), which the console keeps in memory
//! for the session and sends, as the user's, to the public REST and DLQ APIs. So every page
//! shows what the token may see (a tenant-bound token, its tenants only), every action is
//! the API's, checked, refused (403) and audited there, and the action controls shown follow
//! the token's scopes.
//!
//! | path (under `console.path_prefix`) | page |
//! |---|---|
//! | `/` | overview: counts by state, app and tenant; pauses; dead letters; operations |
//! | `/jobs`, `/schedules` | list and search (the API's filters), cursor paging, act on selected rows |
//! | `/jobs/{id}` | detail: timeline, next and past fires, counters, payload, actions |
//! | `/jobs/new` | submit a job, or clone one (`?from=<id>`) |
//! | `/preview` | the next slots of an expression or interval |
//! | `/ops`, `/ops/{id}` | bulk operations by selector: dry run, run, progress, history |
//! | `/dlq`, `/dlq/{partition}/{offset}`, `/dlq/replays/{id}` | dead letters and replays |
//! | `/login`, `/logout` | sign in with a token, sign out |
//! | `/oidc/start`, `/oidc/callback` | sign in through the OpenID Connect provider of `console.oidc` |

pub mod api;
pub mod oidc;
pub mod pages;
pub mod session;
mod web;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use sked_core::{admin, config::Config, readiness::Readiness, supervise::Tasks};
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use web::router;

/// The console's drain deadline: it holds no work, so its listeners stop at once.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    /// The two APIs.
    pub api: api::Client,
    /// Signed-in users.
    pub sessions: session::Sessions,
    /// `console.path_prefix` ("" or `/sked`).
    pub prefix: Arc<str>,
    /// Whether the session cookie is `Secure`.
    pub secure_cookie: bool,
    /// Live refresh period in ms (0: off).
    pub refresh_ms: u64,
    /// Sign-in through the OpenID Connect provider of `console.oidc`, when set.
    pub oidc: Option<Arc<oidc::Oidc>>,
}

impl App {
    /// The console of `config.console`.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let c = &config.console;
        Ok(Self {
            api: api::Client::new(&c.api_url, &c.dlq_api_url)?,
            sessions: session::Sessions::new(c.session_idle.0, c.session_max.0),
            prefix: c.path_prefix.as_str().into(),
            secure_cookie: c.secure_cookie,
            refresh_ms: u64::try_from(c.refresh.0.as_millis()).unwrap_or(u64::MAX),
            oidc: match &c.oidc {
                Some(o) => Some(Arc::new(oidc::Oidc::new(o.clone())?)),
                None => None,
            },
        })
    }

    /// A path of the console (`/jobs` → `/sked/jobs`).
    pub fn href(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

/// A started console: its addresses, and [`Running::wait`] for the end of its drain.
pub struct Running {
    /// Where the console listens.
    pub addr: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    tasks: Tasks,
}

impl Running {
    /// Waits until `cancel` and the drain: open requests finish, then the listeners close.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.tasks.join().await
    }
}

/// Runs the console until `cancel` ([`start`], then [`Running::wait`]).
pub async fn run(config: Config, cancel: CancellationToken) -> anyhow::Result<()> {
    start(config, cancel).await?.wait().await
}

/// Starts the console: binds `console.listen_addr` (a taken port fails first), then the
/// admin endpoints (`/readyz` checks `api`: the REST API answers at all), then serves.
pub async fn start(config: Config, cancel: CancellationToken) -> anyhow::Result<Running> {
    let addr = config.console.listen_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on console.listen_addr {addr}"))?;
    let bound: SocketAddr = listener.local_addr()?;
    let readiness = Readiness::new(&["api", "not_draining"]);
    readiness.set("not_draining", true);
    let mut tasks = Tasks::supervised(cancel.clone(), readiness.clone(), DRAIN);
    let admin_addr = admin::serve(
        config.admin.listen_addr,
        Registry::default(),
        readiness.clone(),
        &mut tasks,
    )
    .await?;
    let app = App::new(&config)?;
    info!(%bound, %admin_addr, prefix = %app.prefix, "sked-console listening");

    let probe = app.api.clone();
    tasks.spawn("api_probe", {
        let (readiness, cancel) = (readiness.clone(), cancel.clone());
        async move {
            loop {
                readiness.set("api", probe.reachable().await);
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                }
            }
        }
    });
    let stop = cancel.clone();
    let drain = readiness.clone();
    tasks.spawn("http", async move {
        axum::serve(listener, router(app))
            .with_graceful_shutdown(async move {
                stop.cancelled().await;
                drain.set("not_draining", false);
            })
            .await
            .context("console listener failed")
    });
    Ok(Running {
        addr: bound,
        admin_addr,
        tasks,
    })
}
