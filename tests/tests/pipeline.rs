//! The whole path with all four services against the real broker and Redis: request →
//! ingest → scheduler → worker → retries through the replayer → DLQ → replay after the fix.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rdkafka::Message;
use reqwest::StatusCode;
use serde_json::json;
use sked_e2e::{
    create_topics, header, http,
    ingest::Ingest,
    read_topic,
    replayer::{Replayer, replay_and_wait, replayer_sets},
    scheduler::Scheduler,
    unique,
    worker::{Endpoint, Worker, worker_sets},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_job_retries_with_backoff_dead_letters_once_and_runs_once_after_replay() {
    let fixed = Arc::new(AtomicBool::new(false));
    let f = fixed.clone();
    // `broken` fails until fixed; `flaky` fails the first call of each job only.
    let endpoint = Endpoint::start(move |call, earlier| {
        let broken = call.job_id.starts_with("broken");
        let status = if broken {
            if f.load(Ordering::SeqCst) { 200 } else { 500 }
        } else if earlier == 0 {
            503
        } else {
            200
        };
        (status, Duration::ZERO)
    })
    .await;

    let ns = unique("pipeline");
    let mut sets = replayer_sets(&ns);
    sets.extend(worker_sets(&ns));
    sets.push(format!("apps.broken.url={}", endpoint.url("/broken")));
    sets.push(format!("apps.flaky.url={}", endpoint.url("/flaky")));
    let config = sked_core::config::load(&sked_core::config::Layers {
        sets,
        ..Default::default()
    })
    .unwrap();
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let worker = Worker::start(config.clone()).await;
    let replayer = Replayer::start(config.clone()).await;

    let submit = |body: serde_json::Value| {
        let url = format!("{}/v1/jobs", ingest.api());
        async move {
            let resp = http()
                .post(url)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
        }
    };
    let retry = json!({"max_attempts": 3, "initial": "1s", "max": "10s", "jitter": 0.0});
    submit(json!({"id": "broken-1", "app": "broken", "delay": "500ms", "payload": {"n": 12345678901234567890u64}, "retry": retry})).await;
    submit(
        json!({"id": "flaky-1", "app": "flaky", "delay": "500ms", "payload": {}, "retry": retry}),
    )
    .await;

    // Three executions of the broken job, spaced by the backoff (1 s, then 2 s), then one
    // dead letter.
    let dead = read_topic(
        &config.topics.dlq,
        3,
        1,
        Duration::from_secs(30),
        Duration::from_secs(3),
    );
    assert_eq!(dead.len(), 1, "exactly one dead letter");
    let letter = &dead[0];
    assert_eq!(header(letter, "sked-job-id").as_deref(), Some("broken-1"));
    assert_eq!(header(letter, "sked-stage").as_deref(), Some("execute"));
    assert_eq!(header(letter, "sked-attempts").as_deref(), Some("3"));
    assert_eq!(
        header(letter, "original-topic").as_deref(),
        Some(config.topics.due.as_str())
    );
    for name in [
        "original-partition",
        "original-offset",
        "error-message",
        "error-timestamp",
        "failed-at",
        "error-reason",
        "sked-reason",
        "sked-fire-id",
        "traceparent",
    ] {
        assert!(header(letter, name).is_some(), "dead letter lacks {name}");
    }
    let envelope: serde_json::Value = serde_json::from_slice(letter.payload().unwrap()).unwrap();
    assert_eq!(
        envelope["job_id"], "broken-1",
        "the dead letter is the fired record, unchanged"
    );
    assert!(String::from_utf8_lossy(letter.payload().unwrap()).contains("12345678901234567890"));

    let calls = endpoint.calls_for("broken-1");
    assert_eq!(calls.len(), 3, "max_attempts = 3 executions");
    let gaps: Vec<i64> = calls
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_milliseconds())
        .collect();
    assert!(
        gaps[0] >= 1000 && gaps[1] >= 2000,
        "backoff 1 s then 2 s: {gaps:?}"
    );
    let attempts: Vec<String> = calls
        .iter()
        .map(|c| c.headers["sked-attempt"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    let fire_ids: std::collections::BTreeSet<_> = calls
        .iter()
        .map(|c| c.headers["sked-fire-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(fire_ids.len(), 1, "every attempt carries the fire id");
    let (_, job) = ingest.get_job("broken-1").await;
    assert_eq!(job["run"]["state"], "dead");

    // The flaky job failed once and succeeded on its retry.
    ingest
        .wait_run_state("flaky-1", "succeeded", Duration::from_secs(10))
        .await;
    assert_eq!(endpoint.calls_for("flaky-1").len(), 2);

    // Fix the app, replay the dead letter: it runs once more, and succeeds.
    fixed.store(true, Ordering::SeqCst);
    let selection = json!({"job_id": "broken-1"});
    let done = replay_and_wait(&replayer.api(), &selection, Duration::from_secs(30)).await;
    assert_eq!(done["published"], 1);
    ingest
        .wait_run_state("broken-1", "succeeded", Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        endpoint.calls_for("broken-1").len(),
        4,
        "the replay ran the job once"
    );

    // Every attempt, newest first, with its outcome, error, headers and the trace id the
    // handler was called under.
    let (_, job) = ingest.get_job("broken-1").await;
    let attempts = job["attempts"].as_array().expect("attempts").clone();
    let seen: Vec<(String, u64, u64)> = attempts
        .iter()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap().to_owned(),
                a["attempt"].as_u64().unwrap(),
                a["replay"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64, u64)> = [
        ("succeeded", 1, 1),
        ("dead", 3, 0),
        ("retrying", 2, 0),
        ("retrying", 1, 0),
    ]
    .into_iter()
    .map(|(o, a, r)| (o.to_owned(), a, r))
    .collect();
    assert_eq!(seen, want, "{attempts:#?}");
    let calls = endpoint.calls_for("broken-1");
    for (a, call) in attempts.iter().rev().zip(&calls) {
        let traceparent = call.headers["traceparent"].to_str().unwrap();
        assert_eq!(
            a["trace_id"].as_str(),
            traceparent.split('-').nth(1),
            "the trace id the handler got: {a}"
        );
        assert_eq!(a["headers"]["sked-fire-id"], a["fire_id"], "{a}");
        assert_eq!(
            Some(a["fire_id"].as_str().unwrap()),
            call.headers["sked-fire-id"].to_str().ok()
        );
        let started: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(a["started_at"].clone()).unwrap();
        let finished: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(a["finished_at"].clone()).unwrap();
        assert!(started <= finished, "{a}");
        if a["outcome"] == "succeeded" {
            assert!(a.get("error").is_none(), "{a}");
        } else {
            assert!(a["error"].as_str().unwrap().contains("500"), "{a}");
        }
    }

    replayer.stop().await;
    worker.stop().await;
    scheduler.stop().await;
    ingest.stop().await;
}
