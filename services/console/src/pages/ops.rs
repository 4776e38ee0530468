//! Bulk operations by selector: the selector is the jobs list's filter, so what an operator
//! lists is what the action touches. A dry run counts first; a run shows its progress live
//! and stays in the history.

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, Method, StatusCode},
    response::Response,
};
use maud::{Markup, html};
use sked_api::{
    ops::{Operation, OperationAction, OperationList, OperationRequest, OperationState},
    query::Selector,
};

use super::{Nav, csrf, failure, layout, notice, page, time, time_opt};
use crate::{
    App,
    api::{Api, Failure, query, seg},
    session::Session,
    web::{Fields, Signed, check_post, done},
};

fn bad(param: &str, message: String) -> Failure {
    Failure {
        param: Some(param.into()),
        ..Failure::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
    }
}

/// The selector of a form: the list filters.
fn selector(f: &Fields) -> Result<Selector, Failure> {
    let pairs = super::jobs::filter_pairs(f);
    let one = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let when = |k: &str| -> Result<_, Failure> {
        one(k)
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|_| {
                        bad(
                            k,
                            format!("{k}: `{v}` is not a time such as 2026-12-01T00:00:00Z"),
                        )
                    })
            })
            .transpose()
    };
    Ok(Selector {
        state: one("state"),
        app: one("app"),
        tenant: one("tenant"),
        label: pairs
            .iter()
            .filter(|(k, _)| k == "label")
            .map(|(_, v)| v.clone())
            .collect(),
        kind: one("kind")
            .map(|k| {
                k.parse()
                    .map_err(|e: String| bad("kind", format!("kind: {e}")))
            })
            .transpose()?,
        due_after: when("due_after")?,
        due_before: when("due_before")?,
        payload: one("payload"),
    })
}

fn selector_text(s: &Selector) -> String {
    let mut parts = Vec::new();
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    push("state", s.state.clone());
    push("app", s.app.clone());
    push("tenant", s.tenant.clone());
    for l in &s.label {
        push("label", Some(l.clone()));
    }
    push("kind", s.kind.map(|k| k.as_str().to_owned()));
    push("due_after", s.due_after.map(|t| t.to_rfc3339()));
    push("due_before", s.due_before.map(|t| t.to_rfc3339()));
    push("payload", s.payload.as_ref().map(|p| format!("{p:?}")));
    if parts.is_empty() {
        "every pending job".into()
    } else {
        parts.join(" ")
    }
}

