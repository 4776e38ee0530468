//! The middleware in front of every API route: authenticate, check the route's scope, run the
//! handler with the [`Principal`] as a request extension, audit a mutating call.
//!
//! Installed with `Router::route_layer`, so it sees the matched route (`/v1/jobs/{id}`); an
//! unknown path is answered 404 by the router's fallback before any of this. Refusals have
//! the JSON error body: 401 `unauthenticated` (with `WWW-Authenticate: Bearer`), 403
//! `forbidden` naming the scope that is missing.

use std::sync::Arc;

use axum::{
    Json,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::{SecondsFormat, Utc};

use super::{
    Authenticator, Denied, Principal,
    audit::{AuditNote, Auditor, Record},
};
use crate::config::Scope;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The scope a caller must have; `None`: any authenticated caller (`GET /v1/whoami`).
    pub scope: Option<Scope>,
    /// The action's name in audit records (`jobs.cancel`).
    pub action: &'static str,
    /// Whether the call changes something (and is audited).
    pub mutates: bool,
}

impl Rule {
    /// A call that only reads.
    pub const fn read(scope: Scope, action: &'static str) -> Self {
        Self {
            scope: Some(scope),
            action,
            mutates: false,
        }
    }

    /// A call that changes something.
    pub const fn write(scope: Scope, action: &'static str) -> Self {
        Self {
            scope: Some(scope),
            action,
            mutates: true,
        }
    }

    /// A read that any authenticated caller may make, whatever its scopes.
    pub const fn any(action: &'static str) -> Self {
        Self {
            scope: None,
            action,
            mutates: false,
        }
    }
}

/// The rule of a route: its method and its matched path (`/v1/jobs/{id}`). `None` (a route
/// the table forgot) needs `admin`.
pub type Rules = fn(&Method, &str) -> Option<Rule>;

/// What the middleware needs.
#[derive(Clone)]
pub struct Gate {
    /// Checks tokens.
    pub auth: Arc<Authenticator>,
    /// The service's route table.
    pub rules: Rules,
    /// Writes audit records.
    pub audit: Auditor,
}

fn refusal(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = if code == "unauthenticated" {
            "Bearer realm=\"sked\""
        } else {
            "Bearer realm=\"sked\", error=\"invalid_token\""
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// The middleware (`axum::middleware::from_fn_with_state(gate, auth::gate)`).
pub async fn gate(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let rule = (gate.rules)(&method, &route).unwrap_or(Rule::write(Scope::Admin, "unknown"));
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match gate.auth.authenticate(authorization).await {
        Ok(p) => p,
        Err(denied) => {
            let code = match denied {
                Denied::Missing => "unauthenticated",
                Denied::Invalid(_) => "invalid_token",
            };
            let response = refusal(StatusCode::UNAUTHORIZED, code, denied.to_string());
            audit(&gate, None, &rule, &method, &path, &response);
            return response;
        }
    };
    if let Some(scope) = rule.scope.filter(|s| !principal.allows(*s)) {
        let response = refusal(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this call needs the `{scope}` scope"),
        );
        audit(&gate, Some(&principal), &rule, &method, &path, &response);
        return response;
    }
    req.extensions_mut().insert(principal.clone());
    let response = next.run(req).await;
    audit(&gate, Some(&principal), &rule, &method, &path, &response);
    response
}

fn audit(
    gate: &Gate,
    principal: Option<&Principal>,
    rule: &Rule,
    method: &Method,
    path: &str,
    response: &Response,
) {
    if !rule.mutates {
        return;
    }
    let note = response.extensions().get::<AuditNote>();
    let status = response.status().as_u16();
    let record = Record {
        v: 1,
        ts: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        actor: principal.map_or("unauthenticated", |p| p.actor.as_str()),
        via: principal.map_or("none", |p| p.via.as_ref()),
        scope: rule.scope.map_or("any", Scope::as_str),
        tenants: principal.and_then(Auditor::tenants),
        action: rule.action,
        method: method.as_str(),
        path,
        target: note.and_then(|n| n.target.as_deref()),
        selector: note.and_then(|n| n.selector.as_ref()),
        count: note.and_then(|n| n.count),
        status,
        outcome: Record::outcome_of(status),
    };
    gate.audit.record(&record);
}

impl Gate {
    /// The gate of a service's API: reads `[auth]` (token files, the JWKS), audits to
    /// `topics.audit` with `producer`, registers its metrics in `registry`. Logs a warning
    /// when auth is off, and when it is on without any credential (every call is refused).
    pub async fn new(
        config: &crate::config::Config,
        rules: Rules,
        producer: rdkafka::producer::FutureProducer,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Self, super::Error> {
        let auth = Authenticator::new(&config.auth).await?;
        if !auth.enabled() {
            tracing::warn!(
                "auth.enabled = false: anyone who can reach this API can do anything; \
                 calls are audited as `anonymous`"
            );
        } else if !auth.has_credentials() {
            tracing::warn!(
                "auth is on but no token (auth.tokens, auth.tokens_file) and no JWT issuer \
                 (auth.jwt) is configured: every API call is refused with 401"
            );
        }
        Ok(Self {
            auth: Arc::new(auth),
            rules,
            audit: Auditor::new(Some(producer), config.topics.audit.clone(), registry),
        })
    }

    /// The task that keeps the JWKS fresh, if JWTs are configured.
    pub fn refresh_task(
        &self,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Option<impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static> {
        let jwt = self.auth.jwt()?;
        Some(async move {
            jwt.refresh_loop(cancel).await;
            Ok(())
        })
    }
}
