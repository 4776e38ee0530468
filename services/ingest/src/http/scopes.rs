//! Whole apps and tenants (`POST /v1/apps/{app}/pause|resume`,
//! `POST /v1/tenants/{tenant}/pause|resume`, `GET /v1/pauses`), counts (`GET /v1/stats`) and
//! the OpenAPI document (`GET /v1/openapi.json`).

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
};
use sked_api::{
    jobs::{PauseList, PauseRequest, PauseScope, ScopePause, ScopeResponse},
    stats::{Stats, Whoami},
};
use sked_core::store::pause::Scope;

use sked_core::auth::Principal;

use super::{Answer, Api, ApiError, Caller, body_or_default, ok};

fn check_name(scope: Scope, name: &str) -> Result<(), ApiError> {
    let bad = |why: String| {
        ApiError::bad_param(scope.to_string().as_str(), format!("{scope} name: {why}"))
    };
    match scope {
        Scope::Tenant => sked_core::request::check_tenant(name).map_err(bad),
        _ if name.is_empty() || name.len() > 256 => Err(bad("1 to 256 bytes".into())),
        _ => Ok(()),
    }
}

/// A caller confined to tenants may pause and resume its own tenants, not whole apps (which
/// hold other tenants' jobs).
fn check_caller(who: &Principal, scope: Scope, name: &str) -> Result<(), ApiError> {
    match scope {
        Scope::App if who.tenants().is_some() => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "pausing or resuming a whole app needs a token that is not bound to tenants",
        )),
        Scope::Tenant => who.confine(Some(name)).map(drop).map_err(Into::into),
        _ => Ok(()),
    }
}

async fn pause(api: Api, who: &Principal, scope: Scope, name: String, body: Bytes) -> Answer {
    check_name(scope, &name)?;
    check_caller(who, scope, &name)?;
    let req: PauseRequest = body_or_default(&body)?;
    if req.note.as_ref().is_some_and(|n| n.len() > 1024) {
        return Err(ApiError::bad_param("note", "note: at most 1024 bytes"));
    }
    let outcome = api.store.pause_scope(scope, &name, req.note).await?;
    Ok(ok(StatusCode::OK, &response(scope, name, outcome.into())))
}

async fn resume(api: Api, who: &Principal, scope: Scope, name: String) -> Answer {
    check_name(scope, &name)?;
    check_caller(who, scope, &name)?;
    let (outcome, _moved) = api.store.resume_scope(scope, &name).await?;
    Ok(ok(StatusCode::OK, &response(scope, name, outcome.into())))
}

fn response(scope: Scope, name: String, status: &str) -> ScopeResponse {
    ScopeResponse {
        scope: api_scope(scope),
        name,
        status: status.to_owned(),
    }
}

fn api_scope(scope: Scope) -> PauseScope {
    match scope {
        Scope::App => PauseScope::App,
        Scope::Tenant => PauseScope::Tenant,
        Scope::Job => PauseScope::Job,
    }
}

/// `POST /v1/apps/{app}/pause`.
pub async fn pause_app(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    pause(api, &who, Scope::App, name, body).await
}

/// `POST /v1/apps/{app}/resume`.
pub async fn resume_app(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> Answer {
    resume(api, &who, Scope::App, name).await
}

/// `POST /v1/tenants/{tenant}/pause`.
pub async fn pause_tenant(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    pause(api, &who, Scope::Tenant, name, body).await
}

/// `POST /v1/tenants/{tenant}/resume`.
pub async fn resume_tenant(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> Answer {
    resume(api, &who, Scope::Tenant, name).await
}

/// `GET /v1/pauses`: every paused app and tenant.
/// A caller confined to tenants sees app pauses and its own tenants' pauses.
pub async fn pauses(State(api): State<Api>, Caller(who): Caller) -> Answer {
    let pauses = api
        .store
        .scope_pauses()
        .await?
        .into_iter()
        .filter(|p| p.scope != Scope::Tenant || who.sees(Some(&p.name)))
        .map(|p| ScopePause {
            scope: api_scope(p.scope),
            name: p.name,
            note: p.note.note,
            at: p.note.at,
        })
        .collect();
    Ok(ok(StatusCode::OK, &PauseList { pauses }))
}

/// `GET /v1/whoami`: any valid token may ask who it is.
pub async fn whoami(Caller(who): Caller) -> Answer {
    let body = Whoami {
        actor: who.actor.clone(),
        via: who.via.as_ref().to_owned(),
        scopes: who.scopes().map(|s| s.as_str().to_owned()).collect(),
        tenants: who.tenants().map(|t| t.iter().cloned().collect()),
    };
    Ok(ok(StatusCode::OK, &body))
}

/// `GET /v1/cluster`: the latest figures of [`crate::cluster`]. They span every tenant, so a
/// token bound to tenants is refused.
pub async fn cluster(State(api): State<Api>, Caller(who): Caller) -> Answer {
    if who.tenants().is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the cluster figures span every tenant: this needs a token that is not bound to tenants",
        ));
    }
    match api.cluster.get() {
        Some(c) => Ok(ok(StatusCode::OK, &c)),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the cluster figures are read every 5 s and have not been read yet: retry shortly",
        )),
    }
}

/// `GET /v1/stats`.
/// A caller confined to tenants gets its tenants' counts only: `pending` and `by_tenant`
/// (states and apps are counted across tenants, so they are left out).
pub async fn stats(State(api): State<Api>, Caller(who): Caller) -> Answer {
    let s = api.store.stats().await?;
    let quotas = api.quotas.usage(&s.by_app, &s.by_tenant, &who);
    let body = if who.tenants().is_some() {
        let by_tenant: std::collections::BTreeMap<String, u64> = s
            .by_tenant
            .into_iter()
            .filter(|(t, _)| who.sees(Some(t)))
            .collect();
        Stats {
            pending: by_tenant.values().sum(),
            by_tenant,
            quotas,
            ..Stats::default()
        }
    } else {
        Stats {
            pending: s.pending(),
            by_state: s.by_state,
            by_app: s.by_app,
            by_tenant: s.by_tenant,
            quotas,
        }
    };
    Ok(ok(StatusCode::OK, &body))
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> Answer {
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        sked_api::openapi::openapi_json(),
    )
        .into_response())
}
