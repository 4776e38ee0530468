//! Jobs and schedules: list and search with the API's filters, the detail page with its
//! timeline, fires and actions, submitting and cloning a job, and schedule previews.

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, Method, StatusCode},
    response::Response,
};
use maud::{Markup, html};
use serde_json::{Value, json};
use sked_api::{
    jobs::{ActionResponse, CancelResponse, JobDescription, JobKind, JobList, SubmitResponse},
    stats::{PreviewRequest, PreviewResponse},
};

use super::{Nav, csrf, failure, layout, millis, notice, page, pretty, row, time, time_opt};
use crate::{
    App,
    api::{Api, Failure, query, seg},
    session::Session,
    web::{Fields, Signed, check_post, done},
};

/// The list filters, as the API names them: (parameter, label, placeholder).
pub const FILTERS: [(&str, &str, &str); 8] = [
    ("state", "State", "scheduled,paused (default: pending)"),
    ("app", "App", "sms"),
    ("tenant", "Tenant", "acme"),
    ("label", "Labels", "team=growth region=eu"),
    ("kind", "Kind", ""),
    ("due_after", "Due after", "2026-12-01T00:00:00Z"),
    ("due_before", "Due before", "2026-12-31T00:00:00Z"),
    ("payload", "Payload contains", "\"order_id\":42"),
];

/// A time as typed in a filter: RFC 3339 as it is; a zone-less `2026-12-01T10:00` (what a
/// browser's date-time field sends) is read as UTC.
fn time_param(raw: &str) -> String {
    let raw = raw.trim();
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, format) {
            return format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S"));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return format!("{d}T00:00:00Z");
    }
    raw.to_owned()
}

/// The filter of a form or query as API parameters: labels split on blanks and commas, times
/// normalised, everything else as typed (the API checks it and names what is wrong).
pub fn filter_pairs(f: &Fields) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, _, _) in FILTERS {
        for v in f.all(name) {
            match name {
                "label" => out.extend(
                    v.split(|c: char| c.is_whitespace() || c == ',')
                        .filter(|l| !l.is_empty())
                        .map(|l| ("label".to_owned(), l.to_owned())),
                ),
                "due_after" | "due_before" => out.push((name.to_owned(), time_param(v))),
                _ => out.push((name.to_owned(), v.to_owned())),
            }
        }
    }
    out
}

