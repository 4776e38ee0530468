//! Between the store's types and the API's (`sked-api`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sked_api::{
    ErrorDetail,
    jobs::{self as api, JobKind, PauseInfo, PauseScope},
    query::Selector,
};
use sked_core::{
    schedule::Schedule,
    store::{
        JobRecord, JobState,
        list::{Filter, Kind, ListState, Order},
        pause::{self, Note},
        runs::RunInfo,
    },
};

/// The store filter of an API selector (the list filter and the bulk selector alike).
pub fn filter(selector: &Selector) -> Result<Filter, ErrorDetail> {
    selector.validate()?;
    let states = selector
        .states()?
        .into_iter()
        .map(|s| {
            s.as_str()
                .parse::<ListState>()
                .map_err(|_| ErrorDetail::invalid_parameter("state", format!("state: `{s}`")))
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    for (k, v) in selector.labels()? {
        sked_core::request::check_label(&k, &v)
            .map_err(|e| ErrorDetail::invalid_parameter("label", format!("label `{k}`: {e}")))?;
    }
    if let Some(tenant) = &selector.tenant {
        sked_core::request::check_tenant(tenant)
            .map_err(|e| ErrorDetail::invalid_parameter("tenant", format!("tenant: {e}")))?;
    }
    if let (Some(a), Some(b)) = (selector.due_after, selector.due_before)
        && b <= a
    {
        return Err(ErrorDetail::invalid_parameter(
            "due_before",
            "due_before must be after due_after",
        ));
    }
    Ok(Filter {
        states,
        app: selector.app.clone(),
        tenant: selector.tenant.clone(),
        labels: selector.labels()?,
        kind: selector.kind.map(|k| match k {
            JobKind::Once => Kind::Once,
            JobKind::Cron => Kind::Cron,
            JobKind::Every => Kind::Every,
        }),
        due_after: selector.due_after.map(|t| t.timestamp_millis()),
        due_before: selector.due_before.map(|t| t.timestamp_millis()),
        order: Order::Due,
        payload: selector.payload.clone(),
    })
}

/// The API form of a listed state.
pub fn state(state: ListState) -> api::JobState {
    state
        .to_string()
        .parse()
        .unwrap_or(api::JobState::Scheduled)
}

/// The listed state of a described job.
pub fn described_state(record: &JobRecord, held: bool, run: Option<&RunInfo>) -> ListState {
    use sked_core::store::runs::RunState;
    match record.state {
        JobState::Scheduled if held => ListState::Held,
        JobState::Scheduled => ListState::Scheduled,
        JobState::Paused => ListState::Paused,
        JobState::Firing => ListState::Firing,
        JobState::Cancelled => ListState::Cancelled,
        JobState::Dispatched => match run.map(|r| r.state) {
            Some(RunState::Running) => ListState::Running,
            Some(RunState::Succeeded) => ListState::Succeeded,
            Some(RunState::Retrying) => ListState::Retrying,
            Some(RunState::Dead) => ListState::Dead,
            None => ListState::Dispatched,
        },
    }
}

/// The kind of a schedule.
pub fn kind(schedule: &Schedule) -> JobKind {
    match Kind::of(schedule) {
        Kind::Once => JobKind::Once,
        Kind::Cron => JobKind::Cron,
        Kind::Every => JobKind::Every,
    }
}

/// A schedule in one line: `once`, `cron 0 9 * * 1-5 Asia/Dhaka`, `every 30s`.
pub fn schedule(schedule: &Schedule) -> String {
    match schedule {
        Schedule::Once { .. } => "once".to_owned(),
        Schedule::Cron { expr, tz, .. } => format!("cron {expr} {tz}"),
        Schedule::Every { interval_ms, .. } => format!(
            "every {}",
            humantime::format_duration(std::time::Duration::from_millis(*interval_ms))
        ),
    }
}

/// A pause in the API's form.
pub fn pause(scope: pause::Scope, note: &Note) -> PauseInfo {
    PauseInfo {
        scope: match scope {
            pause::Scope::Job => PauseScope::Job,
            pause::Scope::App => PauseScope::App,
            pause::Scope::Tenant => PauseScope::Tenant,
        },
        note: note.note.clone(),
        at: note.at,
    }
}

/// A run in the API's form.
pub fn run(run: &RunInfo) -> api::RunInfo {
    api::RunInfo {
        state: run.state.to_string(),
        attempts: run.attempts,
        last_error: run.last_error.clone(),
        last_duration_ms: run.last_duration_ms,
        fire_id: (!run.fire_id.is_empty()).then(|| run.fire_id.clone()),
        updated_at: run.updated_at,
    }
}

/// A job in a list.
pub fn summary(
    record: &JobRecord,
    state: ListState,
    next_due: Option<DateTime<Utc>>,
    paused: Option<PauseInfo>,
    created: Option<i64>,
) -> api::JobSummary {
    let spec = &record.spec;
    api::JobSummary {
        id: spec.id.to_string(),
        app: spec.app.clone(),
        tenant: spec.tenant.clone(),
        state: self::state(state),
        kind: kind(&spec.schedule),
        next_due,
        schedule: schedule(&spec.schedule),
        labels: spec.labels.clone(),
        paused,
        created_at: created.and_then(DateTime::from_timestamp_millis),
    }
}
