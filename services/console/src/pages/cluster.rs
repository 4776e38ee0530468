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
            @if let Some(l) = &c.lateness {
                div.card data-test="lateness" {
                    h2 { "Firing lateness" }
                    @match (l.p50_ms, l.p99_ms, l.max_ms) {
                        (Some(p50), Some(p99), Some(max)) => {
                            p.big { span data-test="lateness-p99" { (ms(p99)) } }
                            p.muted { "p99 · p50 " span data-test="lateness-p50" { (ms(p50)) } " · max " span data-test="lateness-max" { (ms(max)) } }
                        }
                        _ => { p.big { "—" } }
                    }
                    p.muted { span data-test="lateness-fires" { (l.fires) } @if l.fires == 1 { " fire" } @else { " fires" } " in the last " (l.seconds) " s, fired minus due" }
                }
            }
            @if let Some(m) = &c.redis {
                div.card data-test="redis-memory" {
                    h2 { "Redis memory" }
                    p.big data-test="redis-used" { (bytes(m.used_bytes)) }
                    p.muted {
                        @match m.bytes_per_pending {
                            Some(b) => { span data-test="bytes-per-pending" { (bytes(b)) } " per pending job (" (m.pending) " pending, all keys counted)" }
                            None => { "no pending job" }
                        }
                        @if m.nodes > 1 { " · " (m.nodes) " primaries" }
                    }
                }
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

/// A lateness in ms: µs under a millisecond, seconds above 10 s.
fn ms(v: f64) -> String {
    if v < 1.0 {
        format!("{:.0} µs", v * 1000.0)
    } else if v < 10_000.0 {
        format!("{v:.1} ms").replace(".0 ms", " ms")
    } else {
        format!("{:.1} s", v / 1000.0)
    }
}

/// Bytes, in the largest unit under 1,024 of it.
fn bytes(n: u64) -> String {
    let mut v = n as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if v < 1024.0 {
            return if unit == "B" {
                format!("{n} B")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    format!("{v:.1} TiB")
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
        p.muted { "The schedulers share every shard (each claim holds its own lease), so there are no shard leases to show. Each service's " code { "/metrics" } " has the rest." }
    };
    page(
        StatusCode::OK,
        layout(&app, Some(&s), Nav::Cluster, "Cluster", body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_and_bytes_read_naturally() {
        assert_eq!(ms(0.25), "250 µs");
        assert_eq!(ms(3.0), "3 ms");
        assert_eq!(ms(1.5), "1.5 ms");
        assert_eq!(ms(30_000.0), "30.0 s");
        assert_eq!(bytes(744), "744 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
