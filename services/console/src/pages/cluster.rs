//! `GET /cluster`: the due index and every consumer group with its lag per partition
//! (`GET /v1/cluster`, refreshed by the ingest service every few seconds).

use axum::{extract::State, http::StatusCode, response::Response};
use maud::{Markup, html};
use sked_api::stats::Cluster;

use super::{Nav, failure, layout, millis, page, time, time_opt};
use crate::{App, api::Api, web::Signed};

/// The warnings and the due index, for the overview too.
pub fn summary(c: &Cluster) -> Markup {
    html! {
        @for w in &c.warnings { p.warning role="status" data-test="cluster-warning" { (w) } }
        div.cards {
            div.card { h2 { "Due now" } p.big data-test="due-now" { (c.due.due_now) } p.muted { "not claimed yet" } }
            div.card { h2 { "Schedulers behind" } p.big { (millis(c.due.behind_ms)) } }
            div.card { h2 { "In flight" } p.big { (c.due.in_flight) } p.muted { "claimed, being published" } }
            div.card { h2 { "Due index" } p.big { (c.due.indexed) } p.muted { "earliest " (time_opt(c.due.oldest_due_at.as_ref())) } }
            @let schedulers: Vec<_> = c.replicas.iter().filter(|r| r.service == "scheduler").collect();
            @if !schedulers.is_empty() {
                @let early: i64 = schedulers.iter().filter_map(|r| r.figures.get("early")).sum();
                div.card { h2 { "Early fires" } p.big data-test="early-fires" { (early) } p.muted { "by the " (schedulers.len()) " schedulers running, since they started" } }
            }
            @for g in &c.groups {
                div.card { h2 { (g.service) " lag" } p.big { (g.lag) } p.muted { "group " code { (g.group) } } }
            }
        }
        @if let Some(r) = &c.rates {
            div.cards data-test="rates" {
                div.card { h2 { "Ingested" } p.big data-test="ingested-rate" { (per_s(r.ingested_per_s)) } p.muted { "per second, from the ingest topics" } }
                div.card { h2 { "Fired" } p.big data-test="fired-rate" { (per_s(r.fired_per_s)) } p.muted { "per second, to the due topics" } }
                div.card { h2 { "Executed" } p.big data-test="executed-rate" { (per_s(r.executed_per_s)) } p.muted { "per second, by the workers" } }
                div.card { h2 { "Failure rate" } p.big data-test="failure-rate" { @match r.failure_rate { Some(f) => { (format!("{:.1} %", f * 100.0)) } None => { "—" } } } p.muted { (per_s(r.retried_per_s)) " retried, " (per_s(r.dead_lettered_per_s)) " dead-lettered per second" } }
            }
            p.muted { "Rates over the last " (format!("{:.0}", r.seconds)) " s." }
        }
    }
}

/// A rate, with a decimal under 10 per second.
fn per_s(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.0}")
    }
}

/// `GET /cluster`.
pub async fn show(State(app): State<App>, Signed(s): Signed) -> Response {
    let c = match app
        .api
        .get::<Cluster>(Api::Rest, s.token(), "/v1/cluster")
        .await
    {
        Ok(c) => c,
        Err(e) => return failure(&app, Some(&s), &e),
    };
    let body = html! {
        div #cluster-live data-live {
            p.muted { "Read " (time(&c.at)) " by the ingest service (every 5 s)." }
            (summary(&c))
            h2 { "Processes" }
            table data-test="replicas" {
                thead { tr { th scope="col" { "service" } th scope="col" { "host" } th scope="col" { "version" } th scope="col" { "started" } th scope="col" { "last seen" } th scope="col" { "figures" } } }
                tbody {
                    @if c.replicas.is_empty() { tr { td colspan="6" { "No process has announced itself." } } }
                    @for r in &c.replicas {
                        tr data-test="replica" {
                            td { (r.service) }
                            td { code { (if r.host.is_empty() { r.id.as_str() } else { r.host.as_str() }) } }
                            td { (r.version) }
                            td { (time(&r.started_at)) }
                            td { (time(&r.seen_at)) }
                            td { @for (k, v) in &r.figures { (k) " " (v) " " } }
                        }
                    }
                }
            }
            @for g in &c.groups {
                h2 { (g.service) ": group " code { (g.group) } }
                p {
                    "members: " @match g.members { Some(m) => { (m) } None => { span.muted { "not reported by the broker" } } }
                    " · lag " (g.lag)
                }
                @if let Some(e) = &g.error { p.error { (e) } }
                table data-test="partitions" {
                    thead { tr { th scope="col" { "topic" } th scope="col" { "partition" } th scope="col" { "committed" } th scope="col" { "high watermark" } th scope="col" { "lag" } th scope="col" { "not moving for" } } }
                    tbody {
                        @for p in &g.partitions {
                            tr {
                                td { code { (p.topic) } } td.num { (p.partition) } td.num { (p.committed) } td.num { (p.high) } td.num { (p.lag) }
                                td.num { @if p.lag > 0 && p.still_ms > 0 { (millis(p.still_ms)) } }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "Scheduler replicas and their shard leases, and workers' jobs in flight, are on each service's " code { "/metrics" } "; the API does not serve them yet." }
    };
    page(
        StatusCode::OK,
        layout(&app, Some(&s), Nav::Cluster, "Cluster", body),
    )
}
