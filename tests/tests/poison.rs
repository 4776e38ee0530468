//! Poison pills cannot block a partition: records too large to dead-letter whole reach the DLQ
//! cut to fit (with `sked-truncated`, `sked-original-bytes`, `sked-original-sha256`), and the
//! records after them in the same partition are handled; a REST body over the limit gets the
//! JSON error.
//!
//! About the broker: tansu 0.6 (the test broker) enforces no record size of its own. It
//! decodes records of up to 1 GiB, ignores a topic's `max.message.bytes`, and its
//! DescribeConfigs answers only the configs a topic was created with (none here, so sked's
//! start-up check reads nothing and goes on). The limit these tests run into is the one of the
//! report: librdkafka's `message.max.bytes`, which sked's producers check before sending
//! (default 1,000,000 bytes, below sked's default `limits.max_request_bytes` of 1 MiB). A
//! broker that refuses a letter as too large (Apache Kafka's `MESSAGE_TOO_LARGE`) cannot be
//! reproduced with tansu; `sked_core::kafka::dlq::Sender` handles it like librdkafka's error.
//! The tests publish with a producer allowing 10 MB records, one record per batch (tansu
//! answers a fetch that starts inside a record batch with nothing).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    message::OwnedMessage,
};
use reqwest::StatusCode;
use serde_json::Value;
use sked_e2e::{
    admin_metrics, brokers, create_topics, eventually, header, http,
    ingest::Ingest,
    large_producer, produce,
    replayer::{Replayer, replayer_config},
    test_config, unique,
    worker::{Worker, fire, metric_sum, worker_config},
};
use sked_worker::{HandlerError, Handlers, Job};

/// sked's default `limits.max_request_bytes`.
const MAX_REQUEST: usize = 1 << 20;
/// What sked's producers send by default: `limits.max_request_bytes` + 64 KiB.
const PRODUCER_LIMIT: usize = MAX_REQUEST + 65536;

/// [`sked_e2e::read_topic`] off the async runtime.
async fn read(
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        sked_e2e::read_topic(
            &topic,
            partitions,
            expected,
            timeout,
            Duration::from_secs(2),
        )
    })
    .await
    .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `prefix`, then `x` up to `len` bytes, then `suffix`.
fn padded(prefix: &str, len: usize, suffix: &str) -> Vec<u8> {
    let fill = len - prefix.len() - suffix.len();
    format!("{prefix}{}{suffix}", "x".repeat(fill)).into_bytes()
}

/// The committed offset of `group` on partition `partition` of `topic` (-1 when none).
async fn committed(group: &str, topic: &str, partition: i32) -> i64 {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, partition);
        let c = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        match c.find_partition(&topic, partition).unwrap().offset() {
            Offset::Offset(o) => o,
            _ => -1,
        }
    })
    .await
    .unwrap()
}

/// Checks a letter cut to fit `limit`: the marks, and a value that is the start of `original`.
fn assert_cut(letter: &OwnedMessage, original: &[u8], limit: usize) {
    assert_eq!(header(letter, "sked-truncated").as_deref(), Some("true"));
    assert_eq!(
        header(letter, "sked-original-bytes"),
        Some(original.len().to_string())
    );
    assert_eq!(
        header(letter, "sked-original-sha256"),
        Some(sha256_hex(original))
    );
    let kept = letter.payload().unwrap();
    assert!(
        kept.len() < limit && kept.len() > limit - 4096,
        "cut to about the limit: {} of {limit}",
        kept.len()
    );
    assert_eq!(kept, &original[..kept.len()], "the start of the original");
}

