//! Ingest scenarios against the real broker and Redis.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use reqwest::StatusCode;
use sked_e2e::{
    create_topics, due_count, eventually, header, ingest::Ingest, produce, producer, read_topic,
    redis_url, test_config, unique,
};

const FIDELITY: &str = r#"{"n": 12345, "big": 12345678901234567890, "s": "héllo ✓"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_scheduler_request_from_plain_client_is_stored_and_readable() {
    let ns = unique("is");
    let config = test_config(&ns, &["default_timezone=Asia/Dhaka"]);
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;

    let body = format!(
        r#"{{"requestId":"sms-1","appName":"sms","scheduledTime":"2030-01-02 10:00:00","priority":"high","idempotencyKey":"sms-1-key","jobData":{FIDELITY},"unknownExtra":true}}"#
    );
    produce(
        &producer(),
        &config.topics.ingest,
        None,
        Some(b"sms-job-1"),
        Some(body.as_bytes()),
        &[],
    )
    .await;

    let text = eventually(Duration::from_secs(30), "job sms-1 stored", || {
        ingest.get_job_text("sms-1")
    })
    .await;
    assert!(
        text.contains(FIDELITY),
        "payload not byte-identical in {text}"
    );
    let job: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(job["id"], "sms-1");
    assert_eq!(job["state"], "scheduled");
    // 10:00 in Asia/Dhaka (UTC+6) is 04:00 UTC.
    assert_eq!(job["next_due"], "2030-01-02T04:00:00Z");
    assert_eq!(job["job"]["app"], "sms");
    assert_eq!(job["job"]["priority"], "high");

    // The operator CLI reads the same job through the REST API.
    let text = sked_cli::run([
        "sked",
        "--token",
        sked_e2e::TEST_TOKEN,
        "--api",
        &ingest.api(),
        "job",
        "get",
        "sms-1",
    ])
    .await
    .unwrap();
    assert!(text.contains("scheduled"), "{text}");
    assert!(
        text.contains(FIDELITY),
        "payload unchanged in the CLI output: {text}"
    );
    let missing = sked_cli::run([
        "sked",
        "--token",
        sked_e2e::TEST_TOKEN,
        "--api",
        &ingest.api(),
        "job",
        "get",
        "nope",
    ])
    .await
    .unwrap_err();
    assert_eq!(missing.code, 3, "not found exits 3");
    ingest.stop().await;
}