fn create_form(app: &App, s: &Session, f: &Fields) -> Markup {
    let extra = html! {
        div.field {
            label for="op-action" { "Action" }
            select #op-action name="action" {
                @for a in OperationAction::ALL {
                    option value=(a.as_str()) selected[f.get("action") == Some(a.as_str())] { (a.as_str()) }
                }
            }
        }
        div.field { label for="op-rate" { "Jobs per second" } input #op-rate name="rate" type="number" min="1" value=(f.get("rate").unwrap_or("")) placeholder="server default"; }
        div.field { label for="op-offset" { "Offset (reschedule)" } input #op-offset name="offset" value=(f.get("offset").unwrap_or("")) placeholder="+1h"; }
        div.field { label for="op-note" { "Note" } input #op-note name="note" value=(f.get("note").unwrap_or("")) maxlength="500"; }
    };
    html! {
        form.filters method="post" action=(app.href("/ops")) data-test="op-form" {
            (csrf(s))
            (super::jobs::filter_form_fields(f, &["once", "cron", "every"]))
            (extra)
            div.field.buttons {
                button type="submit" name="mode" value="dry_run" data-test="dry-run" { "Dry run (count)" }
                " "
                button.danger type="submit" name="mode" value="run" data-test="run" data-confirm="Act on every job matching this selector?" { "Run" }
            }
        }
    }
}

/// `GET /ops`: the form (filled from the query: the jobs page links here with its filter)
/// and the history.
pub async fn list(State(app): State<App>, Signed(s): Signed, RawQuery(q): RawQuery) -> Response {
    let f = Fields::parse(q.unwrap_or_default().as_bytes());
    let path = format!(
        "/v1/operations{}",
        query([("limit", "50"), ("cursor", f.get("cursor").unwrap_or(""))])
    );
    let answer = app
        .api
        .get::<OperationList>(Api::Rest, s.token(), &path)
        .await;
    let body = html! {
        (notice(f.get("done")))
        @if s.may("ops:write") {
            h2 { "New operation" }
            (create_form(&app, &s, &f))
        }
        h2 { "History" }
        div #ops-live data-live {
            @match &answer {
                Err(e) => { p.error role="alert" { (e.message) } }
                Ok(list) => { (ops_table(&app, &list.operations)) }
            }
        }
        @if let Ok(OperationList { next_cursor: Some(c), .. }) = &answer {
            nav.pager aria-label="Pages" { a rel="next" href=(format!("{}{}", app.href("/ops"), query([("cursor", c.as_str())]))) { "Older" } }
        }
    };
    page(
        StatusCode::OK,
        layout(&app, Some(&s), Nav::Ops, "Bulk operations", body),
    )
}

fn ops_table(app: &App, ops: &[Operation]) -> Markup {
    html! {
        table data-test="ops" {
            thead { tr { th scope="col" { "operation" } th scope="col" { "action" } th scope="col" { "selector" } th scope="col" { "state" } th scope="col" { "processed / estimate" } th scope="col" { "created" } } }
            tbody {
                @if ops.is_empty() { tr { td colspan="6" { "No operation yet." } } }
                @for op in ops {
                    tr {
                        td { a href=(app.href(&format!("/ops/{}", seg(&op.id)))) { code { (op.id) } } }
                        td { (op.action.as_str()) @if op.dry_run { " (dry run)" } }
                        td { code { (selector_text(&op.selector)) } }
                        td { (op.state.as_str()) }
                        td.num { (op.processed) " / " (op.estimate) }
                        td { (time(&op.created_at)) }
                    }
                }
            }
        }
    }
}

/// `POST /ops`: a dry run or a run.
pub async fn create(
    State(app): State<App>,
    Signed(s): Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    if let Some(refused) = check_post(&app, &s, &headers, &f) {
        return refused;
    }
    let request = (|| -> Result<OperationRequest, Failure> {
        let action = f
            .get("action")
            .unwrap_or("")
            .parse::<OperationAction>()
            .map_err(|e: String| bad("action", format!("action: {e}")))?;
        let rate = f
            .get("rate")
            .map(|r| {
                r.parse::<u32>().map_err(|_| {
                    bad(
                        "rate",
                        format!("rate: `{r}` is not a whole number of jobs per second"),
                    )
                })
            })
            .transpose()?;
        Ok(OperationRequest {
            action,
            selector: selector(&f)?,
            dry_run: f.get("mode") != Some("run"),
            rate,
            offset: f.get("offset").map(str::to_owned),
            note: f.get("note").map(str::to_owned),
        })
    })();
    let request = match request {
        Ok(r) => r,
        Err(e) => return failure(&app, Some(&s), &e),
    };
    match app
        .api
        .call::<Operation, _>(
            Api::Rest,
            Method::POST,
            s.token(),
            "/v1/operations",
            Some(&request),
            &[],
        )
        .await
    {
        Ok(op) => done(
            &app,
            &format!("/ops/{}", seg(&op.id)),
            if op.dry_run { "counted" } else { "started" },
        ),
        Err(e) => failure(&app, Some(&s), &e),
    }
}

/// `GET /ops/{id}`: progress (live), outcomes, history; a dry run offers to run it.
pub async fn detail(
    State(app): State<App>,
    Signed(s): Signed,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let f = Fields::parse(q.unwrap_or_default().as_bytes());
    let op = match app
        .api
        .get::<Operation>(
            Api::Rest,
            s.token(),
            &format!("/v1/operations/{}", seg(&id)),
        )
        .await
    {
        Ok(op) => op,
        Err(e) => return failure(&app, Some(&s), &e),
    };
    let write = s.may("ops:write");
    let body = html! {
        (notice(f.get("done")))
        div #op-live data-live {
            dl.summary {
                dt { "action" } dd { (op.action.as_str()) @if op.dry_run { " — dry run, nothing changed" } }
                dt { "selector" } dd { code data-test="selector" { (selector_text(&op.selector)) } }
                dt { "state" } dd { strong data-test="op-state" { (op.state.as_str()) } }
                dt { @if op.dry_run { "jobs matching" } @else { "estimate" } } dd data-test="estimate" { (op.estimate) }
                dt { "processed" } dd data-test="processed" { (op.processed) }
                @if let Some(rate) = op.rate { dt { "rate" } dd { (rate) " jobs/s" } }
                dt { "created" } dd { (time(&op.created_at)) }
                dt { "finished" } dd { (time_opt(op.finished_at.as_ref())) }
            }
            @if !op.dry_run {
                @let max = op.estimate.max(op.processed).max(1);
                progress max=(max) value=(op.processed) aria-label="Progress" { (op.processed) " of " (max) }
            }
            @if !op.outcomes.is_empty() {
                table data-test="outcomes" {
                    caption { "Outcomes" }
                    tbody { @for (k, v) in &op.outcomes { tr { td { (k) } td.num { (v) } } } }
                }
            }
            h2 { "History" }
            ol { @for e in &op.history { li { (time(&e.at)) " " strong { (e.state.as_str()) } " " (e.message) } } }
            // Offered once the count is in (a dry run counts in the background).
            @if write && op.dry_run && op.state == OperationState::Succeeded {
                form method="post" action=(app.href("/ops")) {
                    (csrf(&s))
                    (hidden_selector(&op))
                    input type="hidden" name="action" value=(op.action.as_str());
                    @if let Some(r) = op.rate { input type="hidden" name="rate" value=(r); }
                    @if let Some(o) = &op.offset { input type="hidden" name="offset" value=(o); }
                    button.danger type="submit" name="mode" value="run" data-test="run-for-real" data-confirm=(format!("{} {} jobs?", op.action.as_str(), op.estimate)) {
                        "Run it: " (op.action.as_str()) " " (op.estimate) " jobs"
                    }
                }
            }
        }
        @if write && !op.state.is_final() && !op.dry_run {
            form method="post" action=(app.href(&format!("/ops/{}/cancel", seg(&op.id)))) {
                (csrf(&s)) button type="submit" data-test="op-cancel" { "Stop this operation" }
            }
        }
    };
    let title = format!("Operation {}", op.id);
    page(
        StatusCode::OK,
        layout(&app, Some(&s), Nav::Ops, &title, body),
    )
}

