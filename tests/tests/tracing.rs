//! OTLP trace export end to end: all four services in-process export to an in-process
//! OTLP/HTTP receiver, and a job that fails once and then succeeds shows up as one connected
//! trace: ingest → fire → attempt 1 → retry drain → fire of the retry → attempt 2. Each fire
//! of a recurring job is a trace of its own, linked to the submission.
//!
//! The global `tracing` subscriber is set once per test binary: keep this file to one test.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, any_value},
    trace::v1::Span,
};
use prost::Message as _;
use serde_json::json;
use sked_e2e::{
    create_topics, eventually,
    ingest::Ingest,
    produce, producer,
    replayer::{Replayer, replayer_sets},
    scheduler::Scheduler,
    unique,
    worker::{Endpoint, Worker, worker_sets},
};

/// The spans received, with the `service.name` of their resource.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn traces(State(received): State<Received>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut received = received.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.push((service.clone(), span));
            }
        }
    }
    StatusCode::OK
}

fn text(value: Option<&AnyValue>) -> Option<String> {
    match value?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| text(kv.value.as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_failing_once_then_succeeding_is_one_connected_trace() {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // `flaky` fails each job's first call; the recurring `tick-1` always succeeds.
    let endpoint = Endpoint::start(|call, earlier| {
        let ok = call.job_id.starts_with("tick") || earlier > 0;
        (if ok { 200 } else { 503 }, Duration::ZERO)
    })
    .await;
    let ns = unique("tracing");
    let mut sets = replayer_sets(&ns);
    sets.extend(worker_sets(&ns));
    sets.push(format!("apps.flaky.url={}", endpoint.url("/flaky")));
    let config = sked_core::config::load(&sked_core::config::Layers {
        sets,
        ..Default::default()
    })
    .unwrap();
    let telemetry = sked_core::telemetry::init_with_endpoint(
        "sked-e2e",
        &config.log,
        &format!("http://{addr}/v1/traces"),
    );
    assert!(telemetry.exporting());

    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let worker = Worker::start(config.clone()).await;
    let replayer = Replayer::start(config.clone()).await;

    // The client's own trace: everything sked does for the job joins it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    let body = json!({
        "id": "traced-1",
        "app": "flaky",
        "delay": "200ms",
        "payload": {},
        "retry": {"max_attempts": 3, "initial": "1s", "max": "1s", "jitter": 0.0},
    });
    produce(
        &producer(),
        &config.topics.ingest,
        None,
        Some(b"traced-1"),
        Some(body.to_string().as_bytes()),
        &[("traceparent", traceparent.as_str())],
    )
    .await;

    let tick_trace = "0af7651916cd43dd8448eb211c80319c";
    let tick_parent = format!("00-{tick_trace}-b7ad6b7169203331-01");
    let tick = json!({"id": "tick-1", "app": "flaky", "every": "1s", "max_runs": 2, "payload": {}});
    produce(
        &producer(),
        &config.topics.ingest,
        None,
        Some(b"tick-1"),
        Some(tick.to_string().as_bytes()),
        &[("traceparent", tick_parent.as_str())],
    )
    .await;

    ingest
        .wait_run_state("traced-1", "succeeded", Duration::from_secs(30))
        .await;
    assert_eq!(endpoint.calls_for("traced-1").len(), 2);
    let handler_trace = endpoint.calls_for("traced-1")[1].headers["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        handler_trace.contains(trace_id),
        "the handler's request carries the trace: {handler_trace}"
    );

    // Spans end when their work returns; flush until both attempts arrived.
    let spans = eventually(
        Duration::from_secs(15),
        "both attempt spans exported",
        || {
            let received = received.clone();
            let telemetry = &telemetry;
            async move {
                telemetry.flush().await;
                let spans: Vec<(String, Span)> = received
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, s)| attr(s, "sked.job.id").as_deref() == Some("traced-1"))
                    .cloned()
                    .collect();
                let attempts = spans
                    .iter()
                    .filter(|(_, s)| s.name.ends_with(".due process"))
                    .count();
                (attempts >= 2).then_some(spans)
            }
        },
    )
    .await;

    eventually(Duration::from_secs(15), "tick-1 ran twice", || async {
        (endpoint.calls_for("tick-1").len() == 2).then_some(())
    })
    .await;
    let ticks = eventually(
        Duration::from_secs(15),
        "both tick-1 attempt spans exported",
        || {
            let received = received.clone();
            let telemetry = &telemetry;
            async move {
                telemetry.flush().await;
                let spans: Vec<Span> = received
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, s)| attr(s, "sked.job.id").as_deref() == Some("tick-1"))
                    .map(|(_, s)| s.clone())
                    .collect();
                let attempts = spans
                    .iter()
                    .filter(|s| s.name.ends_with(".due process"))
                    .count();
                (attempts >= 2).then_some(spans)
            }
        },
    )
    .await;

    replayer.stop().await;
    worker.stop().await;
    scheduler.stop().await;
    ingest.stop().await;
    telemetry.shutdown().await;

    // A recurring job: its submission in the client's trace, each fire a new trace linked to
    // it, each attempt in its fire's trace.
    let submitted = ticks
        .iter()
        .find(|s| s.name.ends_with(".ingest process"))
        .expect("tick-1 ingest span");
    assert_eq!(hex(&submitted.trace_id), tick_trace);
    let fires: Vec<&Span> = ticks
        .iter()
        .filter(|s| s.name.ends_with(".due publish"))
        .collect();
    assert_eq!(fires.len(), 2, "two fires");
    let fire_traces: BTreeSet<String> = fires.iter().map(|s| hex(&s.trace_id)).collect();
    assert_eq!(fire_traces.len(), 2, "a trace per fire: {fire_traces:?}");
    assert!(
        !fire_traces.contains(tick_trace),
        "fires leave the submission's trace"
    );
    for fire in &fires {
        assert!(
            fire.parent_span_id.is_empty(),
            "a fire is the root of its trace"
        );
        assert!(
            fire.links
                .iter()
                .any(|l| hex(&l.trace_id) == tick_trace && l.span_id == submitted.span_id),
            "the fire links to the submission: {:?}",
            fire.links
        );
    }
    for attempt in ticks.iter().filter(|s| s.name.ends_with(".due process")) {
        let fire = fires
            .iter()
            .find(|f| f.span_id == attempt.parent_span_id)
            .expect("an attempt's parent is its fire");
        assert_eq!(attempt.trace_id, fire.trace_id);
    }

    let names: Vec<String> = spans.iter().map(|(_, s)| s.name.clone()).collect();
    let count = |suffix: &str| names.iter().filter(|n| n.ends_with(suffix)).count();
    assert_eq!(count(".ingest process"), 1, "{names:?}");
    assert_eq!(
        count(".due publish"),
        2,
        "fire and the retry's fire: {names:?}"
    );
    assert_eq!(count(".due process"), 2, "two attempts: {names:?}");
    assert_eq!(count(".retry process"), 1, "the retry drain: {names:?}");

    // One trace, the client's.
    let traces: BTreeSet<String> = spans.iter().map(|(_, s)| hex(&s.trace_id)).collect();
    assert_eq!(traces, BTreeSet::from([trace_id.to_owned()]), "{names:?}");

    // Connected: every span's parent is the client's span or another span of the job.
    let by_id: BTreeMap<String, &Span> = spans.iter().map(|(_, s)| (hex(&s.span_id), s)).collect();
    for (_, span) in &spans {
        let parent = hex(&span.parent_span_id);
        assert!(
            parent == client_span || by_id.contains_key(&parent),
            "span {} has a parent {parent} outside the job's trace",
            span.name
        );
    }
    // And in causal order: ingest → fire 1 → attempt 1 → retry drain → fire 2 → attempt 2.
    let parent_name = |span: &Span| {
        by_id
            .get(&hex(&span.parent_span_id))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "client".into())
    };
    let mut chain = Vec::new();
    let mut span = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| {
            s.name.ends_with(".due process") && attr(s, "sked.attempt").as_deref() == Some("2")
        })
        .expect("attempt 2 span");
    loop {
        chain.push(span.name.clone());
        match by_id.get(&hex(&span.parent_span_id)) {
            Some(p) => span = p,
            None => break,
        }
    }
    chain.reverse();
    assert_eq!(
        chain,
        [
            format!("{} process", config.topics.ingest),
            format!("{} publish", config.topics.due),
            format!("{} process", config.topics.due),
            format!("{} process", config.topics.retry),
            format!("{} publish", config.topics.due),
            format!("{} process", config.topics.due),
        ],
        "parents: {:?}",
        spans
            .iter()
            .map(|(_, s)| (s.name.clone(), parent_name(s)))
            .collect::<Vec<_>>()
    );
    for (service, span) in &spans {
        assert_eq!(service, "sked-e2e");
        if !span.name.starts_with("POST") {
            assert_eq!(attr(span, "messaging.system").as_deref(), Some("kafka"));
            assert!(attr(span, "messaging.destination.name").is_some());
            assert!(attr(span, "messaging.operation.type").is_some());
        }
    }
}
