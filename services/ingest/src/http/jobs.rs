//! `POST /v1/jobs`, `GET /v1/jobs`, `GET /v1/jobs/{id}`, `PUT /v1/jobs/{id}`,
//! `DELETE /v1/jobs/{id}`.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use chrono::Utc;
use sked_api::{
    jobs::{
        CancelResponse, Counters, FireOrigin, FireOutcome, FireSummary, JobDescription, JobList,
        SubmitResponse, SubmitStatus,
    },
    query::{ListQuery, Order},
};
use std::sync::Arc;

use sked_core::{
    job::JobId,
    request::{self, JobSpec, Origin},
    schedule::{self, Calendar},
    store::{
        Applied, Cancelled, Etag, JobState, Op,
        describe::{self, Described},
        list::{self, Cursor},
        pause::Scope,
    },
};

use super::{Answer, Api, ApiError, Caller, audited, convert, ok};
use crate::consumer::outcome;
use sked_core::auth::{AuditNote, Principal};

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Most fire times `GET /v1/jobs/{id}?next=N` computes.
const MAX_NEXT: usize = 1000;

pub(super) fn parse_id(raw: &str) -> Result<JobId, ApiError> {
    JobId::parse(raw)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_id", e.to_string()))
}

/// The request's `Idempotency-Key` header, trimmed.
pub(super) fn idempotency_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(IDEMPOTENCY_HEADER).map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(v)) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "header Idempotency-Key must be non-empty visible ASCII",
        )),
    }
}

/// Parses a schedule request body as the Kafka path does, with the REST trace context.
fn parse_request(
    api: &Api,
    headers: &HeaderMap,
    body: &[u8],
    fallback: JobId,
    otel_name: &'static str,
    who: &Principal,
) -> Result<JobSpec, ApiError> {
    // A token acting for one tenant submits into it when the request names none.
    let origin = Origin {
        now: Utc::now(),
        fallback_id: Some(fallback),
        tenant: who.confine(None).ok().flatten(),
    };
    let mut spec = request::parse(body, &api.limits, &origin)?;
    if !who.sees(spec.tenant.as_deref()) {
        return Err(match who.confine(spec.tenant.as_deref()) {
            Err(e) => e.into(),
            Ok(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token acts for tenants: the job must name one of them",
            ),
        });
    }
    let span = tracing::info_span!(
        "submit",
        otel.name = otel_name,
        otel.kind = "server",
        sked.job.id = %spec.id,
    );
    let incoming = headers
        .get(sked_core::kafka::headers::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    sked_core::trace::set_parent(&span, incoming);
    spec.traceparent = sked_core::trace::traceparent(&span).or_else(|| incoming.map(str::to_owned));
    Ok(spec)
}

/// `POST /v1/jobs`: 201 created, 200 updated or duplicate.
pub async fn submit(
    State(api): State<Api>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let header_key = idempotency_header(&headers)?;
    // Without an id in the body: the Idempotency-Key header, else a new time-ordered UUID.
    let fallback = match &header_key {
        Some(key) => JobId::parse(key).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                format!("header Idempotency-Key: {e}"),
            )
        })?,
        None => JobId::new_v7(),
    };
    let mut spec = parse_request(&api, &headers, &body, fallback, "POST /v1/jobs", &who)?;
    super::preview::check_calendars(&api, &spec).await?;
    if spec.idempotency_key.is_none() {
        spec.idempotency_key = header_key;
    }
    // A confined token may not overwrite a job of another tenant that has the same id.
    if who.tenants().is_some()
        && let Some(existing) = api.store.get(&spec.id).await?
        && !who.sees(existing.spec.tenant.as_deref())
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "id_taken",
            format!("job id {} is taken; choose another", spec.id),
        ));
    }
    api.quotas.admit(&spec).await?;
    let target = spec.id.to_string();
    audited(
        store(&api, Op::insert(spec, &body)).await,
        AuditNote::target(target),
    )
}

/// `PUT /v1/jobs/{id}` with `If-Match: <etag>`: replaces the job only if it is still that
/// version (412 otherwise, nothing changed); 428 without `If-Match`.
pub async fn replace(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let id = parse_id(&raw)?;
    let etag: Etag = match headers.get(header::IF_MATCH).map(|v| v.to_str()) {
        None => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "precondition_required",
                "PUT needs an If-Match header with the job's etag (GET /v1/jobs/{id})",
            ));
        }
        Some(Ok(v)) => v
            .parse()
            .map_err(|e: String| ApiError::bad_param("If-Match", e))?,
        Some(Err(_)) => return Err(ApiError::bad_param("If-Match", "not visible ASCII")),
    };
    visible(&api, &who, &id).await?;
    let spec = parse_request(&api, &headers, &body, id.clone(), "PUT /v1/jobs/{id}", &who)?;
    super::preview::check_calendars(&api, &spec).await?;
    if spec.id != id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("the body names job {}, the path {id}", spec.id),
        ));
    }
    if api.store.etag(&id).await?.is_none() {
        return Err(ApiError::not_found(format_args!("job {id}")));
    }
    api.quotas.admit(&spec).await?;
    audited(
        store(&api, Op::replace(spec, &body, etag)).await,
        AuditNote::target(id.to_string()),
    )
}