fn hidden_selector(op: &Operation) -> Markup {
    let s = &op.selector;
    html! {
        @if let Some(v) = &s.state { input type="hidden" name="state" value=(v); }
        @if let Some(v) = &s.app { input type="hidden" name="app" value=(v); }
        @if let Some(v) = &s.tenant { input type="hidden" name="tenant" value=(v); }
        @for l in &s.label { input type="hidden" name="label" value=(l); }
        @if let Some(k) = s.kind { input type="hidden" name="kind" value=(k.as_str()); }
        @if let Some(t) = s.due_after { input type="hidden" name="due_after" value=(t.to_rfc3339()); }
        @if let Some(t) = s.due_before { input type="hidden" name="due_before" value=(t.to_rfc3339()); }
    }
}

/// `POST /ops/{id}/cancel`.
pub async fn cancel(
    State(app): State<App>,
    Signed(s): Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    if let Some(refused) = check_post(&app, &s, &headers, &f) {
        return refused;
    }
    let path = format!("/v1/operations/{}/cancel", seg(&id));
    match app
        .api
        .call::<Operation, ()>(Api::Rest, Method::POST, s.token(), &path, None, &[])
        .await
    {
        Ok(_) => done(&app, &format!("/ops/{}", seg(&id)), "stopping"),
        Err(e) => failure(&app, Some(&s), &e),
    }
}
