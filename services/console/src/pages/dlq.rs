//! Dead letters: browse by app, reason, stage, error text, tenant and time; a letter with
//! every header and its original bytes; replay with a dry run, a rate and a target topic,
//! its progress, and the latest replays.

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, Method, StatusCode},
    response::Response,
};
use maud::{Markup, html};
use sked_api::dlq::{
    self, DlqStats, LetterDetail, LetterList, ReplayList, ReplayProgress, ReplayRequest,
};

use super::{Nav, counts, csrf, failure, layout, notice, page, pretty, time_opt};
use crate::{
    App,
    api::{Api, Failure, query, seg},
    web::{Fields, Signed, check_post, done},
};

/// The DLQ filters: (parameter, label, placeholder).
const FILTERS: [(&str, &str, &str); 8] = [
    ("app", "App", "sms"),
    ("reason", "Reason", "handler_failed"),
    ("stage", "Stage", "ingest or execute"),
    ("error", "Error contains", "timeout"),
    ("tenant", "Tenant", "acme"),
    ("job_id", "Job id", ""),
    ("since", "Since", "2026-12-01T00:00:00Z"),
    ("until", "Until", "2026-12-02T00:00:00Z"),
];

fn pairs(f: &Fields) -> Vec<(&'static str, String)> {
    FILTERS
        .iter()
        .filter_map(|(k, _, _)| f.get(k).map(|v| (*k, v.to_owned())))
        .collect()
}

fn fields(f: &Fields) -> Markup {
    html! {
        @for (name, label, hint) in FILTERS {
            div.field {
                label for=(format!("d-{name}")) { (label) }
                input id=(format!("d-{name}")) name=(name) value=(f.get(name).unwrap_or("")) placeholder=(hint);
            }
        }
    }
}

fn bytes(b: Option<&dlq::Bytes>) -> Markup {
    match b {
        None => html! { span.muted { "none" } },
        Some(dlq::Bytes::Text(t)) => html! { pre { (pretty(t)) } },
        Some(dlq::Bytes::Base64(b)) => html! { p.muted { "not UTF-8; base64:" } pre { (b) } },
    }
}

/// `GET /dlq`.
pub async fn list(State(app): State<App>, Signed(s): Signed, RawQuery(q): RawQuery) -> Response {
    let f = Fields::parse(q.unwrap_or_default().as_bytes());
    let filter = pairs(&f);
    let qf = query(filter.iter().map(|(k, v)| (*k, v.as_str())));
    let mut listed = filter.clone();
    listed.push(("limit", f.get("limit").unwrap_or("100").to_owned()));
    let ql = query(listed.iter().map(|(k, v)| (*k, v.as_str())));
    let (list_path, stats_path) = (format!("/v1/dlq{ql}"), format!("/v1/dlq/stats{qf}"));
    let (letters, stats, replays) = tokio::join!(
        app.api.get::<LetterList>(Api::Dlq, s.token(), &list_path),
        app.api.get::<DlqStats>(Api::Dlq, s.token(), &stats_path),
        app.api
            .get::<ReplayList>(Api::Dlq, s.token(), "/v1/dlq/replays?limit=20"),
    );
    let letters = match letters {
        Ok(l) => l,
        Err(e) => return failure(&app, Some(&s), &e),
    };
    let link = |key: &'static str| {
        let app = app.clone();
        move |v: &str| Some(format!("{}{}", app.href("/dlq"), query([(key, v)])))
    };
    let body = html! {
        (notice(f.get("done")))
        form.filters method="get" action=(app.href("/dlq")) role="search" aria-label="Filter dead letters" {
            (fields(&f))
            div.field.buttons { button type="submit" data-test="filter" { "Search" } }
        }
        div #dlq-live data-live {
            p data-test="matched" {
                (letters.matched) " letters match."
                @if letters.index.as_ref().is_some_and(|i| !i.complete) {
                    " " strong data-test="index-incomplete" { "The DLQ index is not complete: some letters may be missing." }
                }
            }
            @if let Ok(st) = &stats {
                div.columns {
                    (counts("By app", &st.counts.by_app, 8, link("app")))
                    (counts("By reason", &st.counts.by_reason, 8, link("reason")))
                    (counts("By stage", &st.counts.by_stage, 8, link("stage")))
                }
            }
            table data-test="letters" {
                thead { tr { th scope="col" { "letter" } th scope="col" { "failed" } th scope="col" { "app" } th scope="col" { "stage" } th scope="col" { "reason" } th scope="col" { "job" } th scope="col" { "error" } th scope="col" { "replays" } } }
                tbody {
                    @if letters.letters.is_empty() { tr { td colspan="8" { "No letter matches." } } }
                    @for l in &letters.letters {
                        tr {
                            td { a href=(app.href(&format!("/dlq/{}/{}", l.partition, l.offset))) { (l.partition) "/" (l.offset) } }
                            td { (time_opt(l.at.as_ref())) }
                            td { (l.app.as_deref().unwrap_or("—")) }
                            td { (l.stage.as_deref().unwrap_or("—")) }
                            td { (l.reason.as_deref().unwrap_or("—")) }
                            td { @if let Some(j) = &l.job_id { a href=(app.href(&format!("/jobs/{}", seg(j)))) { code { (j) } } } }
                            td.error-text { (l.error.as_deref().unwrap_or("")) }
                            td.num { (l.replay_count) }
                        }
                    }
                }
            }
        }
        @if s.may("dlq:replay") {
            h2 { "Replay the letters of this filter" }
            (replay_form(&s, &app, &filter))
        }
        @if let Ok(r) = &replays { (replay_history(&app, r)) }
    };
    page(
        StatusCode::OK,
        layout(&app, Some(&s), Nav::Dlq, "Dead letters", body),
    )
}

