//! `GET /`: what sked holds now: pending jobs by state, app and tenant, the app and tenant
//! pauses, dead letters by reason, and the latest bulk operations. Warnings show only while
//! they hold.

use axum::{extract::State, http::StatusCode, response::Response};
use maud::html;
use sked_api::{
    dlq::DlqStats,
    jobs::PauseList,
    ops::OperationList,
    stats::{Cluster, Stats},
};

use super::{Nav, counts, layout, page, time};
use crate::{App, api::Api, web::Signed};

/// `GET /`.
pub async fn show(State(app): State<App>, Signed(s): Signed) -> Response {
    let token = s.token();
    let (stats, pauses, ops, dlq, cluster) = tokio::join!(
        app.api.get::<Stats>(Api::Rest, token, "/v1/stats"),
        app.api.get::<PauseList>(Api::Rest, token, "/v1/pauses"),
        app.api
            .get::<OperationList>(Api::Rest, token, "/v1/operations?limit=5"),
        async {
            if s.may("dlq:read") {
                Some(
                    app.api
                        .get::<DlqStats>(Api::Dlq, token, "/v1/dlq/stats")
                        .await,
                )
            } else {
                None
            }
        },
        async {
            // Figures across every tenant: not for a token bound to tenants.
            if s.who.tenants.is_none() {
                app.api
                    .get::<Cluster>(Api::Rest, token, "/v1/cluster")
                    .await
                    .ok()
            } else {
                None
            }
        },
    );
    let jobs_link = |key: &'static str| {
        let app = app.clone();
        move |name: &str| {
            Some(format!(
                "{}{}",
                app.href("/jobs"),
                crate::api::query([(key, name)])
            ))
        }
    };
    let body = html! {
        section #overview-live data-live aria-live="polite" {
            div.warnings {
                @if let Some(Ok(d)) = &dlq && d.counts.total > 0 {
                    p.warning role="status" data-test="warning-dlq" {
                        (d.counts.total) @if d.counts.total == 1 { " dead letter waits" } @else { " dead letters wait" } " for an operator: "
                        a href=(app.href("/dlq")) { "inspect and replay" }
                    }
                }
                @if let Ok(p) = &pauses && !p.pauses.is_empty() {
                    p.warning role="status" { (p.pauses.len()) @if p.pauses.len() == 1 { " app or tenant is" } @else { " apps or tenants are" } " paused (below)." }
                }
            }
            @if let Some(c) = &cluster { (super::cluster::summary(c)) }
            div.cards {
                @match &stats {
                    Ok(st) => {
                        div.card { h2 { "Pending" } p.big data-test="pending" { (st.pending) } p.muted { "jobs that will still fire" } }
                        @for (state, n) in &st.by_state {
                            div.card { h2 { (state) } p.big { a href=(format!("{}?state={state}", app.href("/jobs"))) { (n) } } }
                        }
                    }
                    Err(f) => { p.error role="alert" { "Counts unavailable: " (f.message) } }
                }
                @if let Some(Ok(d)) = &dlq {
                    div.card { h2 { "Dead letters" } p.big { a href=(app.href("/dlq")) { (d.counts.total) } } }
                }
            }
            @if let Ok(st) = &stats {
                div.columns {
                    (counts("Pending by app", &st.by_app, 10, jobs_link("app")))
                    (counts("Pending by tenant", &st.by_tenant, 10, jobs_link("tenant")))
                    @if let Some(Ok(d)) = &dlq {
                        (counts("Dead letters by reason", &d.counts.by_reason, 10, |r| {
                            Some(format!("{}{}", app.href("/dlq"), crate::api::query([("reason", r)])))
                        }))
                    }
                }
                @if !st.quotas.is_empty() {
                    table {
                        caption { "Quotas" }
                        thead { tr { th scope="col" { "scope" } th scope="col" { "name" } th scope="col" { "pending" } th scope="col" { "limit" } } }
                        tbody {
                            @for q in &st.quotas {
                                tr { td { (q.scope) } td { (q.name) } td.num { (q.pending) } td.num { @if let Some(m) = q.max_pending { (m) } @else { "—" } } }
                            }
                        }
                    }
                }
            }
            @if let Ok(p) = &pauses && !p.pauses.is_empty() {
                table {
                    caption { "Paused apps and tenants" }
                    thead { tr { th scope="col" { "scope" } th scope="col" { "name" } th scope="col" { "note" } th scope="col" { "since" } } }
                    tbody {
                        @for p in &p.pauses {
                            tr { td { (p.scope.as_str()) } td { (p.name) } td { (p.note.as_deref().unwrap_or("")) } td { (time(&p.at)) } }
                        }
                    }
                }
            }
            @if let Ok(o) = &ops && !o.operations.is_empty() {
                table {
                    caption { "Latest bulk operations" }
                    thead { tr { th scope="col" { "operation" } th scope="col" { "action" } th scope="col" { "state" } th scope="col" { "progress" } th scope="col" { "created" } } }
                    tbody {
                        @for op in &o.operations {
                            tr {
                                td { a href=(app.href(&format!("/ops/{}", crate::api::seg(&op.id)))) { code { (op.id) } } }
                                td { (op.action.as_str()) @if op.dry_run { " (dry run)" } }
                                td { (op.state.as_str()) }
                                td.num { (op.processed) " / " (op.estimate) }
                                td { (time(&op.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "Longer histories are on each service's " code { "/metrics" } " (Grafana dashboards in " code { "dashboards/" } ")." }
    };
    page(
        StatusCode::OK,
        layout(&app, Some(&s), Nav::Overview, "Overview", body),
    )
}
