//! The verbs of one job: `POST /v1/jobs/{id}/pause`, `resume`, `trigger`, `backfill`,
//! `reschedule`. Each is idempotent when sent twice, and race-free against any number of
//! scheduler replicas (each is one script on the job's shard, which a claim re-checks).

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use chrono::{TimeDelta, Utc};
use sked_api::jobs::{
    ActionResponse, BackfillRequest, PauseRequest, RescheduleRequest, TriggerRequest,
};
use sked_core::{job::JobId, request, schedule, store::pause::Outcome};

use super::{
    Answer, Api, ApiError, Caller, body_of, body_or_default,
    jobs::{idempotency_header, parse_id, visible},
    ok,
};

/// Longest pause note, in bytes.
const MAX_NOTE_BYTES: usize = 1024;
/// How often a pause waits for a fire in flight before answering 409.
const BUSY_TRIES: u32 = 20;

fn action(id: &JobId, status: &str) -> ActionResponse {
    ActionResponse {
        id: id.to_string(),
        status: status.to_owned(),
        fire_ids: Vec::new(),
        due_at: None,
    }
}

fn check_note(note: &Option<String>) -> Result<(), ApiError> {
    match note {
        Some(n) if n.len() > MAX_NOTE_BYTES => Err(ApiError::bad_param(
            "note",
            format!("note: at most {MAX_NOTE_BYTES} bytes"),
        )),
        _ => Ok(()),
    }
}

/// Maps a pause or resume outcome to its answer.
fn answer(id: &JobId, outcome: Outcome) -> Answer {
    match outcome {
        Outcome::NotFound => Err(ApiError::not_found(format_args!("job {id}"))),
        Outcome::Finished => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_dispatched",
            format!("job {id} has no pending fire left"),
        )),
        Outcome::Busy => Err(ApiError::new(
            StatusCode::CONFLICT,
            "busy",
            format!("job {id} is firing right now; try again"),
        )),
        other => Ok(ok(StatusCode::OK, &action(id, other.into()))),
    }
}

/// `POST /v1/jobs/{id}/pause` `{"note"?}`.
pub async fn pause(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Answer {
    let id = parse_id(&raw)?;
    visible(&api, &who, &id).await?;
    let req: PauseRequest = body_or_default(&body)?;
    check_note(&req.note)?;
    let mut tries = 0;
    loop {
        let outcome = api.store.pause_job(&id, req.note.clone()).await?;
        // A fire being produced takes milliseconds: wait for it rather than refuse.
        if outcome == Outcome::Busy && tries < BUSY_TRIES {
            tries += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        return answer(&id, outcome);
    }
}

/// `POST /v1/jobs/{id}/resume`.
pub async fn resume(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let id = parse_id(&raw)?;
    visible(&api, &who, &id).await?;
    let outcome = api.store.resume_job(&id).await?;
    answer(&id, outcome)
}

/// `POST /v1/jobs/{id}/trigger` `{"key"?}`: the key (else the `Idempotency-Key` header,
/// else a new one) makes a repeated request fire once.
pub async fn trigger(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let id = parse_id(&raw)?;
    visible(&api, &who, &id).await?;
    let req: TriggerRequest = body_or_default(&body)?;
    let key = match req.key.or(idempotency_header(&headers)?) {
        Some(k) if k.is_empty() || k.len() > 256 => {
            return Err(ApiError::bad_param("key", "key: 1 to 256 bytes"));
        }
        Some(k) => k,
        None => JobId::new_v7().into_string(),
    };
    let fired = api.store.trigger(&id, &key).await?;
    let status = if fired.new > 0 {
        "triggered"
    } else {
        "duplicate"
    };
    Ok(ok(
        StatusCode::OK,
        &ActionResponse {
            fire_ids: fired.fire_ids,
            ..action(&id, status)
        },
    ))
}

/// `POST /v1/jobs/{id}/backfill` `{"from", "to"}`: fires the past slots of `[from, to)`
/// that did not fire; answers the fire ids fired now.
pub async fn backfill(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Answer {
    let id = parse_id(&raw)?;
    visible(&api, &who, &id).await?;
    let req: BackfillRequest = body_of(&body)?;
    let fired = api.store.backfill(&id, req.from, req.to).await?;
    let new: Vec<String> = fired.fire_ids.into_iter().collect();
    Ok(ok(
        StatusCode::OK,
        &ActionResponse {
            fire_ids: new,
            ..action(&id, "backfilled")
        },
    ))
}

/// `POST /v1/jobs/{id}/reschedule` `{"run_at"}` or `{"delay"}`: moves a pending one-shot.
pub async fn reschedule(
    State(api): State<Api>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Answer {
    let id = parse_id(&raw)?;
    visible(&api, &who, &id).await?;
    let req: RescheduleRequest = body_of(&body)?;
    let now = Utc::now();
    let at = match (req.run_at, req.delay) {
        (Some(t), None) => request::parse_time(&t, api.limits.default_timezone)
            .map_err(|e| ApiError::bad_param("run_at", format!("run_at: {e}")))?,
        (None, Some(d)) => {
            let d = schedule::parse_duration(&d)
                .map_err(|e| ApiError::bad_param("delay", format!("delay: {e}")))?;
            TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| ApiError::bad_param("delay", "delay: too long"))?
        }
        _ => {
            return Err(ApiError::bad_param(
                "run_at",
                "give exactly one of `run_at` and `delay`",
            ));
        }
    };
    let horizon = TimeDelta::from_std(api.limits.max_horizon).unwrap_or(TimeDelta::MAX);
    if now
        .checked_add_signed(horizon)
        .is_some_and(|limit| at > limit)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_far_in_future",
            "the new time is beyond `limits.max_horizon`",
        ));
    }
    let due = api.store.reschedule(&id, at).await?;
    Ok(ok(
        StatusCode::OK,
        &ActionResponse {
            due_at: Some(due),
            ..action(&id, "rescheduled")
        },
    ))
}