/// Answers 404 (as for a job that does not exist) when `id` belongs to a tenant the caller
/// does not act for. One read, for confined callers only.
pub(super) async fn visible(api: &Api, who: &Principal, id: &JobId) -> Result<(), ApiError> {
    if who.tenants().is_none() {
        return Ok(());
    }
    match api.store.get(id).await? {
        Some(record) if who.sees(record.spec.tenant.as_deref()) => Ok(()),
        _ => Err(ApiError::not_found(format_args!("job {id}"))),
    }
}

async fn store(api: &Api, op: Op) -> Answer {
    let (id, due_at) = match &op {
        Op::Insert { spec, .. } => (spec.id.to_string(), spec.first_due),
        Op::Cancel(_) | Op::CancelListed { .. } => return Err(ApiError::internal()),
    };
    let applied = api
        .store
        .apply(&[op])
        .await?
        .pop()
        .ok_or_else(ApiError::internal)?;
    api.metrics.stored(outcome(&applied), "http");
    let answer = |status, s, id, due_at| {
        ok(
            status,
            &SubmitResponse {
                id,
                status: s,
                due_at,
            },
        )
    };
    match applied {
        Applied::Created => Ok(answer(
            StatusCode::CREATED,
            SubmitStatus::Created,
            id,
            Some(due_at),
        )),
        Applied::Updated => Ok(answer(
            StatusCode::OK,
            SubmitStatus::Updated,
            id,
            Some(due_at),
        )),
        Applied::Duplicate { existing } => Ok(answer(
            StatusCode::OK,
            SubmitStatus::Duplicate,
            existing.to_string(),
            None,
        )),
        Applied::PreconditionFailed => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            format!("job {id} changed since that etag; GET it again"),
        )),
        Applied::Cancel(_) => Err(ApiError::internal()),
    }
}

/// `GET /v1/jobs`: one page of jobs matching the filters.
pub async fn list(State(api): State<Api>, Caller(who): Caller, RawQuery(raw): RawQuery) -> Answer {
    let query = ListQuery::from_query_str(raw.as_deref().unwrap_or(""))?;
    let mut filter = convert::filter(&query.filter)?;
    filter.tenant = who.confine(filter.tenant.as_deref())?;
    if query.order == Some(Order::Created) {
        if query.filter.due_after.is_some() || query.filter.due_before.is_some() {
            return Err(ApiError::bad_param(
                "order",
                "order=created lists every job by creation and takes no due range \
                 (due_after, due_before); use order=due for those",
            ));
        }
        filter.order = list::Order::Created;
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| Cursor::decode(c, &filter))
        .transpose()
        .map_err(|e| ApiError::bad_param("cursor", e))?;
    let limit = query.limit_or_default() as usize;
    let page = api.store.list(&filter, cursor.as_ref(), limit).await?;
    let jobs = page
        .jobs
        .iter()
        .map(|l| {
            let paused = l.pause.as_ref().map(|n| convert::pause(Scope::Job, n));
            convert::summary(&l.record, l.state, l.record.next_due, paused, l.created)
        })
        .collect();
    Ok(ok(
        StatusCode::OK,
        &JobList {
            jobs,
            next_cursor: page.next.map(|c| c.encode(&filter)),
        },
    ))
}

/// `GET /v1/jobs/{id}?next=N&history=N`.
pub async fn describe(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let id = parse_id(&raw)?;
    let (mut next, mut history) = (5usize, 20usize);
    for (k, v) in form_pairs(query.as_deref().unwrap_or("")) {
        let n: usize = v
            .parse()
            .map_err(|_| ApiError::bad_param(&k, format!("{k}: `{v}` is not a whole number")))?;
        match k.as_str() {
            "next" if n <= MAX_NEXT => next = n,
            "next" => {
                return Err(ApiError::bad_param(
                    "next",
                    format!("next: at most {MAX_NEXT}"),
                ));
            }
            "history" if n <= 50 => history = n,
            "history" => return Err(ApiError::bad_param("history", "history: at most 50")),
            other => {
                return Err(ApiError::bad_param(
                    other,
                    format!("unknown parameter `{other}`, expected next or history"),
                ));
            }
        }
    }
    let Some(d) = api
        .store
        .describe(&id, history)
        .await?
        .filter(|d| who.sees(d.record.spec.tenant.as_deref()))
    else {
        return Err(ApiError::not_found(format_args!("job {id}")));
    };
    let scope_pause = if d.held {
        held_by(&api, &d).await?
    } else {
        None
    };
    let attached = if d.record.spec.calendars.is_empty() {
        Vec::new()
    } else {
        api.calendars
            .for_names(&d.record.spec.calendars)
            .await?
            .resolve(&d.record.spec.calendars)
    };
    let body = description(d, next, scope_pause, &attached);
    Ok((
        StatusCode::OK,
        [(header::ETAG, format!("\"{}\"", body.etag))],
        Json(body),
    )
        .into_response())
}