/// Bad input of every kind, interleaved with good requests on one partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_lands_in_dlq_once_with_original_bytes_and_headers() {
    let ns = unique("dlq");
    let config = test_config(
        &ns,
        &[
            "limits.max_request_bytes=1024",
            "apps.sms.handler=http",
            "apps.sms.url=http://127.0.0.1:9/sms",
        ],
    );
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;

    let good =
        |id: &str| format!(r#"{{"id":"{id}","app":"sms","delay":"1h","payload":{{"k":1}}}}"#);
    let big = format!(
        r#"{{"id":"big","app":"sms","delay":"1h","payload":"{}"}}"#,
        "x".repeat(2000)
    );
    type Case<'a> = (Option<&'a [u8]>, Vec<u8>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (Some(b"k1"), b"{not json".to_vec(), "invalid_json"),
        (
            Some(b"k2"),
            br#"{"id":"m","delay":"1h"}"#.to_vec(),
            "missing_field",
        ),
        (
            Some(b"k3"),
            br#"{"id":"t","app":"sms","run_at":"yesterday-ish"}"#.to_vec(),
            "invalid_time",
        ),
        (
            Some(b"k4"),
            br#"{"id":"z","app":"sms","run_at":"2030-01-01T10:00:00","timezone":"Mars/Base"}"#
                .to_vec(),
            "invalid_timezone",
        ),
        (
            Some(b"k5"),
            br#"{"id":"c","app":"sms","cron":"61 * * * *"}"#.to_vec(),
            "invalid_cron",
        ),
        (
            Some(b"k6"),
            br#"{"id":"u","app":"fax","delay":"1h"}"#.to_vec(),
            "unknown_app",
        ),
        (Some(b"k7"), big.into_bytes(), "payload_too_large"),
        (
            Some(b"k8"),
            br#"{"id":"f","app":"sms","delay":"1h","colour":"red"}"#.to_vec(),
            "unknown_field",
        ),
        (Some(b"k9"), vec![b'{', 0xff, 0xfe, b'}'], "invalid_utf8"),
    ];

    let p = producer();
    let topic = &config.topics.ingest;
    produce(
        &p,
        topic,
        Some(0),
        Some(b"g1"),
        Some(good("good-1").as_bytes()),
        &[],
    )
    .await;
    let mut sent = Vec::new();
    for (key, value, reason) in &cases {
        let (_, offset) =
            produce(&p, topic, Some(0), *key, Some(value), &[("x-trace", "abc")]).await;
        sent.push((
            key.map(<[u8]>::to_vec),
            Some(value.clone()),
            *reason,
            offset,
        ));
    }
    // A tombstone without a key cannot name a job.
    let (_, offset) = produce(&p, topic, Some(0), None, None, &[]).await;
    sent.push((None, None, "missing_field", offset));
    produce(
        &p,
        topic,
        Some(0),
        Some(b"g2"),
        Some(good("good-2").as_bytes()),
        &[],
    )
    .await;

    eventually(Duration::from_secs(30), "good-2 stored", || async {
        ingest.get_job_text("good-2").await
    })
    .await;
    assert!(ingest.get_job_text("good-1").await.is_some());

    let dead = read_topic(
        &config.topics.dlq,
        1,
        sent.len(),
        Duration::from_secs(20),
        Duration::from_secs(2),
    );
    assert_eq!(dead.len(), sent.len(), "one dead letter per bad input");
    use rdkafka::Message;
    for (msg, (key, value, reason, offset)) in dead.iter().zip(&sent) {
        assert_eq!(msg.key().map(<[u8]>::to_vec), *key, "key of {reason}");
        assert_eq!(
            msg.payload().map(<[u8]>::to_vec),
            *value,
            "bytes of {reason}"
        );
        assert_eq!(header(msg, "sked-reason").as_deref(), Some(*reason));
        assert_eq!(header(msg, "error-reason").as_deref(), Some(*reason));
        assert_eq!(header(msg, "sked-stage").as_deref(), Some("ingest"));
        assert_eq!(header(msg, "sked-attempts").as_deref(), Some("0"));
        assert_eq!(
            header(msg, "original-topic").as_deref(),
            Some(topic.as_str())
        );
        assert_eq!(header(msg, "original-partition").as_deref(), Some("0"));
        assert_eq!(header(msg, "original-offset"), Some(offset.to_string()));
        assert!(
            !header(msg, "error-message").unwrap_or_default().is_empty(),
            "{reason} has a message"
        );
        let ts: i64 = header(msg, "error-timestamp").unwrap().parse().unwrap();
        assert!(ts > 1_700_000_000_000);
        let failed_at = header(msg, "failed-at").unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(&failed_at).is_ok(),
            "failed-at {failed_at}"
        );
        if value.is_some() {
            assert_eq!(
                header(msg, "x-trace").as_deref(),
                Some("abc"),
                "original headers copied"
            );
        }
    }
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstone_cancels_the_job_named_by_its_key() {
    let ns = unique("tomb");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let p = producer();
    let body = br#"{"id":"to-cancel","app":"sms","delay":"1h"}"#;
    produce(
        &p,
        &config.topics.ingest,
        None,
        Some(b"to-cancel"),
        Some(body),
        &[],
    )
    .await;
    produce(
        &p,
        &config.topics.ingest,
        None,
        Some(b"to-cancel"),
        None,
        &[],
    )
    .await;
    eventually(Duration::from_secs(30), "job cancelled", || async {
        let (status, job) = ingest.get_job("to-cancel").await;
        (status == StatusCode::OK && job["state"] == "cancelled").then_some(())
    })
    .await;
    assert_eq!(
        due_count(&redis_url(), &config.redis.key_prefix, config.redis.shards).await,
        0
    );
    ingest.stop().await;
}
