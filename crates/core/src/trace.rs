//! W3C trace context across Kafka: a span's context goes out in the `traceparent` header (or
//! the job record, from ingest to the scheduler), and the next hop's span takes it as parent,
//! so one trace shows ingest → fire → each attempt → retry → DLQ → replay for a job.
//!
//! Span and attribute names follow the OpenTelemetry messaging conventions: spans are named
//! `<destination> publish` / `<destination> process` (`otel.name`), with
//! `messaging.system = "kafka"`, `messaging.destination.name`, `messaging.operation.type`,
//! `messaging.kafka.message.key`, `messaging.kafka.offset`, plus `sked.job.id`,
//! `sked.fire.id`, `sked.attempt`. Without an exporter the helpers are no-ops (spans have no
//! valid context), and callers fall back to what they had.
//!
//! A one-shot job is one trace. Each fire of a recurring job starts a trace of its own, linked
//! to the submission's span; its attempts, retries and replays join the fire's trace.

use std::collections::HashMap;

use opentelemetry::{
    Context,
    propagation::TextMapPropagator as _,
    trace::{TraceContextExt as _, TraceId},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::kafka::headers::TRACEPARENT;

/// The context of a W3C `traceparent` value (an empty context when it does not parse).
pub fn context_of(traceparent: &str) -> Context {
    let traceparent = traceparent.trim();
    if !well_formed(traceparent) {
        return Context::new();
    }
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    TraceContextPropagator::new().extract(&carrier)
}

/// Whether `traceparent` has the W3C shape `vv-<32 hex>-<16 hex>-ff` (lowercase; a later
/// version may append fields): the propagator alone takes a short trace id such as `abc`
/// and pads it with zeros.
fn well_formed(traceparent: &str) -> bool {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut parts = traceparent.split('-');
    let (Some(v), Some(trace), Some(span), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    hex(v, 2)
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && (v != "00" || parts.next().is_none())
}

/// The last `traceparent` header of `headers`, as UTF-8.
pub fn header<H: Headers>(headers: Option<&H>) -> Option<&str> {
    headers?
        .iter()
        .filter(|h| h.key == TRACEPARENT)
        .last()?
        .value
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The `<topic> process` consumer span of one Kafka record (messaging conventions), child of
/// `traceparent` when it is valid. `sked.job.id`, `sked.fire.id` and `sked.attempt` are
/// declared for the caller to record once it knows them.
pub fn process_span(
    topic: &str,
    key: Option<&str>,
    offset: i64,
    traceparent: Option<&str>,
) -> Span {
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("{topic} process"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.destination.name = topic,
        messaging.operation.type = "process",
        messaging.kafka.message.key = key,
        messaging.kafka.offset = offset,
        sked.job.id = tracing::field::Empty,
        sked.fire.id = tracing::field::Empty,
        sked.attempt = tracing::field::Empty,
    );
    set_parent(&span, traceparent);
    span
}

/// Makes `traceparent` (when valid) the parent of `span`. Call before the span is entered.
pub fn set_parent(span: &Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    let cx = context_of(tp);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Links `span` to the span of `traceparent` (when valid) without making it the parent, so
/// `span` starts a trace of its own: each fire of a recurring job, which would otherwise add
/// every fire of a years-long cron to its submission's trace. Call before the span is entered.
pub fn add_link(span: &Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    let sc = context_of(tp).span().span_context().clone();
    if sc.is_valid() {
        span.add_link(sc);
    }
}

/// The W3C `traceparent` of `span`, when it is exported (has a valid context).
pub fn traceparent(span: &Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The trace id of a `traceparent` value, when it parses.
pub fn trace_id(traceparent: &str) -> Option<TraceId> {
    let cx = context_of(traceparent);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id())
}

/// `headers` with every `traceparent` replaced by `traceparent` (appended last).
pub fn replace_header(headers: &OwnedHeaders, traceparent: &str) -> OwnedHeaders {
    let mut out = OwnedHeaders::new_with_capacity(headers.count() + 1);
    for h in headers.iter().filter(|h| h.key != TRACEPARENT) {
        out = out.insert(Header {
            key: h.key,
            value: h.value,
        });
    }
    out.insert(Header {
        key: TRACEPARENT,
        value: Some(traceparent.as_bytes()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn only_well_formed_traceparents_give_a_context() {
        assert_eq!(
            trace_id(TP).map(|t| t.to_string()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert!(
            trace_id(&format!(" {TP} ")).is_some(),
            "blanks around it are trimmed"
        );
        for bad in [
            "00-abc-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-abc-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "",
        ] {
            assert!(trace_id(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn traceparent_round_trips_through_headers() {
        assert_eq!(
            trace_id(TP).unwrap().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(trace_id("garbage").is_none());
        let hs = OwnedHeaders::new()
            .insert(Header {
                key: TRACEPARENT,
                value: Some("00-old"),
            })
            .insert(Header {
                key: "k",
                value: Some("v"),
            });
        let hs = replace_header(&hs, TP);
        assert_eq!(header(Some(&hs)), Some(TP));
        assert_eq!(hs.count(), 2);
        // Without an OpenTelemetry layer a span has no context.
        assert_eq!(traceparent(&tracing::info_span!("x")), None);
    }
}
