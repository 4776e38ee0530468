//! Bulk operations: `POST /v1/operations`, `GET /v1/operations`, `GET /v1/operations/{id}`,
//! `POST /v1/operations/{id}/cancel`. The work is done by [`crate::ops`].

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use sked_api::{
    ErrorDetail,
    ops::{OperationAction, OperationList, OperationRequest},
    query::Selector,
};
use sked_core::store::list::{Filter, ListState};

use sked_core::auth::{AuditNote, Principal};

use super::{Answer, Api, ApiError, Caller, audited, body_of, convert, jobs::form_pairs, ok};
use crate::ops::{self, MAX_RATE};

/// The store filter of an operation's selector. Purging acts on finished jobs only: its
/// selector names finished states, or none (then every finished state).
pub fn selector_filter(
    selector: &Selector,
    action: OperationAction,
) -> Result<Filter, ErrorDetail> {
    let mut filter = convert::filter(selector)?;
    if action == OperationAction::PurgeFinished {
        if selector.state.is_none() {
            filter.states = [
                ListState::Dispatched,
                ListState::Running,
                ListState::Succeeded,
                ListState::Retrying,
                ListState::Dead,
                ListState::Cancelled,
            ]
            .into_iter()
            .collect();
        } else if filter.states.iter().any(|s| ListState::PENDING.contains(s)) {
            return Err(ErrorDetail::invalid_parameter(
                "selector",
                "purge_finished acts on finished jobs: its selector may not name a pending state",
            ));
        }
    }
    Ok(filter)
}

/// `POST /v1/operations` `{action, selector, dry_run?, rate?, offset?, note?}`: 202 with the
/// operation (a dry run too; its `estimate` is filled in when it finishes).
///
/// A caller confined to tenants acts within them: a selector without `tenant` gets the
/// caller's only tenant (400 when it has several), another tenant is 403.
pub async fn create(State(api): State<Api>, Caller(who): Caller, body: Bytes) -> Answer {
    let mut req: OperationRequest = body_of(&body)?;
    req.selector.tenant = who.confine(req.selector.tenant.as_deref())?;
    selector_filter(&req.selector, req.action)?;
    if let Some(rate) = req.rate
        && !(1..=MAX_RATE).contains(&rate)
    {
        return Err(ApiError::bad_param(
            "rate",
            format!("rate: 1 to {MAX_RATE} jobs per second"),
        ));
    }
    match (req.action, &req.offset) {
        (OperationAction::Reschedule, None) => {
            return Err(ApiError::bad_param(
                "offset",
                "reschedule needs an offset such as +1h",
            ));
        }
        (OperationAction::Reschedule, Some(o)) => {
            ops::parse_offset(o)
                .map_err(|e| ApiError::bad_param("offset", format!("offset: {e}")))?;
        }
        (_, Some(_)) => {
            return Err(ApiError::bad_param(
                "offset",
                "offset goes with action reschedule only",
            ));
        }
        _ => {}
    }
    if req.note.as_ref().is_some_and(|n| n.len() > 1024) {
        return Err(ApiError::bad_param("note", "note: at most 1024 bytes"));
    }
    let op = ops::new_operation(&req);
    api.ops.create(&op, req.note.clone()).await?;
    let note = AuditNote {
        target: Some(op.id.clone()),
        selector: serde_json::to_value(&op.selector).ok(),
        count: None,
    };
    audited(Ok(ok(StatusCode::ACCEPTED, &op)), note)
}

/// `GET /v1/operations?limit&cursor`: newest first.
/// A caller confined to tenants sees the operations whose selector names one of them (a
/// page may then hold fewer than `limit`).
pub async fn list(
    State(api): State<Api>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Answer {
    let (mut limit, mut cursor) = (50usize, None);
    for (k, v) in form_pairs(query.as_deref().unwrap_or("")) {
        match k.as_str() {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| ApiError::bad_param("limit", "limit: 1 to 1000"))?;
            }
            "cursor" => cursor = Some(v),
            other => {
                return Err(ApiError::bad_param(
                    other,
                    format!("unknown parameter `{other}`, expected limit or cursor"),
                ));
            }
        }
    }
    let (mut operations, next_cursor) = api.ops.list(limit, cursor.as_deref()).await?;
    operations.retain(|op| who.sees(op.selector.tenant.as_deref()));
    Ok(ok(
        StatusCode::OK,
        &OperationList {
            operations,
            next_cursor,
        },
    ))
}

/// `GET /v1/operations/{id}`.
pub async fn get(State(api): State<Api>, Caller(who): Caller, Path(id): Path<String>) -> Answer {
    match visible_op(&api, &who, &id).await? {
        Some(op) => Ok(ok(StatusCode::OK, &op)),
        None => Err(ApiError::not_found(format_args!("operation {id}"))),
    }
}

/// `POST /v1/operations/{id}/cancel`: stops it before its next page; answers it as it is.
pub async fn cancel(State(api): State<Api>, Caller(who): Caller, Path(id): Path<String>) -> Answer {
    let Some(op) = visible_op(&api, &who, &id).await? else {
        return Err(ApiError::not_found(format_args!("operation {id}")));
    };
    if !op.state.is_final() {
        api.ops.cancel(&id).await?;
    }
    Ok(ok(StatusCode::ACCEPTED, &op))
}

/// The operation `id`, if it exists and acts within the caller's tenants.
async fn visible_op(
    api: &Api,
    who: &Principal,
    id: &str,
) -> Result<Option<sked_api::ops::Operation>, ApiError> {
    Ok(api
        .ops
        .get(id)
        .await?
        .filter(|op| who.sees(op.selector.tenant.as_deref())))
}