/// The report of issue 10: a request of exactly `limits.max_request_bytes` that is rejected
/// (its letter is over librdkafka's default 1,000,000 bytes) and one of twice that, on one
/// partition, followed by valid requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_dead_lettered_and_the_requests_after_them_are_stored() {
    let ns = unique("poison");
    let config = test_config(&ns, &[]);
    assert_eq!(config.limits.max_request_bytes, MAX_REQUEST, "the default");
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;

    let exact = padded(
        r#"{"id":"exact","app":"sms","delay":"1h","colour":""#,
        MAX_REQUEST,
        r#""}"#,
    );
    let double = padded(
        r#"{"id":"double","app":"sms","delay":"1h","payload":""#,
        2 * MAX_REQUEST,
        r#""}"#,
    );
    assert_eq!((exact.len(), double.len()), (MAX_REQUEST, 2 * MAX_REQUEST));
    let p = large_producer();
    let topic = &config.topics.ingest;
    let (_, exact_at) = produce(
        &p,
        topic,
        Some(0),
        Some(b"exact"),
        Some(&exact),
        &[("x-a", "1")],
    )
    .await;
    let (_, double_at) = produce(
        &p,
        topic,
        Some(0),
        Some(b"double"),
        Some(&double),
        &[("x-a", "2")],
    )
    .await;
    let mut last = 0;
    for i in 0..3 {
        let body = format!(r#"{{"id":"after-{i}","app":"sms","delay":"1h"}}"#);
        (_, last) = produce(&p, topic, Some(0), None, Some(body.as_bytes()), &[]).await;
    }

    eventually(Duration::from_secs(60), "after-2 stored", || {
        ingest.get_job_text("after-2")
    })
    .await;
    for i in 0..2 {
        assert!(ingest.get_job_text(&format!("after-{i}")).await.is_some());
    }
    let dead = read(&config.topics.dlq, 1, 2, Duration::from_secs(30)).await;
    assert_eq!(dead.len(), 2, "one letter each");
    let (whole, cut) = (&dead[0], &dead[1]);

    // Exactly at the limit: rejected for its field, and its letter fits whole.
    assert_eq!(
        header(whole, "sked-reason").as_deref(),
        Some("unknown_field")
    );
    assert_eq!(header(whole, "original-offset"), Some(exact_at.to_string()));
    assert_eq!(whole.payload().unwrap(), exact.as_slice(), "original bytes");
    assert_eq!(whole.key(), Some(&b"exact"[..]));
    assert_eq!(header(whole, "x-a").as_deref(), Some("1"));
    assert_eq!(header(whole, "sked-truncated"), None);

    // Twice the limit: cut to what the producer sends, marked, original headers kept.
    assert_eq!(
        header(cut, "sked-reason").as_deref(),
        Some("payload_too_large")
    );
    assert_eq!(header(cut, "original-offset"), Some(double_at.to_string()));
    assert_eq!(cut.key(), Some(&b"double"[..]));
    assert_eq!(header(cut, "x-a").as_deref(), Some("2"));
    assert_cut(cut, &double, PRODUCER_LIMIT);

    // Nothing was retried forever, and the partition's commit went past every record.
    let text = admin_metrics(ingest.admin).await;
    assert_eq!(
        metric_sum(&text, "sked_ingest_dlq_truncated_total", &[]),
        1.0,
        "{text}"
    );
    assert_eq!(metric_sum(&text, "sked_ingest_dlq_errors_total", &[]), 0.0);
    assert_eq!(metric_sum(&text, "sked_ingest_dlq_dropped_total", &[]), 0.0);
    assert_eq!(
        metric_sum(&text, "sked_ingest_dlq_parked_letters", &[]),
        0.0
    );
    eventually(Duration::from_secs(10), "offsets committed", || async {
        (committed(&config.ingest.group_id, topic, 0).await == last + 1).then_some(())
    })
    .await;
    ingest.stop().await;
}

/// An operator's own `message.max.bytes`, below what a largest request needs: the service
/// warns at start and cuts letters to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_message_max_bytes_below_the_request_limit_cuts_letters_to_it() {
    let ns = unique("poison-own");
    let config = test_config(&ns, &["kafka.rdkafka.message.max.bytes=100000"]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let bad = padded("{not json ", 300_000, "");
    let p = large_producer();
    let topic = &config.topics.ingest;
    produce(&p, topic, Some(0), Some(b"bad"), Some(&bad), &[]).await;
    let body = br#"{"id":"after-own","app":"sms","delay":"1h"}"#;
    produce(&p, topic, Some(0), None, Some(body), &[]).await;
    eventually(Duration::from_secs(60), "after-own stored", || {
        ingest.get_job_text("after-own")
    })
    .await;
    let dead = read(&config.topics.dlq, 1, 1, Duration::from_secs(30)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0], "sked-reason").as_deref(),
        Some("invalid_json")
    );
    assert_cut(&dead[0], &bad, 100_000);
    ingest.stop().await;
}

