//! The OpenAPI 3.1 document of sked's HTTP APIs (served as `GET /v1/openapi.json`, committed
//! as `docs/openapi.json`): every path of the ingest service's REST API and of the replayer's
//! DLQ API, with the `sked_api` types as bodies and [`ErrorBody`] for every 4xx and 5xx.
//!
//! The handlers live in the services, so the paths are declared here on private stub
//! functions (`paths.rs`); they are never called.
//!
//! Regenerate the committed file with `cargo run -p sked-api --example openapi >
//! docs/openapi.json`; a unit test fails while it is stale.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{
    calendars, dlq, error::ErrorBody, error::ErrorDetail, jobs, ops, query, request, stats,
};

mod paths;

/// The bearer-token security scheme every endpoint needs.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A static token or an OIDC JWT; its scopes (jobs:read, jobs:write, \
                         ops:write, dlq:read, dlq:replay, admin) decide what it may call. A \
                         token bound to tenants sees other tenants' jobs as 404.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sked",
        description = "The HTTP APIs of sked, a Kafka-native distributed job scheduler: jobs, \
                       app and tenant pauses, bulk operations, counts and schedule previews on \
                       the ingest service (`http.listen_addr`); dead letters on the replayer \
                       (`replayer.listen_addr`). Every error is an ErrorBody. Every list is \
                       cursor-paginated.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "jobs", description = "Jobs and their verbs (ingest service)"),
        (name = "pauses", description = "App and tenant pauses (ingest service)"),
        (name = "operations", description = "Bulk operations (ingest service)"),
        (name = "stats", description = "Counts and schedule previews (ingest service)"),
        (name = "calendars", description = "Exclusion calendars (ingest service)"),
        (name = "dlq", description = "Dead letters and replays (replayer)"),
    ),
    paths(
        paths::submit_job,
        paths::list_jobs,
        paths::describe_job,
        paths::replace_job,
        paths::cancel_job,
        paths::pause_job,
        paths::resume_job,
        paths::trigger_job,
        paths::backfill_job,
        paths::reschedule_job,
        paths::pause_app,
        paths::resume_app,
        paths::pause_tenant,
        paths::resume_tenant,
        paths::list_pauses,
        paths::stats,
        paths::whoami,
        paths::cluster,
        paths::preview,
        paths::list_calendars,
        paths::get_calendar,
        paths::put_calendar,
        paths::delete_calendar,
        paths::create_operation,
        paths::list_operations,
        paths::get_operation,
        paths::cancel_operation,
        paths::list_letters,
        paths::letter_stats,
        paths::show_letter,
        paths::start_replay,
        paths::list_replays,
        paths::replay_progress,
        paths::openapi_document,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        request::ScheduleRequest,
        request::NativeRequest,
        request::InfiniteSchedulerRequest,
        request::RetryRequest,
        jobs::SubmitResponse,
        jobs::SubmitStatus,
        jobs::CancelResponse,
        jobs::JobState,
        jobs::JobKind,
        jobs::PauseScope,
        jobs::PauseInfo,
        jobs::JobSummary,
        jobs::JobList,
        jobs::FireOrigin,
        jobs::FireOutcome,
        jobs::FireSummary,
        jobs::Counters,
        jobs::RunInfo,
        jobs::AttemptInfo,
        jobs::SlotSummary,
        jobs::JobDescription,
        jobs::PauseRequest,
        jobs::TriggerRequest,
        jobs::BackfillRequest,
        jobs::RescheduleRequest,
        jobs::ActionResponse,
        jobs::ScopeResponse,
        jobs::ScopePause,
        jobs::PauseList,
        query::Selector,
        query::Order,
        ops::OperationAction,
        ops::OperationRequest,
        ops::OperationState,
        ops::OperationEvent,
        ops::Operation,
        ops::OperationList,
        stats::Stats,
        stats::Whoami,
        stats::Cluster,
        stats::Rates,
        stats::Replica,
        stats::Lateness,
        stats::LatenessWindow,
        stats::RedisMemory,
        stats::DueIndex,
        stats::GroupLag,
        stats::PartitionLag,
        stats::QuotaUsage,
        stats::PreviewRequest,
        stats::PreviewSlot,
        stats::PreviewResponse,
        stats::DstPolicy,
        stats::DstGap,
        stats::DstOverlap,
        stats::DomDow,
        calendars::Calendar,
        calendars::DateRange,
        calendars::CalendarSource,
        calendars::CalendarInfo,
        calendars::CalendarList,
        calendars::CalendarDeleted,
        dlq::Filter,
        dlq::Order,
        dlq::Letter,
        dlq::Bytes,
        dlq::LetterDetail,
        dlq::LetterList,
        dlq::Counts,
        dlq::DlqStats,
        dlq::IndexState,
        dlq::ReplayRequest,
        dlq::ReplaySpec,
        dlq::ReplayProgress,
        dlq::ReplayList,
    )),
)]
struct Document;

/// The OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = Document::openapi();
    // The version of the API, not of whatever crate version built the document.
    doc.info.version = "1".to_owned();
    doc
}

/// [`openapi`] as pretty JSON, ending in a newline (the content of `docs/openapi.json`).
pub fn openapi_json() -> String {
    let json = serde_json::to_value(openapi())
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the document: {e}\"}}"));
    json + "\n"
}

#[cfg(test)]
mod tests;
