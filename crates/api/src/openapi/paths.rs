//! The path declarations of the OpenAPI document, on stub functions (never called: the
//! handlers are in the services).

#![allow(dead_code)]

use utoipa::IntoResponses;

use crate::{calendars, dlq, error::ErrorBody, jobs, ops, request::ScheduleRequest, stats};

/// The error answers every endpoint may give.
#[derive(IntoResponses)]
enum Always {
    /// No or an invalid bearer token (`unauthenticated`).
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The token lacks the scope this call needs (`forbidden`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The path exists, the method does not (`method_not_allowed`).
    #[response(status = 405)]
    MethodNotAllowed(ErrorBody),
    /// Back-pressure or rate limit: retry later (`too_many_requests`).
    #[response(status = 429)]
    TooManyRequests(ErrorBody),
    /// An unexpected failure; the body holds no internals (`internal`).
    #[response(status = 500)]
    Internal(ErrorBody),
    /// Redis or Kafka is unavailable, or the service is draining: retry later
    /// (`unavailable`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    summary = "Submit a schedule request",
    description = "The body is a schedule request in the native or the Infinite-Scheduler shape \
                   (docs/schedule-request.schema.json). Without an id, the job gets the \
                   `Idempotency-Key` header or a new UUID v7.",
    params(("Idempotency-Key" = Option<String>, Header, description = "A resubmission with the same key is a duplicate (200, status `duplicate`).")),
    request_body(content = ScheduleRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = jobs::SubmitResponse),
        (status = 200, description = "Updated (same id) or duplicate (same idempotency key)", body = jobs::SubmitResponse),
        (status = 400, description = "The request cannot be scheduled; `code` is the reason (`invalid_cron`, `unknown_field`, ...)", body = ErrorBody),
        (status = 409, description = "The job exists in a state that cannot be replaced", body = ErrorBody),
        (status = 413, description = "The request is over the size limit (`payload_too_large`)", body = ErrorBody),
        Always,
    )
)]
fn submit_job() {}

#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    summary = "List jobs",
    description = "One page of the jobs the filters match. Unknown parameters, a bad value or a \
                   repeated single-valued parameter are 400 `invalid_parameter` with `param`.",
    params(
        ("state" = Option<String>, Query, description = "Comma-separated job states; default scheduled,paused,held,firing"),
        ("app" = Option<String>, Query, description = "Only jobs of this app"),
        ("tenant" = Option<String>, Query, description = "Only jobs of this tenant"),
        ("label" = Option<Vec<String>>, Query, explode = true, description = "`key=value`; repeat for several (all must match)"),
        ("kind" = Option<jobs::JobKind>, Query, description = "Only jobs of this kind"),
        ("due_after" = Option<String>, Query, format = DateTime, description = "Next due at or after (RFC 3339)"),
        ("due_before" = Option<String>, Query, format = DateTime, description = "Next due before (RFC 3339)"),
        ("order" = Option<crate::query::Order>, Query, description = "`due` (default) or `created`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = jobs::JobList),
        (status = 400, description = "A bad parameter (`invalid_parameter`, `param` names it)", body = ErrorBody),
        Always,
    )
)]
fn list_jobs() {}

#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    summary = "Describe a job",
    params(
        ("id" = String, Path, description = "The job id"),
        ("next" = Option<u32>, Query, minimum = 0, maximum = 1000, description = "How many next fire times, default 5"),
        ("history" = Option<u32>, Query, description = "How many recent fires"),
    ),
    responses(
        (status = 200, description = "The job; the `ETag` header holds its etag", body = jobs::JobDescription),
        (status = 400, description = "A bad parameter (`invalid_parameter`)", body = ErrorBody),
        (status = 404, description = "No such job (`not_found`)", body = ErrorBody),
        Always,
    )
)]
fn describe_job() {}

#[utoipa::path(
    put, path = "/v1/jobs/{id}", tag = "jobs",
    summary = "Replace a job's schedule request",
    params(
        ("id" = String, Path, description = "The job id"),
        ("If-Match" = String, Header, description = "The etag the change is based on"),
    ),
    request_body(content = ScheduleRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced (status `updated`)", body = jobs::SubmitResponse),
        (status = 400, description = "The request cannot be scheduled", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job's state does not allow it", body = ErrorBody),
        (status = 412, description = "The job changed since the etag (`precondition_failed`)", body = ErrorBody),
        (status = 413, description = "The request is over the size limit", body = ErrorBody),
        Always,
    )
)]
fn replace_job() {}

