//! The pages: each module holds its handlers and its markup. Shared here: the layout, the
//! small pieces every page uses, and the answers for errors.

pub mod cluster;
pub mod dlq;
pub mod jobs;
pub mod login;
pub mod ops;
pub mod overview;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, html};

use crate::{App, api::Failure, session::Session};

/// The section a page belongs to (highlighted in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// `/`.
    Overview,
    /// `/jobs`.
    Jobs,
    /// `/schedules`.
    Schedules,
    /// `/ops`.
    Ops,
    /// `/dlq`.
    Dlq,
    /// `/cluster`.
    Cluster,
    /// Sign-in and errors.
    None,
}

/// A whole HTML page.
pub fn layout(app: &App, session: Option<&Session>, nav: Nav, title: &str, body: Markup) -> Markup {
    let items = [
        (Nav::Overview, "/", "Overview"),
        (Nav::Jobs, "/jobs", "Jobs"),
        (Nav::Schedules, "/schedules", "Schedules"),
        (Nav::Ops, "/ops", "Bulk operations"),
        (Nav::Dlq, "/dlq", "Dead letters"),
        (Nav::Cluster, "/cluster", "Cluster"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · sked" }
                link rel="stylesheet" href=(app.href("/assets/console.css"));
                script src=(app.href("/assets/console.js")) defer {}
            }
            body data-refresh=(app.refresh_ms) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(app.href("/")) { "sked" }
                    @if session.is_some() {
                        nav aria-label="Main" {
                            ul {
                                @for (item, path, label) in items {
                                    li {
                                        @if item == nav {
                                            a href=(app.href(path)) aria-current="page" { (label) }
                                        } @else {
                                            a href=(app.href(path)) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.user {
                        button.theme type="button" data-theme-toggle aria-label="Switch between light and dark theme" { "Theme" }
                        @if let Some(s) = session {
                            span.who title=(s.who.scopes.join(" ")) {
                                "Signed in as " strong data-test="actor" { (s.who.actor) }
                                @if !s.may("jobs:write") && !s.may("ops:write") && !s.may("dlq:replay") {
                                    " " span.badge data-test="read-only" { "read-only" }
                                }
                            }
                            form method="post" action=(app.href("/logout")) {
                                (csrf(s))
                                button type="submit" data-test="sign-out" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                footer {
                    "Times are UTC; " span data-local-zone { "" } " · "
                    a href=(app.href("/preview")) { "Schedule preview" }
                }
            }
        }
    }
}

/// The hidden CSRF field of a mutating form.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="_csrf" value=(session.csrf.as_ref()); }
}

/// An instant: UTC in the text, the machine value for the script that adds the viewer's
/// local time.
pub fn time(t: &DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339_opts(SecondsFormat::Millis, true)) {
            (t.format("%Y-%m-%d %H:%M:%S UTC"))
        }
    }
}

/// An optional instant, `—` when absent.
pub fn time_opt(t: Option<&DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span.muted { "—" } },
    }
}

/// Milliseconds as a short duration (`850 ms`, `2.4 s`, `3 min`).
pub fn millis(ms: i64) -> String {
    let abs = ms.unsigned_abs();
    if abs < 1_000 {
        format!("{ms} ms")
    } else if abs < 120_000 {
        format!("{:.1} s", ms as f64 / 1_000.0)
    } else {
        format!("{:.0} min", ms as f64 / 60_000.0)
    }
}

/// A notice after an action (`?done=paused`).
pub fn notice(done: Option<&str>) -> Markup {
    html! {
        @if let Some(done) = done.filter(|d| !d.is_empty() && d.len() <= 64) {
            p.notice role="status" data-test="notice" { "Done: " strong { (done.replace('_', " ")) } }
        }
    }
}

/// An HTML page with `status`.
pub fn page(status: StatusCode, markup: Markup) -> Response {
    (status, axum::response::Html(markup.into_string())).into_response()
}

/// The page of a failed call: the API's status, code and message.
pub fn failure(app: &App, session: Option<&Session>, f: &Failure) -> Response {
    let title = match f.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::UNAUTHORIZED => "Signed out",
        s if s.is_client_error() => "Refused",
        _ => "Something failed",
    };
    let body = html! {
        div.error role="alert" data-test="error" {
            p { strong { (f.status.as_u16()) " " (f.code) } }
            p { (f.message) }
            @if let Some(param) = &f.param { p { "Parameter: " code { (param) } } }
        }
        p { a href=(app.href("/")) { "Back to the overview" } }
    };
    page(f.status, layout(app, session, Nav::None, title, body))
}

/// Pretty-printed JSON text of `raw` (as it is when it does not parse).
pub fn pretty(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_owned())
}

/// A definition list row.
pub fn row(name: &str, value: Markup) -> Markup {
    html! { dt { (name) } dd { (value) } }
}

/// A table of counts, largest first, at most `limit` rows.
pub fn counts<'a>(
    caption: &str,
    rows: impl IntoIterator<Item = (&'a String, &'a u64)>,
    limit: usize,
    link: impl Fn(&str) -> Option<String>,
) -> Markup {
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let more = rows.len().saturating_sub(limit);
    html! {
        table.counts {
            caption { (caption) }
            thead { tr { th scope="col" { "name" } th scope="col" { "jobs" } } }
            tbody {
                @for (name, n) in rows.into_iter().take(limit) {
                    tr {
                        td { @if let Some(href) = link(name) { a href=(href) { (name) } } @else { (name) } }
                        td.num { (n) }
                    }
                }
            }
            @if more > 0 { tfoot { tr { td colspan="2" { (more) " more" } } } }
        }
    }
}