/// A fire whose envelope is too large to dead-letter whole (published straight to the due
/// topic, twice the request limit), whose handler fails for good: its letter arrives cut, and
/// the fire after it in the same partition runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_fire_is_dead_lettered_cut_and_the_next_fire_of_its_partition_runs() {
    let ns = unique("poison-w");
    let config = worker_config(&ns, &["apps.big.handler=big", "apps.ok.handler=ok"]);
    create_topics(&config, 3).await;
    let ran = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = ran.clone();
    let handlers = Handlers::new()
        .with("big", |_job: Job| async {
            Err::<(), _>(HandlerError::permanent("rejected: too big for the app"))
        })
        .with("ok", move |job: Job| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(job.job_id.to_string());
                Ok(())
            }
        });
    let worker = Worker::start_with(config.clone(), handlers).await;

    let payload = format!("\"{}\"", "y".repeat(2 * MAX_REQUEST));
    let (big, big_headers) = fire("big-1", "big", chrono::Utc::now(), &payload, 1);
    let (small, small_headers) = fire("after-1", "ok", chrono::Utc::now(), r#"{"k":1}"#, 1);
    let p = large_producer();
    let due = &config.topics.due;
    for (key, value, headers) in [
        ("big-1", &big, &big_headers),
        ("after-1", &small, &small_headers),
    ] {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        produce(&p, due, Some(0), Some(key.as_bytes()), Some(value), &h).await;
    }

    eventually(Duration::from_secs(60), "after-1 ran", || async {
        ran.lock()
            .unwrap()
            .contains(&"after-1".to_owned())
            .then_some(())
    })
    .await;
    let dead = read(&config.topics.dlq, 3, 1, Duration::from_secs(30)).await;
    assert_eq!(dead.len(), 1, "one letter");
    let letter = &dead[0];
    assert_eq!(
        header(letter, "sked-reason").as_deref(),
        Some("permanent_error")
    );
    assert_eq!(header(letter, "sked-job-id").as_deref(), Some("big-1"));
    assert_eq!(header(letter, "sked-stage").as_deref(), Some("execute"));
    assert_cut(letter, &big, PRODUCER_LIMIT);
    let text = worker.metrics().await;
    assert_eq!(
        metric_sum(&text, "sked_worker_dlq_truncated_total", &[]),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(
            &text,
            "sked_worker_dead_letters_total",
            &["reason=\"permanent_error\""]
        ),
        1.0
    );
    eventually(Duration::from_secs(10), "offsets committed", || async {
        (committed(&config.worker.group_id, due, 0).await == 2).then_some(())
    })
    .await;
    worker.stop().await;
}

/// The replayer's retry drain: a retry record too large to dead-letter whole, and one after it
/// in the same partition, both undecodable: both letters arrive, the first cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_retry_record_is_dead_lettered_cut_and_the_drain_goes_on() {
    let ns = unique("poison-r");
    let config = replayer_config(&ns, &[]);
    create_topics(&config, 1).await;
    let replayer = Replayer::start(config.clone()).await;
    let junk = padded("not an envelope ", 2 * MAX_REQUEST, "");
    let p = large_producer();
    let retry = &config.topics.retry;
    produce(
        &p,
        retry,
        Some(0),
        Some(b"r1"),
        Some(&junk),
        &[("sked-attempt", "2")],
    )
    .await;
    produce(&p, retry, Some(0), Some(b"r2"), Some(b"junk too"), &[]).await;
    let dead = read(&config.topics.dlq, 1, 2, Duration::from_secs(60)).await;
    assert_eq!(dead.len(), 2, "both letters");
    assert_eq!(dead[0].key(), Some(&b"r1"[..]));
    assert_cut(&dead[0], &junk, PRODUCER_LIMIT);
    assert_eq!(dead[1].payload(), Some(&b"junk too"[..]));
    assert_eq!(header(&dead[1], "sked-truncated"), None);
    let text = replayer.metrics().await;
    assert_eq!(
        metric_sum(&text, "sked_replayer_dlq_truncated_total", &[]),
        1.0,
        "{text}"
    );
    replayer.stop().await;
}

