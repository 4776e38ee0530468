//! `sked-bench dlq [--requests N]`: the DLQ API at N dead letters (default 1,000,000; 20 apps,
//! 100 tenants, 5 reasons; a 94-byte value). Produces the letters to a fresh 12-partition DLQ
//! topic on the local broker, starts the replayer in-process on a private Redis, and reports how
//! fast the index takes them in, its Redis bytes per letter, and p50 / p99 / max of the API
//! calls behind `sked dlq ls`, `stats` and `show`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    PrivateRedis,
    bench_operate::{time_get, time_get_with, used_memory},
    create_topics, http, producer,
    replayer::{Failure, Record, Replayer, dlq_headers, produce_all},
    test_config, unique,
};

const VALUE: &str = r#"{"phone":"+8801712345678","text":"Your order 1234567 has shipped and arrives tomorrow","n":42}"#;
const REASONS: [&str; 5] = [
    "handler_failed",
    "timeout",
    "retries_exhausted",
    "invalid_json",
    "unknown_app",
];

fn letter(i: usize, target: &str, base: DateTime<Utc>) -> Record {
    let job = format!("job-{i}");
    let app = format!("app-{}", i % 20);
    let f = Failure {
        original_topic: target,
        stage: if i % 5 >= 3 { "ingest" } else { "execute" },
        reason: REASONS[i % 5],
        message: "HTTP 503 from https://gateway.example.com/v1/messages: upstream unavailable",
        at: base + chrono::Duration::milliseconds(i as i64),
        app: &app,
        job_id: &job,
        attempts: 3,
        replay_count: None,
    };
    let mut headers = dlq_headers(&f);
    headers.push(("sked-tenant".into(), format!("tenant-{}", i % 100)));
    Record {
        key: Some(job.into_bytes()),
        value: Some(VALUE.as_bytes().to_vec()),
        headers,
        partition: None,
    }
}

/// Runs the benchmark with `letters` dead letters.
pub async fn run(letters: usize) {
    let redis = PrivateRedis::start_with(false);
    let ns = unique("benchdlq");
    let url = format!("redis.url=redis://127.0.0.1:{}", redis.port);
    let mut config = test_config(&ns, &[&url, "replayer.index_max_letters=100000000"]);
    config.replayer.listen_addr = ([127, 0, 0, 1], 0).into();
    create_topics(&config, 12).await;

    let base = Utc::now() - chrono::Duration::days(30);
    let start = Instant::now();
    let p = producer();
    for chunk in (0..letters).collect::<Vec<_>>().chunks(20_000) {
        let records: Vec<Record> = chunk
            .iter()
            .map(|&i| letter(i, &config.topics.due, base))
            .collect();
        produce_all(&p, &config.topics.dlq, &records).await;
    }
    let produced = start.elapsed();
    println!(
        "produced {letters} letters in {:.1} s ({:.0}/s)",
        produced.as_secs_f64(),
        letters as f64 / produced.as_secs_f64()
    );

    let before = used_memory(&format!("redis://127.0.0.1:{}", redis.port)).await;
    let start = Instant::now();
    let replayer = Replayer::start_unindexed(config.clone()).await;
    let api = replayer.api();
    loop {
        let s: Value = http()
            .get(format!("{api}/v1/dlq/stats"))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        if s["index"]["letters"] == letters && s["index"]["caught_up"] == true {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3600),
            "not indexed in an hour: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = start.elapsed();
    let after = used_memory(&format!("redis://127.0.0.1:{}", redis.port)).await;
    println!(
        "indexed {letters} letters in {:.1} s ({:.0}/s, replayer start included)",
        took.as_secs_f64(),
        letters as f64 / took.as_secs_f64()
    );
    println!(
        "redis: {:.0} bytes per letter ({:.1} MiB for the index)",
        (after.saturating_sub(before)) as f64 / letters as f64,
        (after.saturating_sub(before)) as f64 / (1024.0 * 1024.0)
    );

    let n = 200;
    time_get(&api, "ls --app (first page of 100)", "/v1/dlq?app=app-7", n).await;
    time_get(&api, "ls --tenant", "/v1/dlq?tenant=tenant-42", n).await;
    time_get(&api, "ls --job-id", "/v1/dlq?job_id=job-4242", n).await;
    time_get(&api, "ls (no filter)", "/v1/dlq", n).await;
    let since = base + chrono::Duration::milliseconds(letters as i64 * 9 / 10);
    let path = format!("/v1/dlq?since={}", since.timestamp_millis());
    time_get(&api, "ls --since (newest 10 %)", &path, n).await;
    time_get(&api, "stats (no filter)", "/v1/dlq/stats", n).await;
    time_get(&api, "stats --tenant", "/v1/dlq/stats?tenant=tenant-42", n).await;
    // Queries that walk every candidate: few calls, and no 10 s client timeout.
    let mut auth = reqwest::header::HeaderMap::new();
    auth.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", crate::TEST_TOKEN))
            .expect("header"),
    );
    let patient = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .default_headers(auth)
        .build()
        .expect("client");
    let slow = [
        (
            "ls --app --reason (exact count)",
            "/v1/dlq?app=app-7&reason=timeout",
        ),
        ("stats --app (walks the app)", "/v1/dlq/stats?app=app-7"),
        ("ls --error (walks every letter)", "/v1/dlq?error=upstream"),
    ];
    for (name, path) in slow {
        time_get_with(&patient, &api, name, path, 5).await;
    }
    let one: Value = http()
        .get(format!("{api}/v1/dlq?job_id=job-4242"))
        .send()
        .await
        .expect("ls")
        .json()
        .await
        .expect("json");
    let (pt, off) = (
        &one["letters"][0]["partition"],
        &one["letters"][0]["offset"],
    );
    time_get(&api, "show", &format!("/v1/dlq/{pt}/{off}"), 20).await;
    replayer.stop().await;
    drop(redis);
}
