//! Worker scenarios against the real broker and Redis: on-time execution through the whole
//! pipeline, retries then one dead letter, kill -9 mid-job and after an uncommitted success,
//! straight-to-DLQ failures, SIGTERM under load, per-key order.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    message::{Headers, OwnedMessage},
};
use sked_core::{
    config::Config,
    job::JobId,
    store::{Store, runs::RunState},
};
use sked_e2e::{
    Proc, brokers, create_topics, eventually, header,
    ingest::Ingest,
    produce, producer,
    scheduler::Scheduler,
    test_sets, unique,
    worker::{Endpoint, Worker, fire, metric_sum, produce_fire, worker_config, worker_sets},
};
use sked_worker::{HandlerError, Handlers, Job};

/// [`sked_e2e::read_topic`] off the async runtime.
async fn read(
    topic: &str,
    expected: usize,
    timeout: Duration,
    settle: Duration,
) -> Vec<OwnedMessage> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || sked_e2e::read_topic(&topic, 3, expected, timeout, settle))
        .await
        .unwrap()
}

fn headers_of(msg: &OwnedMessage) -> Vec<(String, String)> {
    msg.headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Produces `msg` again (key, value, headers) to `topic`: what the replayer and scheduler do
/// with a retry record when its time comes.
async fn refire(topic: &str, msg: &OwnedMessage) {
    let headers = headers_of(msg);
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    produce(&producer(), topic, None, msg.key(), msg.payload(), &h).await;
}

fn ms(msg: &OwnedMessage, name: &str) -> i64 {
    header(msg, name).unwrap().parse().unwrap()
}

fn kafka_ms(msg: &OwnedMessage) -> i64 {
    msg.timestamp().to_millis().unwrap()
}

async fn run_state(config: &Config, job: &str) -> Option<(RunState, u32)> {
    let store = Store::connect(&config.redis).await.unwrap();
    store
        .run_info(&JobId::parse(job).unwrap())
        .await
        .unwrap()
        .map(|r| (r.state, r.attempts))
}

async fn sleep_until_ms(at_ms: i64) {
    let wait = at_ms - Utc::now().timestamp_millis();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

/// Committed offsets of `group` and the end offsets, per partition of `topic`.
async fn committed_and_end(group: &str, topic: &str) -> Vec<(i64, i64)> {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..3 {
            tpl.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        (0..3)
            .map(|p| {
                let c = match committed.find_partition(&topic, p).unwrap().offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                };
                let (_, high) = consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(10))
                    .unwrap();
                (c, high)
            })
            .collect()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn infinite_scheduler_request_runs_on_time_through_the_http_handler_with_the_original_bytes()
{
    let ns = unique("w-ontime");
    let endpoint = Endpoint::start(|_, _| (200, Duration::ZERO)).await;
    let url = format!("apps.sms.url={}", endpoint.url("/hooks/sms"));
    let config = worker_config(
        &ns,
        &[&url, "apps.sms.headers={ authorization = \"Bearer t\" }"],
    );
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let worker = Worker::start(config.clone()).await;

    let due = DateTime::<Utc>::from_timestamp(Utc::now().timestamp() + 4, 0).unwrap();
    let job_data = r#"{"phone":"+8801712345678","amount":12345678901234567890,"price":12.50,"text":"আপনার অর্ডার \"shipped\""}"#;
    let request = format!(
        r#"{{"requestId":"is-order-1","appName":"sms","scheduledTime":"{}","jobData":{job_data},"priority":"HIGH","idempotencyKey":"is-order-1"}}"#,
        due.format("%Y-%m-%dT%H:%M:%S")
    );
    produce(
        &producer(),
        &config.topics.ingest,
        None,
        Some(b"is-order-1"),
        Some(request.as_bytes()),
        &[],
    )
    .await;

    let call = eventually(Duration::from_secs(30), "the http handler call", || async {
        endpoint.calls_for("is-order-1").into_iter().next()
    })
    .await;
    assert!(
        call.at >= due,
        "ran {} ms early",
        (due - call.at).num_milliseconds()
    );
    assert!(
        (call.at - due).num_milliseconds() < 3000,
        "ran {} ms late",
        (call.at - due).num_milliseconds()
    );
    assert_eq!(
        call.body.as_ref(),
        job_data.as_bytes(),
        "payload bytes unchanged"
    );
    let h = |n: &str| call.headers.get(n).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h("sked-job-id"), "is-order-1");
    assert_eq!(
        h("sked-fire-id"),
        format!("is-order-1@{}", due.timestamp_millis())
    );
    assert_eq!(h("sked-attempt"), "1");
    assert_eq!(h("authorization"), "Bearer t");
    assert!(h("traceparent").starts_with("00-"));

    let run = eventually(Duration::from_secs(10), "run info succeeded", || async {
        let (_, body) = ingest.get_job("is-order-1").await;
        (body["run"]["state"] == "succeeded").then_some(body["run"].clone())
    })
    .await;
    assert_eq!(run["attempts"], 1);
    let text = worker.metrics().await;
    assert_eq!(
        metric_sum(
            &text,
            "sked_worker_executions_total",
            &["app=\"sms\"", "outcome=\"succeeded\""]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(&text, "sked_worker_start_latency_seconds_count", &[]),
        1.0
    );
    assert_eq!(endpoint.calls().len(), 1, "run once");
    worker.stop().await;
    scheduler.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn always_failing_handler_runs_max_attempts_spaced_by_backoff_then_one_dead_letter() {
    let ns = unique("w-retry");
    let config = worker_config(
        &ns,
        &[
            "apps.flaky.handler=flaky",
            r#"apps.flaky.retry={ max_attempts = 3, initial = "1s", max = "5s" }"#,
        ],
    );
    create_topics(&config, 3).await;
    type Calls = Arc<Mutex<Vec<(u32, DateTime<Utc>)>>>;
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let handlers = Handlers::new().with("flaky", move |job: Job| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push((job.attempt, Utc::now()));
            Err::<(), _>(HandlerError::transient("boom: gateway unavailable"))
        }
    });
    let worker = Worker::start_with(config.clone(), handlers).await;

    let payload = r#"{"n":12345678901234567890}"#;
    let (value, original) = produce_fire(
        &producer(),
        &config.topics.due,
        "flaky-1",
        "flaky",
        Utc::now(),
        payload,
    )
    .await;

    // Attempts 1 and 2 each produce one retry record; the test plays the replayer and the
    // scheduler and fires it again at its sked-retry-at.
    let mut retries = Vec::new();
    for (attempt, low, high) in [(1u32, 800i64, 1200i64), (2, 1600, 2400)] {
        let records = read(
            &config.topics.retry,
            attempt as usize,
            Duration::from_secs(30),
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(
            records.len(),
            attempt as usize,
            "one retry record per failed attempt"
        );
        let retry = records
            .into_iter()
            .find(|m| header(m, "sked-attempt") == Some((attempt + 1).to_string()))
            .unwrap();
        assert_eq!(
            retry.payload().unwrap(),
            value.as_slice(),
            "same envelope bytes"
        );
        assert_eq!(retry.key().unwrap(), b"flaky-1");
        assert_eq!(header(&retry, "retry-count"), Some(attempt.to_string()));
        assert!(header(&retry, "last-error").unwrap().contains("boom"));
        let delay = ms(&retry, "sked-retry-at") - kafka_ms(&retry);
        assert!(
            (low - 100..=high + 100).contains(&delay),
            "attempt {attempt}: retry in {delay} ms, expected {low}..{high}"
        );
        for (k, v) in &original {
            if k != "sked-attempt" {
                assert_eq!(header(&retry, k).as_ref(), Some(v), "header {k} kept");
            }
        }
        sleep_until_ms(ms(&retry, "sked-retry-at")).await;
        refire(&config.topics.due, &retry).await;
        retries.push(retry);
    }

    let dead = read(
        &config.topics.dlq,
        1,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(dead.len(), 1, "exactly one dead letter");
    let dead = &dead[0];
    assert_eq!(dead.payload().unwrap(), value.as_slice(), "original bytes");
    assert_eq!(dead.key().unwrap(), b"flaky-1", "original key");
    assert_eq!(
        header(dead, "sked-reason").as_deref(),
        Some("handler_failed")
    );
    assert_eq!(
        header(dead, "error-reason").as_deref(),
        Some("handler_failed")
    );
    assert_eq!(header(dead, "sked-stage").as_deref(), Some("execute"));
    assert_eq!(header(dead, "sked-attempts").as_deref(), Some("3"));
    assert_eq!(
        header(dead, "original-topic").as_deref(),
        Some(config.topics.due.as_str())
    );
    assert!(header(dead, "error-message").unwrap().contains("boom"));
    for name in [
        "original-partition",
        "original-offset",
        "error-timestamp",
        "failed-at",
    ] {
        assert!(header(dead, name).is_some(), "{name}");
    }
    for (k, _) in &original {
        assert!(header(dead, k).is_some(), "original header {k} copied");
    }

    let calls = calls.lock().unwrap().clone();
    let attempts: Vec<u32> = calls.iter().map(|(a, _)| *a).collect();
    assert_eq!(attempts, [1, 2, 3], "exactly three executions");
    let gap1 = (calls[1].1 - calls[0].1).num_milliseconds();
    let gap2 = (calls[2].1 - calls[1].1).num_milliseconds();
    assert!(gap1 >= 800, "second execution {gap1} ms after the first");
    assert!(gap2 >= 1600, "third execution {gap2} ms after the second");
    let retry_total = read(
        &config.topics.retry,
        3,
        Duration::from_secs(2),
        Duration::ZERO,
    )
    .await;
    assert_eq!(retry_total.len(), 2, "no retry after the last attempt");
    assert_eq!(
        run_state(&config, "flaky-1").await,
        Some((RunState::Dead, 3))
    );
    let text = worker.metrics().await;
    assert_eq!(
        metric_sum(&text, "sked_worker_retries_total", &[]),
        2.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(
            &text,
            "sked_worker_dead_letters_total",
            &["reason=\"handler_failed\""]
        ),
        1.0
    );
    worker.stop().await;
}

/// `--set` flags of a `sked-worker` process for test `ns`, its app `web` at `url`.
fn process_sets(ns: &str, url: &str, extra: &[&str]) -> Vec<String> {
    let mut sets = test_sets(ns);
    sets.extend(worker_sets(ns));
    sets.push(format!("apps.web.url={url}"));
    sets.extend(extra.iter().map(|s| s.to_string()));
    sets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_in_the_middle_of_a_job_runs_it_again_after_the_lease_and_it_completes() {
    let ns = unique("w-kill");
    // The first call hangs (the worker dies in it); later calls succeed at once.
    let endpoint = Endpoint::start(|_, earlier| {
        if earlier == 0 {
            (200, Duration::from_secs(60))
        } else {
            (200, Duration::ZERO)
        }
    })
    .await;
    let url = endpoint.url("/hook");
    let extra = ["worker.default_timeout=4s", "worker.lease_grace=1s"];
    let sets = process_sets(&ns, &url, &extra);
    let app_url = format!("apps.web.url={url}");
    let mut all: Vec<&str> = vec![&app_url];
    all.extend(extra);
    let config = worker_config(&ns, &all);
    create_topics(&config, 3).await;
    let mut proc = Proc::start("sked-worker", &sets);
    produce_fire(
        &producer(),
        &config.topics.due,
        "slow-1",
        "web",
        Utc::now(),
        r#"{"k":1}"#,
    )
    .await;
    eventually(Duration::from_secs(30), "the first call", || async {
        (!endpoint.calls_for("slow-1").is_empty()).then_some(())
    })
    .await;
    proc.kill9();

    let worker = Worker::start(config.clone()).await;
    let calls = eventually(
        Duration::from_secs(40),
        "the second call answered",
        || async {
            let calls = endpoint.calls_for("slow-1");
            (calls.len() == 2 && calls[1].answered.is_some()).then_some(calls)
        },
    )
    .await;
    let gap = (calls[1].at - calls[0].at).num_milliseconds();
    assert!(
        gap >= 4000,
        "ran again {gap} ms later, before the lease (5s) ended"
    );
    eventually(Duration::from_secs(10), "run info succeeded", || async {
        (run_state(&config, "slow-1").await == Some((RunState::Succeeded, 1))).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(endpoint.calls_for("slow-1").len(), 2, "no third run");
    let dlq = read(
        &config.topics.dlq,
        1,
        Duration::from_secs(1),
        Duration::ZERO,
    )
    .await;
    assert!(dlq.is_empty(), "nothing dead-lettered");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_after_an_uncommitted_success_the_redelivery_does_not_run_the_handler_again() {
    let ns = unique("w-done");
    let endpoint = Endpoint::start(|_, _| (200, Duration::ZERO)).await;
    let url = endpoint.url("/hook");
    // Never commits on its own: the success is durable in Redis only.
    let sets = process_sets(&ns, &url, &["worker.commit_interval=1h"]);
    let app_url = format!("apps.web.url={url}");
    let config = worker_config(&ns, &[&app_url]);
    create_topics(&config, 3).await;
    let mut proc = Proc::start("sked-worker", &sets);
    produce_fire(
        &producer(),
        &config.topics.due,
        "once-1",
        "web",
        Utc::now(),
        r#"{"k":1}"#,
    )
    .await;
    eventually(Duration::from_secs(30), "the success recorded", || async {
        (run_state(&config, "once-1").await == Some((RunState::Succeeded, 1))).then_some(())
    })
    .await;
    proc.kill9();
    let (committed, _) = committed_and_end(&config.worker.group_id, &config.topics.due)
        .await
        .into_iter()
        .fold((0, 0), |(c, e), (pc, pe)| (c + pc, e + pe));
    assert_eq!(committed, 0, "the killed worker committed nothing");

    let worker = Worker::start(config.clone()).await;
    eventually(
        Duration::from_secs(40),
        "the redelivery skipped",
        || async {
            let text = worker.metrics().await;
            (metric_sum(&text, "sked_worker_duplicates_skipped_total", &[]) == 1.0).then_some(())
        },
    )
    .await;
    assert_eq!(
        endpoint.calls_for("once-1").len(),
        1,
        "the handler ran once"
    );
    let text = worker.metrics().await;
    assert_eq!(metric_sum(&text, "sked_worker_executions_total", &[]), 0.0);
    worker.stop().await;
    let ends = committed_and_end(&config.worker.group_id, &config.topics.due).await;
    assert!(
        ends.iter().all(|(c, e)| c == e),
        "redelivery committed: {ends:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_without_handler_permanent_error_and_bad_envelope_go_straight_to_the_dlq() {
    let ns = unique("w-dlq");
    let endpoint = Endpoint::start(|_, _| (400, Duration::ZERO)).await;
    let url = format!("apps.web.url={}", endpoint.url("/hook"));
    let config = worker_config(&ns, &[&url, "apps.orphan.handler=nobody"]);
    create_topics(&config, 3).await;
    let worker = Worker::start(config.clone()).await;
    let p = producer();
    let due = &config.topics.due;
    let mut values = BTreeMap::new();
    for (job, app) in [
        ("bad-req", "web"),
        ("no-app", "ghost"),
        ("no-custom", "orphan"),
    ] {
        let (value, _) = produce_fire(&p, due, job, app, Utc::now(), r#"{"x":[1,2]}"#).await;
        values.insert(job.to_owned(), value);
    }
    produce(
        &p,
        due,
        None,
        Some(b"junk"),
        Some(b"not an envelope"),
        &[("sked-job-id", "junk")],
    )
    .await;
    values.insert("junk".into(), b"not an envelope".to_vec());

    let dead = read(
        &config.topics.dlq,
        4,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(dead.len(), 4, "one dead letter each");
    let by_key: BTreeMap<String, &OwnedMessage> = dead
        .iter()
        .map(|m| (String::from_utf8(m.key().unwrap().to_vec()).unwrap(), m))
        .collect();
    for (key, reason) in [
        ("bad-req", "permanent_error"),
        ("no-app", "no_handler"),
        ("no-custom", "no_handler"),
        ("junk", "invalid_envelope"),
    ] {
        let m = by_key[key];
        assert_eq!(header(m, "sked-reason").as_deref(), Some(reason), "{key}");
        assert_eq!(
            m.payload().unwrap(),
            values[key].as_slice(),
            "{key}: original bytes"
        );
        assert_eq!(header(m, "sked-job-id").as_deref(), Some(key));
    }
    assert_eq!(
        header(by_key["bad-req"], "sked-attempts").as_deref(),
        Some("1")
    );
    assert!(
        header(by_key["bad-req"], "error-message")
            .unwrap()
            .contains("400")
    );
    assert_eq!(
        endpoint.calls_for("bad-req").len(),
        1,
        "a permanent error is not retried"
    );
    let retries = read(
        &config.topics.retry,
        1,
        Duration::from_secs(1),
        Duration::ZERO,
    )
    .await;
    assert!(retries.is_empty(), "nothing retried");
    assert_eq!(
        run_state(&config, "bad-req").await,
        Some((RunState::Dead, 1))
    );
    let text = worker.metrics().await;
    assert_eq!(
        metric_sum(
            &text,
            "sked_worker_dead_letters_total",
            &["reason=\"no_handler\""]
        ),
        2.0,
        "{text}"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_running_jobs_commits_and_loses_or_repeats_nothing() {
    const N: usize = 400;
    let ns = unique("w-drain");
    let config = worker_config(&ns, &["worker.max_in_flight=16"]);
    create_topics(&config, 3).await;
    let p = producer();
    for i in 0..N {
        produce_fire(
            &p,
            &config.topics.due,
            &format!("L-{i}"),
            "load",
            Utc::now(),
            "{}",
        )
        .await;
    }
    let started: Arc<Mutex<Vec<String>>> = Arc::default();
    let finished: Arc<Mutex<Vec<String>>> = Arc::default();
    let handlers = || {
        let (started, finished) = (started.clone(), finished.clone());
        Handlers::new().with("load", move |job: Job| {
            let (started, finished) = (started.clone(), finished.clone());
            async move {
                started.lock().unwrap().push(job.fire_id.clone());
                tokio::time::sleep(Duration::from_millis(150)).await;
                finished.lock().unwrap().push(job.fire_id);
                Ok::<(), HandlerError>(())
            }
        })
    };
    let first = Worker::start_with(config.clone(), handlers()).await;
    eventually(Duration::from_secs(30), "some jobs done", || async {
        (finished.lock().unwrap().len() >= 60).then_some(())
    })
    .await;
    first.stop().await;
    let (s, f) = (
        started.lock().unwrap().len(),
        finished.lock().unwrap().len(),
    );
    assert_eq!(s, f, "every started job finished before the drain ended");
    assert!(f < N, "stopped under load ({f} of {N} done)");
    let committed: i64 = committed_and_end(&config.worker.group_id, &config.topics.due)
        .await
        .iter()
        .map(|(c, _)| c)
        .sum();
    assert!(committed > 0, "the drain committed finished offsets");
    assert!(
        committed <= f as i64,
        "never committed past an unfinished job"
    );

    let second = Worker::start_with(config.clone(), handlers()).await;
    eventually(Duration::from_secs(60), "every job done", || async {
        (finished.lock().unwrap().len() >= N).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    second.stop().await;
    let mut done = finished.lock().unwrap().clone();
    assert_eq!(done.len(), N, "no job ran twice");
    done.sort();
    done.dedup();
    assert_eq!(done.len(), N, "no job lost");
    let ends = committed_and_end(&config.worker.group_id, &config.topics.due).await;
    assert!(
        ends.iter().all(|(c, e)| c == e),
        "everything committed: {ends:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_key_jobs_run_in_order_while_other_keys_run_in_parallel() {
    let ns = unique("w-order");
    let config = worker_config(&ns, &["worker.max_in_flight=16"]);
    create_topics(&config, 3).await;
    let p = producer();
    let base = Utc::now();
    // Five fires of job A (same key, distinct fire ids), then one fire each of B0..B4.
    for seq in 0..5 {
        let due = base + chrono::Duration::milliseconds(seq);
        produce_fire(
            &p,
            &config.topics.due,
            "A",
            "ord",
            due,
            &format!(r#"{{"seq":{seq}}}"#),
        )
        .await;
    }
    for b in 0..5 {
        produce_fire(
            &p,
            &config.topics.due,
            &format!("B{b}"),
            "ord",
            base,
            r#"{"seq":0}"#,
        )
        .await;
    }
    type Span = (String, String, DateTime<Utc>, DateTime<Utc>);
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let record = spans.clone();
    let handlers = Handlers::new().with("ord", move |job: Job| {
        let record = record.clone();
        async move {
            let start = Utc::now();
            tokio::time::sleep(Duration::from_millis(300)).await;
            record.lock().unwrap().push((
                job.job_id.clone(),
                job.payload.to_string(),
                start,
                Utc::now(),
            ));
            Ok::<(), HandlerError>(())
        }
    });
    let worker = Worker::start_with(config.clone(), handlers).await;
    eventually(Duration::from_secs(30), "all ten runs", || async {
        (spans.lock().unwrap().len() == 10).then_some(())
    })
    .await;
    worker.stop().await;
    let spans = spans.lock().unwrap().clone();
    let a: Vec<&Span> = spans.iter().filter(|s| s.0 == "A").collect();
    let order: Vec<&str> = a.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(
        order,
        [
            r#"{"seq":0}"#,
            r#"{"seq":1}"#,
            r#"{"seq":2}"#,
            r#"{"seq":3}"#,
            r#"{"seq":4}"#
        ],
        "same key in order"
    );
    for w in a.windows(2) {
        assert!(
            w[1].2 >= w[0].3,
            "same key one after another, never overlapping"
        );
    }
    let max_overlap = spans
        .iter()
        .map(|s| spans.iter().filter(|o| o.2 <= s.2 && s.2 < o.3).count())
        .max()
        .unwrap();
    assert!(
        max_overlap >= 3,
        "other keys run in parallel (max overlap {max_overlap})"
    );
    let b_during_a = spans
        .iter()
        .filter(|s| s.0.starts_with('B'))
        .filter(|b| a.iter().any(|x| b.2 < x.3 && x.2 < b.3))
        .count();
    assert!(b_during_a >= 1, "B jobs ran while A's ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_handler_delivers_the_raw_payload_to_the_target_topic_keyed_by_job_id() {
    let ns = unique("w-kafka");
    let target = format!("{ns}.out");
    let topic = format!("apps.deliver.target_topic={target}");
    let config = worker_config(&ns, &["apps.deliver.handler=kafka", &topic]);
    create_topics(&config, 3).await;
    sked_core::kafka::topics::ensure(&config.kafka, std::slice::from_ref(&target), 3, 1)
        .await
        .unwrap();
    let worker = Worker::start(config.clone()).await;
    let payload = r#"{"order":12345678901234567890,"note":"ünïcode"}"#;
    produce_fire(
        &producer(),
        &config.topics.due,
        "deliver-1",
        "deliver",
        Utc::now(),
        payload,
    )
    .await;
    let out = read(&target, 1, Duration::from_secs(30), Duration::from_secs(1)).await;
    assert_eq!(out.len(), 1, "delivered once");
    assert_eq!(out[0].payload().unwrap(), payload.as_bytes(), "raw payload");
    assert_eq!(out[0].key().unwrap(), b"deliver-1");
    assert_eq!(header(&out[0], "sked-job-id").as_deref(), Some("deliver-1"));
    assert!(header(&out[0], "sked-fire-id").is_some());
    eventually(Duration::from_secs(10), "run info succeeded", || async {
        (run_state(&config, "deliver-1").await == Some((RunState::Succeeded, 1))).then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_circuit_hands_jobs_to_the_retry_topic_unrun_with_the_same_attempt() {
    let ns = unique("w-circuit");
    let endpoint = Endpoint::start(|_, _| (503, Duration::ZERO)).await;
    let url = format!("apps.down.url={}", endpoint.url("/hook"));
    let config = worker_config(
        &ns,
        &[
            &url,
            r#"apps.down.circuit_breaker={ failure_rate = 0.5, min_calls = 3, window = "60s", open_for = "60s" }"#,
        ],
    );
    create_topics(&config, 3).await;
    let worker = Worker::start(config.clone()).await;
    let p = producer();
    let due = &config.topics.due;
    let start = Utc::now().timestamp_millis();
    for i in 0..3 {
        produce_fire(&p, due, &format!("down-{i}"), "down", Utc::now(), "{}").await;
    }
    eventually(Duration::from_secs(30), "the breaker opens", || async {
        let text = worker.metrics().await;
        (metric_sum(&text, "sked_worker_circuit_state", &["app=\"down\""]) == 1.0).then_some(())
    })
    .await;
    assert_eq!(endpoint.calls().len(), 3, "three 503s opened it");

    // While open: a first attempt and a retry coming back (attempt 2) are not run.
    produce_fire(&p, due, "down-late-1", "down", Utc::now(), "{}").await;
    let (value, headers) = fire("down-late-2", "down", Utc::now(), "{}", 2);
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    produce(&p, due, None, Some(b"down-late-2"), Some(&value), &h).await;

    let records = read(
        &config.topics.retry,
        5,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    let end = Utc::now().timestamp_millis();
    assert_eq!(records.len(), 5, "three failure retries, two rejections");
    let rejected: Vec<&OwnedMessage> = records
        .iter()
        .filter(|m| header(m, "last-error").as_deref() == Some("circuit open"))
        .collect();
    assert_eq!(rejected.len(), 2);
    for (job, attempt) in [("down-late-1", 1u32), ("down-late-2", 2)] {
        let m = rejected
            .iter()
            .find(|m| m.key() == Some(job.as_bytes()))
            .unwrap_or_else(|| panic!("{job} not rejected"));
        assert_eq!(
            header(m, "sked-attempt"),
            Some(attempt.to_string()),
            "{job}: attempt unchanged"
        );
        assert_eq!(header(m, "retry-count"), Some((attempt - 1).to_string()));
        assert_eq!(header(m, "sked-job-id").as_deref(), Some(job));
        // Due when the breaker may close (60 s after it opened), plus at most 5 s of jitter.
        let retry_at = ms(m, "sked-retry-at");
        assert!(
            (start + 60_000..=end + 65_000).contains(&retry_at),
            "{job}: retry at {} ms from the start",
            retry_at - start
        );
        assert!(endpoint.calls_for(job).is_empty(), "{job} was sent");
        assert_eq!(run_state(&config, job).await, None, "{job}: no run state");
    }
    for m in records
        .iter()
        .filter(|m| header(m, "last-error").as_deref() != Some("circuit open"))
    {
        assert_eq!(header(m, "sked-attempt").as_deref(), Some("2"));
        assert!(header(m, "last-error").unwrap().contains("503"));
    }
    assert_eq!(endpoint.calls().len(), 3, "nothing sent while open");
    let text = worker.metrics().await;
    assert_eq!(
        metric_sum(
            &text,
            "sked_worker_circuit_rejections_total",
            &["app=\"down\""]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(
            &text,
            "sked_worker_executions_total",
            &["app=\"down\"", "outcome=\"transient\""]
        ),
        3.0
    );
    assert_eq!(metric_sum(&text, "sked_worker_retries_total", &[]), 3.0);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limited_app_starts_at_most_per_second_jobs() {
    const N: usize = 40;
    let ns = unique("w-rate");
    let endpoint = Endpoint::start(|_, _| (200, Duration::ZERO)).await;
    let url = format!("apps.slow.url={}", endpoint.url("/hook"));
    let config = worker_config(
        &ns,
        &[&url, "apps.slow.rate_limit={ per_second = 20, burst = 1 }"],
    );
    create_topics(&config, 3).await;
    // Every fire is waiting before the worker starts: only the limit spaces the calls.
    let p = producer();
    for i in 0..N {
        produce_fire(
            &p,
            &config.topics.due,
            &format!("slow-{i}"),
            "slow",
            Utc::now(),
            "{}",
        )
        .await;
    }
    let worker = Worker::start(config.clone()).await;
    let calls = eventually(Duration::from_secs(30), "every call", || async {
        let calls = endpoint.calls();
        (calls.len() >= N).then_some(calls)
    })
    .await;
    let mut at: Vec<DateTime<Utc>> = calls.iter().map(|c| c.at).collect();
    at.sort();
    // One token at start, then one every 50 ms: 39 intervals, 1.95 s.
    let span = (at[N - 1] - at[0]).num_milliseconds();
    assert!(span >= 1700, "{N} calls within {span} ms at 20/s");
    // Any 11 consecutive calls span 10 intervals (500 ms), less some slack.
    for w in at.windows(11) {
        let gap = (w[10] - w[0]).num_milliseconds();
        assert!(gap >= 400, "11 calls within {gap} ms at 20/s");
    }
    let text = worker.metrics().await;
    assert!(
        metric_sum(
            &text,
            "sked_worker_rate_limited_seconds_total",
            &["app=\"slow\""]
        ) > 1.0,
        "{text}"
    );
    worker.stop().await;
    assert_eq!(endpoint.calls().len(), N, "each job ran once");
}