fn qs(pairs: &[(String, String)]) -> String {
    query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The filter fields, filled from `f`.
pub fn filter_form_fields(f: &Fields, kinds: &[&str]) -> Markup {
    let labels = f.all("label").collect::<Vec<_>>().join(" ");
    html! {
        @for (name, label, hint) in FILTERS {
            div.field {
                label for=(format!("f-{name}")) { (label) }
                @if name == "kind" {
                    select id=(format!("f-{name}")) name="kind" {
                        option value="" { "any" }
                        @for k in kinds {
                            option value=(k) selected[f.get("kind") == Some(*k)] { (k) }
                        }
                    }
                } @else if name == "label" {
                    input id="f-label" name="label" value=(labels) placeholder=(hint);
                } @else {
                    input id=(format!("f-{name}")) name=(name) value=(f.get(name).unwrap_or("")) placeholder=(hint);
                }
            }
        }
    }
}

/// The filter form: GET to `action`, fields filled from `f`.
pub fn filter_form(app: &App, action: &str, f: &Fields, kinds: &[&str], extra: Markup) -> Markup {
    html! {
        form.filters method="get" action=(app.href(action)) role="search" aria-label="Filter jobs" {
            (filter_form_fields(f, kinds))
            (extra)
            div.field.buttons { button type="submit" data-test="filter" { "Search" } }
        }
    }
}

/// `GET /jobs`.
pub async fn list(State(app): State<App>, Signed(s): Signed, RawQuery(q): RawQuery) -> Response {
    let f = Fields::parse(q.unwrap_or_default().as_bytes());
    list_page(&app, &s, &f, Nav::Jobs, "/jobs", &["once", "cron", "every"]).await
}

/// `GET /schedules`: recurring jobs (cron by default).
pub async fn schedules(
    State(app): State<App>,
    Signed(s): Signed,
    RawQuery(q): RawQuery,
) -> Response {
    let mut f = Fields::parse(q.unwrap_or_default().as_bytes());
    if f.get("kind").is_none() {
        f.0.push(("kind".into(), "cron".into()));
    }
    list_page(
        &app,
        &s,
        &f,
        Nav::Schedules,
        "/schedules",
        &["cron", "every"],
    )
    .await
}

async fn list_page(
    app: &App,
    s: &Session,
    f: &Fields,
    nav: Nav,
    path: &str,
    kinds: &[&str],
) -> Response {
    let mut pairs = filter_pairs(f);
    for key in ["order", "limit", "cursor"] {
        if let Some(v) = f.get(key) {
            pairs.push((key.to_owned(), v.to_owned()));
        }
    }
    let answer = app
        .api
        .get::<JobList>(Api::Rest, s.token(), &format!("/v1/jobs{}", qs(&pairs)))
        .await;
    let title = if nav == Nav::Schedules {
        "Schedules"
    } else {
        "Jobs"
    };
    let filter_only: Vec<_> = filter_pairs(f);
    let extra = html! {
        div.field {
            label for="f-order" { "Order" }
            select #f-order name="order" {
                option value="due" selected[f.get("order") != Some("created")] { "next due" }
                option value="created" selected[f.get("order") == Some("created")] { "created" }
            }
        }
        div.field {
            label for="f-limit" { "Per page" }
            input #f-limit name="limit" type="number" min="1" max="1000" value=(f.get("limit").unwrap_or("50"));
        }
    };
    let write = s.may("jobs:write");
    let body = html! {
        (notice(f.get("done")))
        (filter_form(app, path, f, kinds, extra))
        p.actions {
            @if s.may("ops:write") {
                a.button href=(format!("{}{}", app.href("/ops"), qs(&filter_only))) data-test="bulk-link" { "Act on all matching this filter…" }
            }
            @if write { " " a.button href=(app.href("/jobs/new")) { "New job" } }
        }
        @match answer {
            Err(e) => {
                div.error role="alert" data-test="error" {
                    p { strong { (e.status.as_u16()) " " (e.code) } ": " (e.message) }
                }
            }
            Ok(list) => {
                form method="post" action=(app.href("/jobs/selected")) {
                    @if write { (csrf(s)) }
                    div #jobs-live data-live {
                        table.jobs data-test="jobs" {
                            caption.visually-hidden { (title) }
                            thead { tr {
                                @if write { th scope="col" { span.visually-hidden { "Select" } } }
                                th scope="col" { "id" } th scope="col" { "app" } th scope="col" { "tenant" }
                                th scope="col" { "state" } th scope="col" { "next due" } th scope="col" { "schedule" } th scope="col" { "labels" }
                            } }
                            tbody {
                                @if list.jobs.is_empty() { tr { td colspan="8" data-test="empty" { "No job matches." } } }
                                @for j in &list.jobs {
                                    tr data-job=(j.id) {
                                        @if write { td { input type="checkbox" name="id" value=(j.id) aria-label=(format!("Select job {}", j.id)); } }
                                        td { a href=(app.href(&format!("/jobs/{}", seg(&j.id)))) { code { (j.id) } } }
                                        td { (j.app) }
                                        td { (j.tenant.as_deref().unwrap_or("—")) }
                                        td { span class=(format!("state {}", j.state.as_str())) { (j.state.as_str()) } }
                                        td { (time_opt(j.next_due.as_ref())) }
                                        td { code { (j.schedule) } }
                                        td { @for (k, v) in &j.labels { span.label { (k) "=" (v) } " " } }
                                    }
                                }
                            }
                        }
                    }
                    @if write && !list.jobs.is_empty() {
                        div.selected-actions {
                            label for="sel-action" { "With the selected jobs: " }
                            select #sel-action name="action" {
                                option value="pause" { "pause" }
                                option value="resume" { "resume" }
                                option value="trigger" { "trigger now" }
                                option value="cancel" { "cancel" }
                            }
                            " "
                            button type="submit" data-confirm="Act on the selected jobs?" { "Apply" }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if f.get("cursor").is_some() {
                        a href=(format!("{}{}", app.href(path), qs(&without(&pairs, "cursor")))) { "First page" } " "
                    }
                    @if let Some(c) = &list.next_cursor {
                        a href=(format!("{}{}", app.href(path), qs(&with(&pairs, "cursor", c)))) rel="next" data-test="next-page" { "Next page" }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, layout(app, Some(s), nav, title, body))
}

fn without(pairs: &[(String, String)], key: &str) -> Vec<(String, String)> {
    pairs.iter().filter(|(k, _)| k != key).cloned().collect()
}

fn with(pairs: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut out = without(pairs, key);
    out.push((key.to_owned(), value.to_owned()));
    out
}

/// `POST /jobs/selected`: one API call per selected job, each checked and audited there.
pub async fn act_on_selected(
    State(app): State<App>,
    Signed(s): Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    if let Some(refused) = check_post(&app, &s, &headers, &f) {
        return refused;
    }
    let Some(action) = f
        .get("action")
        .filter(|a| ["pause", "resume", "trigger", "cancel"].contains(a))
    else {
        return failure(
            &app,
            Some(&s),
            &Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "action: one of pause, resume, trigger, cancel",
            ),
        );
    };
    let ids: Vec<&str> = f.all("id").take(1000).collect();
    let mut ok = 0usize;
    for id in &ids {
        match call_verb(&app, &s, id, action, &Fields::default()).await {
            Ok(_) => ok += 1,
            Err(e) if e.status == StatusCode::FORBIDDEN || e.status == StatusCode::UNAUTHORIZED => {
                return failure(&app, Some(&s), &e);
            }
            Err(_) => {}
        }
    }
    done(&app, "/jobs", &format!("{action}_{ok}_of_{}", ids.len()))
}

fn next_n(f: &Fields, name: &str, default: u32, max: u32) -> u32 {
    f.get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

/// `GET /jobs/{id}`.
pub async fn detail(
    State(app): State<App>,
    Signed(s): Signed,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let f = Fields::parse(q.unwrap_or_default().as_bytes());
    let path = format!(
        "/v1/jobs/{}?next={}&history={}",
        seg(&id),
        next_n(&f, "next", 10, 1000),
        next_n(&f, "history", 20, 100)
    );
    let d = match app
        .api
        .get::<JobDescription>(Api::Rest, s.token(), &path)
        .await
    {
        Ok(d) => d,
        Err(e) => return failure(&app, Some(&s), &e),
    };
    let title = format!("Job {}", d.id);
    page(
        StatusCode::OK,
        layout(
            &app,
            Some(&s),
            Nav::Jobs,
            &title,
            detail_body(&app, &s, &d, f.get("done")),
        ),
    )
}

fn timeline(d: &JobDescription) -> Markup {
    let last = d.history.first();
    html! {
        ol.timeline data-test="timeline" {
            li { span.step { "scheduled" } " " (d.schedule) }
            @if let Some(fire) = last {
                li { span.step { "due" } " " (time(&fire.due_at)) }
                li {
                    span.step { "fired" } " "
                    @if let Some(at) = &fire.fired_at { (time(at)) } @else { "not yet" }
                    @if let Some(ms) = fire.lateness_ms { " · " span data-test="lateness" { (millis(ms)) " late" } }
                    " · fire " code { (fire.fire_id) }
                }
            } @else if let Some(next) = &d.next_due {
                li { span.step { "due" } " " (time(next)) }
            }
            @if let Some(a) = d.attempts.first() {
                li data-test="last-attempt" {
                    span.step { "started" } " " (time(&a.started_at))
                    " · attempt " (a.attempt) @if a.replay > 0 { " of replay " (a.replay) }
                    @if let Some(w) = &a.worker { " on " code { (w) } }
                }
                li { span.step { "finished" } " " (time(&a.finished_at)) " · " (a.outcome) " after " (millis(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))) }
            }
            @if let Some(run) = &d.run {
                li {
                    span.step { "run" } " " strong data-test="run-state" { (run.state) }
                    " · attempts " (run.attempts)
                    @if let Some(ms) = run.last_duration_ms { " · took " (millis(i64::try_from(ms).unwrap_or(i64::MAX))) }
                    @if let Some(at) = &run.updated_at { " · " (time(at)) }
                    @if let Some(e) = &run.last_error {
                        @if run.state == "succeeded" { div.muted { "Error of an earlier attempt: " (e) } }
                        @else { div.error { "Last error: " (e) } }
                    }
                }
            }
        }
    }
}

/// Every attempt the worker recorded (the latest 20), with its error, trace id and the
/// headers of the record it ran.
fn attempts(d: &JobDescription) -> Markup {
    html! {
        h2 { "Attempts" }
        table.attempts data-test="attempts" {
            thead { tr { th scope="col" { "fire id" } th scope="col" { "attempt" } th scope="col" { "outcome" } th scope="col" { "started" } th scope="col" { "took" } th scope="col" { "trace id" } th scope="col" { "error and headers" } } }
            tbody {
                @if d.attempts.is_empty() { tr { td colspan="7" { "No attempt recorded (none finished yet, or older than " code { "redis.idempotency_ttl" } ")." } } }
                @for a in &d.attempts {
                    tr data-test="attempt" data-outcome=(a.outcome) {
                        td { code { (a.fire_id) } }
                        td.num { (a.attempt) @if a.replay > 0 { " (replay " (a.replay) ")" } }
                        td { span class=(format!("state {}", a.outcome)) { (a.outcome) } }
                        td { (time(&a.started_at)) @if let Some(w) = &a.worker { br; span.muted { "on " code { (w) } } } }
                        td.num { (millis(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))) }
                        td { @if let Some(t) = &a.trace_id { code data-test="trace-id" { (t) } } }
                        td {
                            @if let Some(e) = &a.error { div.error data-test="attempt-error" { (e) } }
                            @if !a.headers.is_empty() {
                                details {
                                    summary { (a.headers.len()) " headers" }
                                    dl.headers { @for (k, v) in &a.headers { dt { code { (k) } } dd { code { (v) } } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn detail_body(app: &App, s: &Session, d: &JobDescription, done_msg: Option<&str>) -> Markup {
    let base = format!("/jobs/{}", seg(&d.id));
    let write = s.may("jobs:write");
    let recurring = d.kind != JobKind::Once;
    let spec = d.job.value();
    let finished = matches!(d.state.as_str(), "succeeded" | "dead" | "cancelled");
    html! {
        (notice(done_msg))
        div #job-live data-live {
            dl.summary {
                (row("state", html! { span class=(format!("state {}", d.state.as_str())) data-test="state" { (d.state.as_str()) } }))
                (row("app", html! { (d.app) }))
                (row("tenant", html! { (d.tenant.as_deref().unwrap_or("—")) }))
                (row("schedule", html! { code { (d.schedule) } }))
                @if !d.description.is_empty() { (row("in words", html! { (d.description) })) }
                @if !d.calendars.is_empty() { (row("calendars", html! { (d.calendars.join(", ")) })) }
                @if let Some(dst) = spec.pointer("/schedule/dst") { (row("DST policy", html! { code { (dst) } })) }
                (row("next due", time_opt(d.next_due.as_ref())))
                (row("labels", html! { @for (k, v) in &d.labels { span.label data-test="label" { (k) "=" (v) } " " } }))
                @if let Some(p) = &d.paused {
                    (row("paused", html! {
                        span data-test="paused" { "by " (p.scope.as_str()) " since " (time(&p.at)) }
                        @if let Some(n) = &p.note { " — " q data-test="pause-note" { (n) } }
                    }))
                }
                (row("etag", html! { code { (d.etag) } }))
            }
            h2 { "Timeline" }
            (timeline(d))
            div.columns {
                section {
                    h2 { "Next fires" }
                    @if d.next.is_empty() { p.muted { "None left." } }
                    ol.next data-test="next" { @for t in &d.next { li { (time(t)) } } }
                }
                section {
                    h2 { "Counters" }
                    dl.counters {
                        (row("fired", html! { (d.counters.fired) }))
                        (row("missed", html! { (d.counters.missed) }))
                        (row("skipped", html! { (d.counters.skipped) }))
                        (row("excluded", html! { (d.counters.excluded) }))
                        (row("retried", html! { (d.counters.retried) }))
                        (row("dead", html! { (d.counters.dead) }))
                        (row("triggered", html! { (d.counters.triggered) }))
                        (row("backfilled", html! { (d.counters.backfilled) }))
                    }
                }
            }
            h2 { "Past fires" }
            table.history data-test="history" {
                thead { tr { th scope="col" { "fire id" } th scope="col" { "due" } th scope="col" { "fired" } th scope="col" { "lateness" } th scope="col" { "origin" } th scope="col" { "outcome" } th scope="col" { "attempts" } } }
                tbody {
                    @if d.history.is_empty() {
                        tr { td colspan="7" {
                            @if d.kind == JobKind::Once { "A one-shot job keeps no fire history: see its run above and its attempts below." }
                            @else { "No fire yet." }
                        } }
                    }
                    @for h in &d.history {
                        tr data-fire=(h.fire_id) {
                            td { code { (h.fire_id) } }
                            td { (time(&h.due_at)) }
                            td { (time_opt(h.fired_at.as_ref())) }
                            td.num { @if let Some(ms) = h.lateness_ms { (millis(ms)) } }
                            td { (format!("{:?}", h.origin).to_lowercase()) }
                            td { (format!("{:?}", h.outcome).to_lowercase()) }
                            td.num { @if let Some(a) = h.attempts { (a) } }
                        }
                    }
                }
            }
            @if d.kind != JobKind::Once {
                h2 { "Slots not fired" }
                p.muted { "Skipped (missed, and dropped by the misfire policy) or excluded by a calendar; the counters above count every one, this lists the latest (10 a round at most)." }
                table.slots data-test="slots" {
                    thead { tr { th scope="col" { "due" } th scope="col" { "outcome" } th scope="col" { "passed over" } } }
                    tbody {
                        @if d.slots.is_empty() { tr { td colspan="3" { "None: every slot so far fired." } } }
                        @for sl in &d.slots {
                            tr data-test="slot" data-outcome=(sl.outcome) {
                                td { (time(&sl.due_at)) }
                                td { (sl.outcome) }
                                td { (time(&sl.noted_at)) }
                            }
                        }
                    }
                }
            }
            (attempts(d))
        }
        @if write && !finished {
            section.actions aria-label="Actions" data-test="actions" {
                h2 { "Actions" }
                div.action-row {
                    @if d.paused.as_ref().is_some_and(|p| p.scope.as_str() == "job") {
                        form method="post" action=(app.href(&format!("{base}/resume"))) {
                            (csrf(s)) button type="submit" data-test="resume" { "Resume" }
                        }
                    } @else {
                        form method="post" action=(app.href(&format!("{base}/pause"))) {
                            (csrf(s))
                            label for="pause-note" { "Note" }
                            input #pause-note name="note" maxlength="500" placeholder="why, for the next operator";
                            button type="submit" data-test="pause" { "Pause" }
                        }
                    }
                    form method="post" action=(app.href(&format!("{base}/trigger"))) {
                        (csrf(s))
                        input type="hidden" name="key" value=(uuid_like());
                        button type="submit" data-test="trigger" { "Trigger now" }
                    }
                    form method="post" action=(app.href(&format!("{base}/cancel"))) {
                        (csrf(s)) button.danger type="submit" data-test="cancel" data-confirm="Cancel this job?" { "Cancel job" }
                    }
                }
                @if recurring {
                    form.inline method="post" action=(app.href(&format!("{base}/backfill"))) {
                        (csrf(s))
                        label for="bf-from" { "Backfill from" } input #bf-from name="from" required placeholder="2026-12-01T00:00:00Z";
                        label for="bf-to" { "to (exclusive)" } input #bf-to name="to" required placeholder="2026-12-02T00:00:00Z";
                        button type="submit" data-test="backfill" { "Backfill" }
                    }
                } @else {
                    form.inline method="post" action=(app.href(&format!("{base}/reschedule"))) {
                        (csrf(s))
                        label for="rs-at" { "Run at" } input #rs-at name="run_at" placeholder="2026-12-02T10:00:00Z";
                        label for="rs-delay" { "or after" } input #rs-delay name="delay" placeholder="15m";
                        button type="submit" data-test="reschedule" { "Reschedule" }
                    }
                }
                p { a href=(format!("{}?from={}", app.href("/jobs/new"), seg(&d.id))) data-test="clone" { "Clone as a new job…" } }
            }
        }
        @if recurring {
            section {
                h2 { "Preview an edited schedule" }
                (preview_form(app, &Fields(vec![
                    ("cron".into(), spec.pointer("/schedule/expr").and_then(Value::as_str).unwrap_or("").into()),
                    ("timezone".into(), spec.pointer("/schedule/tz").and_then(Value::as_str).unwrap_or("").into()),
                ])))
            }
        }
        section {
            h2 { "Payload" }
            @let payload = spec.get("payload").map(|p| p.to_string()).unwrap_or_default();
            pre.payload data-test="payload" { (pretty(&payload)) }
            details {
                summary { "Raw job spec (as stored)" }
                pre.raw { (d.job.get()) }
            }
        }
        @if write && !finished {
            section {
                h2 { "Update" }
                p.hint { "Replaces the job (" code { "PUT /v1/jobs/{id}" } " with " code { "If-Match" } "): if it changed since this page loaded, nothing is changed and you are told." }
                form method="post" action=(app.href(&format!("{base}/update"))) {
                    (csrf(s))
                    input type="hidden" name="etag" value=(d.etag);
                    label for="upd-spec" { "Schedule request (JSON)" }
                    textarea #upd-spec name="spec" rows="12" spellcheck="false" { (request_of(&spec, Some(&d.id))) }
                    button type="submit" data-test="update" { "Save" }
                }
            }
        }
    }
}

/// A random-enough idempotency key for a trigger form (sent twice, it fires once).
fn uuid_like() -> String {
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        return String::new();
    }
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// A native schedule request that recreates a stored job spec (for clone and update).
fn request_of(spec: &Value, id: Option<&str>) -> String {
    let mut req = serde_json::Map::new();
    if let Some(id) = id {
        req.insert("id".into(), json!(id));
    }
    for key in [
        "app",
        "tenant",
        "labels",
        "payload",
        "priority",
        "calendars",
    ] {
        if let Some(v) = spec.get(key) {
            req.insert(key.into(), v.clone());
        }
    }
    let sched = spec.get("schedule").cloned().unwrap_or(Value::Null);
    match sched.get("kind").and_then(Value::as_str) {
        Some("cron") => {
            for (from, to) in [
                ("expr", "cron"),
                ("tz", "timezone"),
                ("dst", "dst"),
                ("dom_dow", "dom_dow"),
                ("start_at", "start_at"),
                ("end_at", "end_at"),
                ("max_runs", "max_runs"),
                ("misfire", "misfire"),
            ] {
                if let Some(v) = sched.get(from) {
                    req.insert(to.into(), v.clone());
                }
            }
        }
        Some("every") => {
            if let Some(ms) = sched.get("interval_ms").and_then(Value::as_u64) {
                req.insert("every".into(), json!(format!("{ms}ms")));
            }
            for key in ["start_at", "end_at", "max_runs", "misfire"] {
                if let Some(v) = sched.get(key) {
                    req.insert(key.into(), v.clone());
                }
            }
        }
        _ => match (id, sched.get("at")) {
            (Some(_), Some(at)) => {
                req.insert("run_at".into(), at.clone());
            }
            _ => {
                req.insert("delay".into(), json!("1m"));
            }
        },
    }
    serde_json::to_string_pretty(&Value::Object(req)).unwrap_or_default()
}

async fn call_verb(
    app: &App,
    s: &Session,
    id: &str,
    verb: &str,
    f: &Fields,
) -> Result<String, Failure> {
    let path = format!("/v1/jobs/{}", seg(id));
    let (t, api) = (s.token(), &app.api);
    let post = |sub: &'static str, body: Value| {
        let path = format!("{path}/{sub}");
        async move {
            api.call::<ActionResponse, _>(Api::Rest, Method::POST, t, &path, Some(&body), &[])
                .await
                .map(|a| a.status)
        }
    };
    match verb {
        "cancel" => api
            .call::<CancelResponse, ()>(Api::Rest, Method::DELETE, t, &path, None, &[])
            .await
            .map(|c| c.status),
        "pause" => post("pause", json!({ "note": f.get("note") })).await,
        "resume" => post("resume", json!({})).await,
        "trigger" => {
            post(
                "trigger",
                f.get("key").map_or(json!({}), |k| json!({ "key": k })),
            )
            .await
        }
        "backfill" => {
            post(
                "backfill",
                json!({ "from": f.get("from").map(time_param), "to": f.get("to").map(time_param) }),
            )
            .await
        }
        "reschedule" => {
            let body = match (f.get("run_at"), f.get("delay")) {
                (Some(at), _) => json!({ "run_at": time_param(at) }),
                (None, Some(d)) => json!({ "delay": d }),
                (None, None) => {
                    return Err(Failure {
                        param: Some("run_at".into()),
                        ..Failure::new(
                            StatusCode::BAD_REQUEST,
                            "invalid_parameter",
                            "give a time to run at, or a delay",
                        )
                    });
                }
            };
            post("reschedule", body).await
        }
        "update" => {
            let spec: Value =
                serde_json::from_str(f.get("spec").unwrap_or("")).map_err(|e| Failure {
                    param: Some("spec".into()),
                    ..Failure::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_json",
                        format!("the schedule request is not JSON: {e}"),
                    )
                })?;
            let etag = f.get("etag").unwrap_or("");
            api.call::<SubmitResponse, _>(
                Api::Rest,
                Method::PUT,
                t,
                &path,
                Some(&spec),
                &[("if-match", etag)],
            )
            .await
            .map(|r| format!("{:?}", r.status).to_lowercase())
        }
        _ => Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such action",
        )),
    }
}

/// `POST /jobs/{id}/{verb}`: pause, resume, trigger, cancel, backfill, reschedule, update.
/// The API decides: a token without `jobs:write` is refused there (403), whatever the form.
pub async fn verb(
    State(app): State<App>,
    Signed(s): Signed,
    Path((id, verb)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    if let Some(refused) = check_post(&app, &s, &headers, &f) {
        return refused;
    }
    match call_verb(&app, &s, &id, &verb, &f).await {
        Ok(status) => done(&app, &format!("/jobs/{}", seg(&id)), &status),
        Err(e) => failure(&app, Some(&s), &e),
    }
}

/// `GET /jobs/new`, or `?from=<id>` to clone a job.
pub async fn new_form(
    State(app): State<App>,
    Signed(s): Signed,
    RawQuery(q): RawQuery,
) -> Response {
    let f = Fields::parse(q.unwrap_or_default().as_bytes());
    let spec = match f.get("from") {
        Some(from) => {
            match app
                .api
                .get::<JobDescription>(
                    Api::Rest,
                    s.token(),
                    &format!("/v1/jobs/{}?next=1&history=1", seg(from)),
                )
                .await
            {
                Ok(d) => request_of(&d.job.value(), None),
                Err(e) => return failure(&app, Some(&s), &e),
            }
        }
        None => "{\n  \"app\": \"\",\n  \"delay\": \"1m\",\n  \"payload\": {}\n}".to_owned(),
    };
    new_page(&app, &s, &spec, None)
}

fn new_page(app: &App, s: &Session, spec: &str, error: Option<&Failure>) -> Response {
    let body = html! {
        @if let Some(e) = error {
            div.error role="alert" data-test="error" {
                strong { (e.status.as_u16()) " " (e.code) } ": " (e.message)
                @if let Some(p) = &e.param { " (" code { (p) } ")" }
            }
        }
        p.hint { "A schedule request as the ingest topic and " code { "POST /v1/jobs" } " take it (docs/schedules.md)." }
        form method="post" action=(app.href("/jobs")) {
            (csrf(s))
            label for="new-spec" { "Schedule request (JSON)" }
            textarea #new-spec name="spec" rows="16" spellcheck="false" required { (spec) }
            button type="submit" data-test="submit" { "Submit" }
        }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    page(status, layout(app, Some(s), Nav::Jobs, "New job", body))
}

/// `POST /jobs`: submit a job.
pub async fn submit(
    State(app): State<App>,
    Signed(s): Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    if let Some(refused) = check_post(&app, &s, &headers, &f) {
        return refused;
    }
    let text = f.get("spec").unwrap_or("");
    let spec: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let e = Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("not JSON: {e}"),
            );
            return new_page(&app, &s, text, Some(&e));
        }
    };
    match app
        .api
        .call::<SubmitResponse, _>(
            Api::Rest,
            Method::POST,
            s.token(),
            "/v1/jobs",
            Some(&spec),
            &[],
        )
        .await
    {
        Ok(r) => done(&app, &format!("/jobs/{}", seg(&r.id)), "submitted"),
        Err(e) => new_page(&app, &s, text, Some(&e)),
    }
}

fn preview_form(app: &App, f: &Fields) -> Markup {
    html! {
        form.inline method="get" action=(app.href("/preview")) {
            label for="pv-cron" { "Cron" } input #pv-cron name="cron" value=(f.get("cron").unwrap_or("")) placeholder="0 30 2 * * *";
            label for="pv-every" { "or every" } input #pv-every name="every" value=(f.get("every").unwrap_or("")) placeholder="30m";
            label for="pv-tz" { "Zone" } input #pv-tz name="timezone" value=(f.get("timezone").unwrap_or("")) placeholder="America/New_York";
            label for="pv-n" { "Slots" } input #pv-n name="n" type="number" min="1" max="1000" value=(f.get("n").unwrap_or("10"));
            button type="submit" data-test="preview" { "Preview" }
        }
    }
}

/// `GET /preview`: the next slots of an expression or interval (`POST /v1/schedules/preview`).
pub async fn preview(State(app): State<App>, Signed(s): Signed, RawQuery(q): RawQuery) -> Response {
    let f = Fields::parse(q.unwrap_or_default().as_bytes());
    let asked = f.get("cron").is_some() || f.get("every").is_some();
    let result = if asked {
        let req = PreviewRequest {
            cron: f.get("cron").map(str::to_owned),
            every: f.get("every").map(str::to_owned),
            timezone: f.get("timezone").map(str::to_owned),
            n: Some(next_n(&f, "n", 10, 1000)),
            ..PreviewRequest::default()
        };
        Some(
            app.api
                .call::<PreviewResponse, _>(
                    Api::Rest,
                    Method::POST,
                    s.token(),
                    "/v1/schedules/preview",
                    Some(&req),
                    &[],
                )
                .await,
        )
    } else {
        None
    };
    let body = html! {
        (preview_form(&app, &f))
        @match &result {
            None => {}
            Some(Err(e)) => { div.error role="alert" data-test="error" { strong { (e.code) } ": " (e.message) } }
            Some(Ok(p)) => {
                p data-test="description" { (p.description) }
                table data-test="slots" {
                    thead { tr { th scope="col" { "instant" } th scope="col" { "local" } th scope="col" { "offset" } th scope="col" { "notes" } } }
                    tbody {
                        @for slot in &p.slots {
                            tr {
                                td { (time(&slot.at)) }
                                td { (slot.local) }
                                td { (slot.offset) }
                                td { (slot.annotations.join(", ")) @if let Some(c) = &slot.calendar { " (" (c) ")" } }
                            }
                        }
                    }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        layout(&app, Some(&s), Nav::Schedules, "Schedule preview", body),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn filters_become_api_parameters() {
        let f = Fields::parse(
            b"label=team%3Dgrowth+region%3Deu,tier%3D1&due_after=2026-12-01T10%3A00&app=sms&cursor=x&bogus=1",
        );
        assert_eq!(
            filter_pairs(&f),
            [
                ("app", "sms"),
                ("label", "team=growth"),
                ("label", "region=eu"),
                ("label", "tier=1"),
                ("due_after", "2026-12-01T10:00:00Z"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(time_param("2026-12-01"), "2026-12-01T00:00:00Z");
        assert_eq!(
            time_param("2026-12-01T10:00:00+06:00"),
            "2026-12-01T10:00:00+06:00"
        );
        assert_eq!(
            time_param("soon"),
            "soon",
            "left for the API to refuse, naming it"
        );
    }

    #[test]
    fn a_clone_is_a_native_request_of_the_same_schedule() {
        let cron: Value = serde_json::from_str(
            r#"{"id":"r1","app":"sms","tenant":"acme","labels":{"t":"a"},"payload":{"n":1},
                "schedule":{"kind":"cron","expr":"0 9 * * 1-5","tz":"Asia/Dhaka","misfire":"skip"},
                "first_due":"2026-12-01T03:00:00Z"}"#,
        )
        .unwrap();
        let req: Value = serde_json::from_str(&request_of(&cron, None)).unwrap();
        assert_eq!(
            req,
            json!({"app":"sms","tenant":"acme","labels":{"t":"a"},"payload":{"n":1},
                   "cron":"0 9 * * 1-5","timezone":"Asia/Dhaka","misfire":"skip"})
        );
        let every: Value = serde_json::from_str(
            r#"{"app":"a","payload":{},"schedule":{"kind":"every","interval_ms":90000}}"#,
        )
        .unwrap();
        let req: Value = serde_json::from_str(&request_of(&every, Some("e1"))).unwrap();
        assert_eq!(req["every"], "90000ms");
        assert_eq!(req["id"], "e1", "an update keeps the id");
        let once: Value = serde_json::from_str(
            r#"{"app":"a","payload":{},"schedule":{"kind":"once","at":"2026-12-01T00:00:00Z"}}"#,
        )
        .unwrap();
        let clone: Value = serde_json::from_str(&request_of(&once, None)).unwrap();
        assert_eq!(
            clone["delay"], "1m",
            "a clone of a one-shot runs in a minute"
        );
        let update: Value = serde_json::from_str(&request_of(&once, Some("o1"))).unwrap();
        assert_eq!(
            update["run_at"], "2026-12-01T00:00:00Z",
            "an update keeps its time"
        );
    }
}