#[utoipa::path(
    delete, path = "/v1/jobs/{id}", tag = "jobs",
    summary = "Cancel a job's pending fires",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "`cancelled` or `already_cancelled`", body = jobs::CancelResponse),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "No pending fire left (`already_dispatched`)", body = ErrorBody),
        Always,
    )
)]
fn cancel_job() {}

#[utoipa::path(
    post, path = "/v1/jobs/{id}/pause", tag = "jobs",
    summary = "Pause a job",
    params(("id" = String, Path, description = "The job id")),
    request_body(content = Option<jobs::PauseRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "`paused` or `already_paused`", body = jobs::ActionResponse),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job has no pending fire", body = ErrorBody),
        Always,
    )
)]
fn pause_job() {}

#[utoipa::path(
    post, path = "/v1/jobs/{id}/resume", tag = "jobs",
    summary = "Resume a paused job",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "`resumed` or `not_paused`", body = jobs::ActionResponse),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job has no pending fire", body = ErrorBody),
        Always,
    )
)]
fn resume_job() {}

#[utoipa::path(
    post, path = "/v1/jobs/{id}/trigger", tag = "jobs",
    summary = "Fire a job now, once",
    description = "The same `key` gives the same fire id: a retried request fires once.",
    params(("id" = String, Path, description = "The job id")),
    request_body(content = Option<jobs::TriggerRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "`triggered` (or `already_triggered` for a known key), with the fire id", body = jobs::ActionResponse),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job's state does not allow it (e.g. cancelled)", body = ErrorBody),
        Always,
    )
)]
fn trigger_job() {}

#[utoipa::path(
    post, path = "/v1/jobs/{id}/backfill", tag = "jobs",
    summary = "Fire every scheduled time in [from, to)",
    params(("id" = String, Path, description = "The job id")),
    request_body(content = jobs::BackfillRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "`backfilled`, with the fire ids", body = jobs::ActionResponse),
        (status = 400, description = "A bad range (or too many fire times in it)", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not recurring or not pending", body = ErrorBody),
        Always,
    )
)]
fn backfill_job() {}

#[utoipa::path(
    post, path = "/v1/jobs/{id}/reschedule", tag = "jobs",
    summary = "Move a job's next fire",
    params(("id" = String, Path, description = "The job id")),
    request_body(content = jobs::RescheduleRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "`rescheduled`, with the new `due_at`", body = jobs::ActionResponse),
        (status = 400, description = "Not exactly one of `run_at` and `delay`, or a bad time", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job has no pending fire", body = ErrorBody),
        Always,
    )
)]
fn reschedule_job() {}

#[utoipa::path(
    post, path = "/v1/apps/{app}/pause", tag = "pauses",
    summary = "Pause every job of an app (their state shows `held`)",
    params(("app" = String, Path, description = "The app")),
    request_body(content = Option<jobs::PauseRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "`paused` or `already_paused`", body = jobs::ScopeResponse),
        (status = 400, description = "A bad body or app name", body = ErrorBody),
        (status = 404, description = "Unknown app (when an app registry is configured)", body = ErrorBody),
        Always,
    )
)]
fn pause_app() {}

#[utoipa::path(
    post, path = "/v1/apps/{app}/resume", tag = "pauses",
    summary = "Resume an app",
    params(("app" = String, Path, description = "The app")),
    responses(
        (status = 200, description = "`resumed` or `not_paused`", body = jobs::ScopeResponse),
        (status = 404, description = "Unknown app", body = ErrorBody),
        Always,
    )
)]
fn resume_app() {}

#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/pause", tag = "pauses",
    summary = "Pause every job of a tenant (their state shows `held`)",
    params(("tenant" = String, Path, description = "The tenant")),
    request_body(content = Option<jobs::PauseRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "`paused` or `already_paused`", body = jobs::ScopeResponse),
        (status = 400, description = "A bad body or tenant name", body = ErrorBody),
        (status = 404, description = "A tenant the token may not see", body = ErrorBody),
        Always,
    )
)]
fn pause_tenant() {}

#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/resume", tag = "pauses",
    summary = "Resume a tenant",
    params(("tenant" = String, Path, description = "The tenant")),
    responses(
        (status = 200, description = "`resumed` or `not_paused`", body = jobs::ScopeResponse),
        (status = 404, description = "A tenant the token may not see", body = ErrorBody),
        Always,
    )
)]
fn resume_tenant() {}

#[utoipa::path(
    get, path = "/v1/pauses", tag = "pauses",
    summary = "The app and tenant pauses in force",
    responses((status = 200, description = "Every pause", body = jobs::PauseList), Always)
)]
fn list_pauses() {}