async fn send(method: reqwest::Method, url: String, body: Vec<u8>) -> (StatusCode, String, Value) {
    let r = http()
        .request(method, url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, r.json().await.unwrap_or(Value::Null))
}

/// Bodies over the limit get 413 with the JSON error body, whether axum's body limit or the
/// request parser refuses them, on the REST API and the DLQ API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_with_the_json_error() {
    let ns = unique("poison-http");
    let config = replayer_config(&ns, &[]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let replayer = Replayer::start(config.clone()).await;
    use reqwest::Method;
    let api = ingest.api();
    let huge = padded(
        r#"{"app":"sms","delay":"1s","payload":""#,
        2 * MAX_REQUEST,
        r#""}"#,
    );
    let just_over = padded(
        r#"{"app":"sms","delay":"1s","payload":""#,
        MAX_REQUEST + 10,
        r#""}"#,
    );
    for (method, url, body) in [
        (Method::POST, format!("{api}/v1/jobs"), huge.clone()),
        (Method::POST, format!("{api}/v1/jobs"), just_over),
        (Method::PUT, format!("{api}/v1/jobs/j1"), huge.clone()),
        (
            Method::POST,
            format!("{api}/v1/schedules/preview"),
            huge.clone(),
        ),
        (Method::POST, format!("{api}/v1/operations"), huge.clone()),
        (Method::PUT, format!("{api}/v1/calendars/c1"), huge.clone()),
        (
            Method::POST,
            format!("{}/v1/dlq/replays", replayer.api()),
            padded(r#"{"app":""#, 100_000, r#""}"#),
        ),
    ] {
        let what = format!("{method} {url} ({} bytes)", body.len());
        let (status, content_type, json) = send(method, url, body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{what}");
        assert!(
            content_type.starts_with("application/json"),
            "{what}: {content_type}"
        );
        assert_eq!(json["error"]["code"], "payload_too_large", "{what}: {json}");
        assert!(
            json["error"]["message"].as_str().unwrap().contains("limit"),
            "{what}: {json}"
        );
    }
    replayer.stop().await;
    ingest.stop().await;
}

/// A letter that the producer refuses as too large although it was fit to the limit the
/// sender knew (here: the sender is told 1,000,000 bytes, the producer sends 100,000, as when a
/// broker's limit is lower than configured) is cut to half its size and sent again, not
/// retried as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_refused_as_too_large_is_cut_again_and_sent() {
    use sked_core::kafka::{dlq, size::MessageLimit};
    let ns = unique("poison-refused");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let producer: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("message.max.bytes", "100000")
        .create()
        .unwrap();
    let counters = dlq::Counters::default();
    let sender = dlq::Sender::new(
        producer,
        config.topics.dlq.clone(),
        &MessageLimit {
            bytes: 1_000_000,
            wanted: PRODUCER_LIMIT,
            explicit: true,
        },
        counters.clone(),
    );
    let value = padded("{", 500_000, "}");
    let letter = dlq::Record {
        key: Some(b"k".to_vec()),
        payload: Some(value.clone()),
        headers: rdkafka::message::OwnedHeaders::new(),
    };
    let sent = sender.send(&letter).await;
    assert!(
        matches!(sent, dlq::Sent::Acked { truncated: true }),
        "{sent:?}"
    );
    // 500,000 bytes fit to 1,000,000: produced whole, refused (over 100,000); then fit to
    // 250,000, 125,000 and 62,500: the last one is accepted.
    assert_eq!(counters.errors.get(), 3, "three refusals");
    assert_eq!(counters.truncated.get(), 1);
    let dead = read(&config.topics.dlq, 1, 1, Duration::from_secs(30)).await;
    assert_eq!(dead.len(), 1);
    assert_cut(&dead[0], &value, 62_500);
}