/// The latest replays (dry runs included), newest first, each linking to its progress.
fn replay_history(app: &App, list: &ReplayList) -> Markup {
    html! {
        h2 #replays { "Latest replays" }
        table data-test="replays" {
            thead { tr { th scope="col" { "replay" } th scope="col" { "started" } th scope="col" { "status" } th scope="col" { "selected" } th scope="col" { "published" } th scope="col" { "filter" } } }
            tbody {
                @if list.replays.is_empty() { tr { td colspan="6" { "No replay yet." } } }
                @for r in &list.replays {
                    tr {
                        td { a href=(app.href(&format!("/dlq/replays/{}", seg(&r.spec.id)))) { code { (r.spec.id) } } }
                        td { (time_opt(chrono::DateTime::from_timestamp_millis(r.spec.created_at).as_ref())) }
                        td data-test="replay-row-status" { @if r.spec.dry_run { "dry run" } @else { (r.status) } }
                        td.num { (r.spec.selected) }
                        td.num { (r.published) }
                        td { (replay_filter(&r.spec.filter)) }
                    }
                }
            }
        }
    }
}

/// A replay's filter as `key=value` words, `(all)` when it has none.
fn replay_filter(f: &dlq::Filter) -> String {
    let words: Vec<String> = [
        ("app", &f.app),
        ("reason", &f.reason),
        ("stage", &f.stage),
        ("error", &f.error),
        ("tenant", &f.tenant),
        ("job_id", &f.job_id),
        ("since", &f.since),
        ("until", &f.until),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
    .collect();
    if words.is_empty() {
        "(all)".to_owned()
    } else {
        words.join(" ")
    }
}

fn replay_form(s: &crate::session::Session, app: &App, filter: &[(&str, String)]) -> Markup {
    html! {
        form.filters method="post" action=(app.href("/dlq/replays")) data-test="replay-form" {
            (csrf(s))
            @for (k, v) in filter { input type="hidden" name=(k) value=(v); }
            div.field { label for="r-limit" { "At most" } input #r-limit name="limit" type="number" min="1" placeholder="all"; }
            div.field { label for="r-rate" { "Records per second" } input #r-rate name="rate" type="number" min="0" placeholder="server default"; }
            div.field { label for="r-target" { "Target topic" } input #r-target name="target_topic" placeholder="each letter's original topic"; }
            div.field.buttons {
                button type="submit" name="mode" value="dry_run" data-test="replay-dry-run" { "Dry run" }
                " "
                button type="submit" name="mode" value="run" data-test="replay" data-confirm="Replay the matching letters?" { "Replay" }
            }
        }
    }
}

/// `GET /dlq/{partition}/{offset}`.
pub async fn detail(
    State(app): State<App>,
    Signed(s): Signed,
    Path((partition, offset)): Path<(i32, i64)>,
) -> Response {
    let path = format!("/v1/dlq/{partition}/{offset}");
    let d = match app
        .api
        .get::<LetterDetail>(Api::Dlq, s.token(), &path)
        .await
    {
        Ok(d) => d,
        Err(e) => return failure(&app, Some(&s), &e),
    };
    let l = &d.letter;
    let body = html! {
        dl.summary {
            dt { "failed" } dd { (time_opt(l.at.as_ref())) }
            dt { "app" } dd { (l.app.as_deref().unwrap_or("—")) }
            dt { "stage" } dd { (l.stage.as_deref().unwrap_or("—")) }
            dt { "reason" } dd data-test="reason" { (l.reason.as_deref().unwrap_or("—")) }
            dt { "error" } dd { (l.error.as_deref().unwrap_or("")) }
            dt { "job" } dd { @if let Some(j) = &l.job_id { a href=(app.href(&format!("/jobs/{}", seg(j)))) { code { (j) } } } }
            dt { "attempts" } dd { @if let Some(a) = l.attempts { (a) } }
            dt { "original topic" } dd { (l.original_topic.as_deref().unwrap_or("—")) }
            dt { "replays" } dd { (l.replay_count) }
        }
        h2 { "Headers" }
        table data-test="headers" {
            thead { tr { th scope="col" { "header" } th scope="col" { "value" } } }
            tbody {
                @for (k, v) in &d.headers {
                    tr { td { code { (k) } } td { @match v { None => { span.muted { "null" } } Some(dlq::Bytes::Text(t)) => { (t) } Some(dlq::Bytes::Base64(b)) => { "base64: " (b) } } } }
                }
            }
        }
        h2 { "Key" } (bytes(d.key.as_ref()))
        h2 { "Value (the original bytes)" } div data-test="value" { (bytes(d.value.as_ref())) }
        @if s.may("dlq:replay") && l.job_id.is_some() {
            h2 { "Replay this job's letters" }
            (replay_form(&s, &app, &[("job_id", l.job_id.clone().unwrap_or_default())]))
        }
    };
    let title = format!("Dead letter {partition}/{offset}");
    page(
        StatusCode::OK,
        layout(&app, Some(&s), Nav::Dlq, &title, body),
    )
}

/// `POST /dlq/replays`.
pub async fn replay(
    State(app): State<App>,
    Signed(s): Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    if let Some(refused) = check_post(&app, &s, &headers, &f) {
        return refused;
    }
    let num = |k: &str| -> Result<Option<u64>, Failure> {
        f.get(k)
            .map(|v| {
                v.parse().map_err(|_| Failure {
                    param: Some(k.into()),
                    ..Failure::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_parameter",
                        format!("{k}: `{v}` is not a whole number"),
                    )
                })
            })
            .transpose()
    };
    let (limit, rate) = match (num("limit"), num("rate")) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(e), _) | (_, Err(e)) => return failure(&app, Some(&s), &e),
    };
    let own = |k: &str| f.get(k).map(str::to_owned);
    let request = ReplayRequest {
        app: own("app"),
        reason: own("reason"),
        stage: own("stage"),
        error: own("error"),
        since: own("since"),
        until: own("until"),
        job_id: own("job_id"),
        tenant: own("tenant"),
        limit: limit.and_then(|l| usize::try_from(l).ok()),
        dry_run: f.get("mode") != Some("run"),
        rate: rate.map(|r| u32::try_from(r).unwrap_or(u32::MAX)),
        target_topic: own("target_topic"),
    };
    match app
        .api
        .call::<ReplayProgress, _>(
            Api::Dlq,
            Method::POST,
            s.token(),
            "/v1/dlq/replays",
            Some(&request),
            &[],
        )
        .await
    {
        Ok(p) => done(
            &app,
            &format!("/dlq/replays/{}", seg(&p.spec.id)),
            if p.spec.dry_run {
                "counted"
            } else {
                "replaying"
            },
        ),
        Err(e) => failure(&app, Some(&s), &e),
    }
}

/// `GET /dlq/replays/{id}`.
pub async fn replay_progress(
    State(app): State<App>,
    Signed(s): Signed,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let f = Fields::parse(q.unwrap_or_default().as_bytes());
    let path = format!("/v1/dlq/replays/{}", seg(&id));
    let p = match app
        .api
        .get::<ReplayProgress>(Api::Dlq, s.token(), &path)
        .await
    {
        Ok(p) => p,
        Err(e) => return failure(&app, Some(&s), &e),
    };
    let spec = &p.spec;
    let body = html! {
        (notice(f.get("done")))
        div #replay-live data-live {
            dl.summary {
                dt { "status" } dd data-test="replay-status" { (p.status) @if spec.dry_run { " (dry run: nothing published)" } }
                dt { "selected" } dd data-test="selected" { (spec.selected) }
                dt { "published" } dd data-test="published" { (p.published) }
                dt { "skipped" } dd { (spec.skipped_max_replays) " at max replays, " (spec.skipped_no_target) " without a target, " (spec.skipped_duplicates) " duplicates" }
                dt { "missing" } dd { (p.missing) }
                dt { "rate" } dd { @if spec.rate == 0 { "unlimited" } @else { (spec.rate) " records/s" } }
                dt { "targets" } dd { @for (t, n) in &spec.by_target { code { (t) } ": " (n) " " } }
                @if let Some(e) = &p.last_error { dt { "last error" } dd.error { (e) } }
            }
            @if !spec.dry_run {
                @let max = spec.selected.max(1);
                progress max=(max) value=(p.published) aria-label="Published" { (p.published) " of " (max) }
            }
        }
        p { a href=(app.href("/dlq")) { "Back to the dead letters" } }
    };
    let title = format!("Replay {}", spec.id);
    page(
        StatusCode::OK,
        layout(&app, Some(&s), Nav::Dlq, &title, body),
    )
}