#[utoipa::path(
    get, path = "/v1/stats", tag = "stats",
    summary = "Count jobs",
    responses((status = 200, description = "The counts", body = stats::Stats), Always)
)]
fn stats() {}

#[utoipa::path(
    get, path = "/v1/whoami", tag = "stats",
    summary = "Who the bearer token is: its name, scopes and tenants (any valid token may ask)",
    responses((status = 200, description = "The caller", body = stats::Whoami), Always)
)]
fn whoami() {}

#[utoipa::path(
    get, path = "/v1/cluster", tag = "stats",
    summary = "The due index and every consumer group's lag, with the warnings that hold now",
    responses(
        (status = 200, description = "The figures, read every few seconds", body = stats::Cluster),
        (status = 403, description = "A token bound to tenants: these figures span every tenant", body = ErrorBody),
        (status = 503, description = "Not read yet (the service has just started)", body = ErrorBody),
        Always,
    )
)]
fn cluster() {}

#[utoipa::path(
    post, path = "/v1/schedules/preview", tag = "stats",
    summary = "The next fire times of a cron expression or interval",
    request_body(content = stats::PreviewRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The slots, with their local times, DST notes and calendar exclusions", body = stats::PreviewResponse),
        (status = 400, description = "A bad expression (`invalid_cron`, naming the field), interval, zone, policy, unknown calendar (`unknown_calendar`), or `n` / `to` beyond their bounds (`invalid_parameter`)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        Always,
    )
)]
fn preview() {}

#[utoipa::path(
    get, path = "/v1/calendars", tag = "calendars",
    summary = "Every exclusion calendar, from the config and the API",
    responses((status = 200, description = "The calendars, by name", body = calendars::CalendarList), Always)
)]
fn list_calendars() {}

#[utoipa::path(
    get, path = "/v1/calendars/{name}", tag = "calendars",
    summary = "One exclusion calendar",
    params(("name" = String, Path, description = "The calendar name")),
    responses(
        (status = 200, description = "The calendar", body = calendars::CalendarInfo),
        (status = 404, description = "No such calendar", body = ErrorBody),
        Always,
    )
)]
fn get_calendar() {}

#[utoipa::path(
    put, path = "/v1/calendars/{name}", tag = "calendars",
    summary = "Create or replace an exclusion calendar",
    description = "The scheduler sees a new calendar at once and a changed one within 5 s.",
    params(("name" = String, Path, description = "The calendar name (1 to 64 of `A-Z a-z 0-9 . _ -`)")),
    request_body(content = calendars::Calendar, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = calendars::CalendarInfo),
        (status = 200, description = "Replaced", body = calendars::CalendarInfo),
        (status = 400, description = "A bad name or calendar (`invalid_parameter` naming the field)", body = ErrorBody),
        (status = 409, description = "A config calendar (`read_only`), or 1000 calendars exist (`limit_reached`)", body = ErrorBody),
        Always,
    )
)]
fn put_calendar() {}

#[utoipa::path(
    delete, path = "/v1/calendars/{name}", tag = "calendars",
    summary = "Delete an exclusion calendar",
    description = "Jobs that still attach it fire as if it were empty (within 5 s) until a                    calendar of that name exists again.",
    params(("name" = String, Path, description = "The calendar name")),
    responses(
        (status = 200, description = "Deleted, or there was none", body = calendars::CalendarDeleted),
        (status = 409, description = "A config calendar (`read_only`)", body = ErrorBody),
        Always,
    )
)]
fn delete_calendar() {}

#[utoipa::path(
    post, path = "/v1/operations", tag = "operations",
    summary = "Start a bulk operation",
    description = "Acts on every job the selector matches, at `rate` jobs per second, \
                   crash-safe and never twice on one job. A dry run only counts.",
    request_body(content = ops::OperationRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Started", body = ops::Operation),
        (status = 200, description = "Dry run: `estimate` is the count", body = ops::Operation),
        (status = 400, description = "A bad action, selector or offset", body = ErrorBody),
        (status = 409, description = "Another operation already acts on these jobs", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        Always,
    )
)]
fn create_operation() {}

#[utoipa::path(
    get, path = "/v1/operations", tag = "operations",
    summary = "List operations, newest first",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = ops::OperationList),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        Always,
    )
)]
fn list_operations() {}

#[utoipa::path(
    get, path = "/v1/operations/{id}", tag = "operations",
    summary = "One operation",
    params(("id" = String, Path, description = "The operation id")),
    responses(
        (status = 200, description = "The operation", body = ops::Operation),
        (status = 404, description = "No such operation", body = ErrorBody),
        Always,
    )
)]
fn get_operation() {}