/// The app or tenant pause that holds a held job.
async fn held_by(api: &Api, d: &Described) -> Result<Option<sked_api::jobs::PauseInfo>, ApiError> {
    let spec = &d.record.spec;
    let pauses = api.store.scope_pauses().await?;
    Ok(pauses
        .iter()
        .find(|p| match p.scope {
            Scope::App => p.name == spec.app,
            Scope::Tenant => spec.tenant.as_deref() == Some(p.name.as_str()),
            Scope::Job => false,
        })
        .map(|p| convert::pause(p.scope, &p.note)))
}

fn description(
    d: Described,
    next: usize,
    scope_pause: Option<sked_api::jobs::PauseInfo>,
    calendars: &[(String, Arc<Calendar>)],
) -> JobDescription {
    let state = convert::described_state(&d.record, d.held, d.run.as_ref());
    let spec = &d.record.spec;
    let mut times = Vec::new();
    if matches!(
        d.record.state,
        JobState::Scheduled | JobState::Paused | JobState::Firing
    ) {
        let left = spec
            .schedule
            .max_runs()
            .map_or(u64::MAX, |m| u64::from(m.get()).saturating_sub(d.runs));
        let mut t = d.record.next_due;
        // Bounded: excluded slots are passed over, at most this many.
        let mut budget = 10_000usize;
        while let Some(at) = t {
            if times.len() >= next || times.len() as u64 >= left || budget == 0 {
                break;
            }
            budget -= 1;
            if schedule::excluded_by(calendars, at).is_none() {
                times.push(at);
            }
            t = spec.schedule.next_after(at);
        }
    }
    let counter = |name: &str| d.counters.get(name).copied().unwrap_or(0);
    let mut counters = Counters {
        fired: counter("fired"),
        missed: counter("missed"),
        skipped: counter("skipped"),
        excluded: counter("excluded"),
        retried: counter("retried"),
        dead: counter("dead"),
        triggered: counter("triggered"),
        backfilled: counter("backfilled"),
    };
    if !spec.schedule.is_recurring() && d.record.state == JobState::Dispatched {
        counters.fired = counters.fired.max(1);
    }
    let history = d
        .history
        .iter()
        .map(|f| FireSummary {
            fire_id: f.fire_id.clone(),
            due_at: f.due,
            fired_at: Some(f.at),
            lateness_ms: (f.origin == describe::FireOrigin::Schedule)
                .then(|| (f.at - f.due).num_milliseconds()),
            origin: match f.origin {
                describe::FireOrigin::Schedule => FireOrigin::Schedule,
                describe::FireOrigin::Trigger => FireOrigin::Trigger,
                describe::FireOrigin::Backfill => FireOrigin::Backfill,
            },
            outcome: match f.outcome {
                describe::FireOutcome::Pending => FireOutcome::Pending,
                describe::FireOutcome::Running => FireOutcome::Running,
                describe::FireOutcome::Succeeded => FireOutcome::Succeeded,
                describe::FireOutcome::Retrying => FireOutcome::Retrying,
                describe::FireOutcome::Dead => FireOutcome::Dead,
            },
            attempts: f.attempts,
        })
        .collect();
    let paused = d
        .pause
        .as_ref()
        .map(|n| convert::pause(Scope::Job, n))
        .or(scope_pause);
    JobDescription {
        id: spec.id.to_string(),
        app: spec.app.clone(),
        tenant: spec.tenant.clone(),
        state: convert::state(state),
        kind: convert::kind(&spec.schedule),
        schedule: convert::schedule(&spec.schedule),
        description: schedule::explain_schedule(&spec.schedule),
        calendars: spec.calendars.clone(),
        labels: spec.labels.clone(),
        next_due: d.record.next_due,
        etag: d.etag.to_string(),
        paused,
        next: times,
        history,
        counters,
        run: d.run.as_ref().map(convert::run),
        slots: d
            .slots
            .iter()
            .map(|s| sked_api::jobs::SlotSummary {
                due_at: s.due,
                noted_at: s.at,
                outcome: s.outcome.to_string(),
            })
            .collect(),
        attempts: d.attempts,
        job: sked_api::jobs::RawJson(
            serde_json::value::to_raw_value(spec)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        ),
    }
}

/// `key=value` pairs of a query string, percent-decoded.
pub(super) fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// `DELETE /v1/jobs/{id}`.
pub async fn cancel(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let id = parse_id(&raw)?;
    visible(&api, &who, &id).await?;
    let result = api.store.cancel(&id).await?;
    api.metrics.stored(result.into(), "http");
    match result {
        Cancelled::Cancelled | Cancelled::AlreadyCancelled => {
            let status: &'static str = result.into();
            Ok(ok(
                StatusCode::OK,
                &CancelResponse {
                    id: id.to_string(),
                    status: status.to_owned(),
                },
            ))
        }
        Cancelled::NotFound => Err(ApiError::not_found(format_args!("job {id}"))),
        Cancelled::Dispatched | Cancelled::Finished => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_dispatched",
            format!("job {id} has no pending fire left to cancel ({result})"),
        )),
    }
}