#[utoipa::path(
    post, path = "/v1/operations/{id}/cancel", tag = "operations",
    summary = "Stop an operation",
    params(("id" = String, Path, description = "The operation id")),
    responses(
        (status = 200, description = "The operation, `cancelled` (or already ended)", body = ops::Operation),
        (status = 404, description = "No such operation", body = ErrorBody),
        (status = 409, description = "It already ended", body = ErrorBody),
        Always,
    )
)]
fn cancel_operation() {}

#[utoipa::path(
    get, path = "/v1/dlq", tag = "dlq",
    summary = "List dead letters",
    params(
        ("app" = Option<String>, Query, description = "`sked-app` equals"),
        ("reason" = Option<String>, Query, description = "`sked-reason` equals"),
        ("stage" = Option<String>, Query, description = "`ingest` or `execute`"),
        ("error" = Option<String>, Query, description = "`error-message` contains (case-insensitive)"),
        ("since" = Option<String>, Query, description = "Failed at or after: RFC 3339 or epoch ms"),
        ("until" = Option<String>, Query, description = "Failed before: RFC 3339 or epoch ms"),
        ("job_id" = Option<String>, Query, description = "`sked-job-id` equals"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 10000, description = "Most letters, default 100"),
        ("order" = Option<dlq::Order>, Query, description = "`newest` (default) or `offset`"),
    ),
    responses(
        (status = 200, description = "The matching letters", body = dlq::LetterList),
        (status = 400, description = "A bad filter (`invalid_field`)", body = ErrorBody),
        Always,
    )
)]
fn list_letters() {}

#[utoipa::path(
    get, path = "/v1/dlq/stats", tag = "dlq",
    summary = "Count dead letters by app, reason and stage",
    params(
        ("app" = Option<String>, Query, description = "`sked-app` equals"),
        ("reason" = Option<String>, Query, description = "`sked-reason` equals"),
        ("stage" = Option<String>, Query, description = "`ingest` or `execute`"),
        ("error" = Option<String>, Query, description = "`error-message` contains (case-insensitive)"),
        ("since" = Option<String>, Query, description = "Failed at or after: RFC 3339 or epoch ms"),
        ("until" = Option<String>, Query, description = "Failed before: RFC 3339 or epoch ms"),
        ("job_id" = Option<String>, Query, description = "`sked-job-id` equals"),
    ),
    responses(
        (status = 200, description = "The counts", body = dlq::DlqStats),
        (status = 400, description = "A bad filter (`invalid_field`)", body = ErrorBody),
        Always,
    )
)]
fn letter_stats() {}

#[utoipa::path(
    get, path = "/v1/dlq/{partition}/{offset}", tag = "dlq",
    summary = "One dead letter in full",
    params(
        ("partition" = i32, Path, description = "DLQ partition"),
        ("offset" = i64, Path, description = "DLQ offset"),
    ),
    responses(
        (status = 200, description = "The letter", body = dlq::LetterDetail),
        (status = 400, description = "Not whole numbers (`invalid_field`)", body = ErrorBody),
        (status = 404, description = "No dead letter there", body = ErrorBody),
        Always,
    )
)]
fn show_letter() {}

#[utoipa::path(
    post, path = "/v1/dlq/replays", tag = "dlq",
    summary = "Replay dead letters to their original topic",
    request_body(content = dlq::ReplayRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Started", body = dlq::ReplayProgress),
        (status = 200, description = "Dry run, or nothing to publish", body = dlq::ReplayProgress),
        (status = 400, description = "A bad filter or target (`invalid_field`)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        Always,
    )
)]
fn start_replay() {}

#[utoipa::path(
    get, path = "/v1/dlq/replays", tag = "dlq",
    summary = "The latest replays, newest first",
    params(("limit" = Option<usize>, Query, description = "At most this many, 1 to 1000 (default 50)")),
    responses(
        (status = 200, description = "The replays the caller may see", body = dlq::ReplayList),
        (status = 400, description = "A bad limit (`invalid_field`)", body = ErrorBody),
        Always,
    )
)]
fn list_replays() {}

#[utoipa::path(
    get, path = "/v1/dlq/replays/{id}", tag = "dlq",
    summary = "A replay's progress",
    params(("id" = String, Path, description = "The replay id")),
    responses(
        (status = 200, description = "The progress", body = dlq::ReplayProgress),
        (status = 404, description = "No such replay", body = ErrorBody),
        Always,
    )
)]
fn replay_progress() {}

#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "stats",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object), Always)
)]
fn openapi_document() {}
