//! `GET /v1/cluster` against the real broker and Redis: the due index over every shard, each
//! service's consumer group with its lag per partition, and the warnings that hold now (the
//! schedulers behind, a group without members).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sked_core::config::token_hash;
use sked_e2e::{
    create_topics, eventually, http, http_as, ingest::Ingest, produce, producer,
    scheduler::Scheduler, test_config, unique,
};

const ACME: &str = "acme-cluster-token-5Tq";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_view_shows_the_due_backlog_group_lag_and_warnings() {
    let ns = unique("cluster-view");
    let acme = format!("auth.tokens.acme.hash={}", token_hash(ACME));
    let worker_group = format!("worker.group_id={ns}-worker");
    let config = test_config(
        &ns,
        &[
            &acme,
            r#"auth.tokens.acme.scopes=["jobs:read"]"#,
            r#"auth.tokens.acme.tenants=["acme"]"#,
            &worker_group,
            "scheduler.misfire_threshold=30s",
            "kafka.stall_after=3s",
        ],
    );
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let api = ingest.api();
    // No scheduler runs: three jobs an hour overdue, one due tomorrow.
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for i in 0..3 {
        submit(
            &api,
            json!({"id": format!("late-{i}"), "app": "sms", "run_at": past, "payload": {}}),
        )
        .await;
    }
    submit(
        &api,
        json!({"id": "later", "app": "sms", "delay": "1d", "payload": {}}),
    )
    .await;

    let view: Value = eventually(
        Duration::from_secs(20),
        "the figures with the jobs",
        || async {
            let v = read_view(&api).await?;
            (v["due"]["indexed"] == 4).then_some(v)
        },
    )
    .await;
    assert_eq!(view["due"]["due_now"], 3, "{view}");
    assert_eq!(view["due"]["in_flight"], 0);
    let behind = view["due"]["behind_ms"].as_i64().unwrap();
    assert!((3_500_000..3_700_000).contains(&behind), "{view}");
    let warnings: Vec<&str> = view["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("the schedulers are behind")),
        "{warnings:?}"
    );
    let groups = view["groups"].as_array().unwrap();
    let services: Vec<&str> = groups
        .iter()
        .map(|g| g["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["ingest", "worker", "replayer"]);
    let worker = &groups[1];
    assert_eq!(worker["group"], format!("{ns}-worker"));
    let due_parts: Vec<&Value> = worker["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == config.topics.due.as_str())
        .collect();
    assert_eq!(due_parts.len(), 3, "{worker}");
    let ingest_group = &groups[0];
    assert_eq!(
        ingest_group["lag"], 0,
        "REST jobs leave no lag: {ingest_group}"
    );
    // tansu 0.6 does not tell a group's members (Apache Kafka does): `members` is absent, and
    // with it the "no member" warning; the stall warning below still shows a worker missing.
    assert!(
        worker["members"].is_null() || worker["members"].is_u64(),
        "{worker}"
    );

    // Rates: three requests on the ingest topic show as ingested, between two reads.
    let producer = producer();
    for i in 0..3 {
        let request =
            json!({"id": format!("kafka-{i}"), "app": "sms", "delay": "1d", "payload": {}});
        produce(
            &producer,
            &config.topics.ingest,
            None,
            None,
            Some(request.to_string().as_bytes()),
            &[],
        )
        .await;
    }
    let r = grown(&api, "ingested_per_s", 3.0).await;
    assert_eq!(r["fired_per_s"], 0.0, "{r}");

    // Two fired records that no worker reads: fired, not executed; lag on the due topic,
    // then, once the committed offset has not moved for `kafka.stall_after`, a warning
    // naming the partition.
    for _ in 0..2 {
        produce(
            &producer,
            &config.topics.due,
            Some(1),
            Some(b"k"),
            Some(b"{}"),
            &[],
        )
        .await;
    }
    let r = grown(&api, "fired_per_s", 2.0).await;
    assert_eq!(r["executed_per_s"], 0.0, "no worker: {r}");
    assert!(r["failure_rate"].is_null(), "nothing executed: {r}");
    let warning = eventually(Duration::from_secs(30), "a stall warning", || async {
        let v = read_view(&api).await?;
        let lag = v["groups"][1]["lag"].as_i64()?;
        v["warnings"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .find(|w| w.contains(&format!("group {ns}-worker has")))
            .map(|w| (lag, w.to_owned()))
    })
    .await;
    assert_eq!(warning.0, 2, "{warning:?}");
    assert!(
        warning.1.starts_with(&format!(
            "{}/1: group {ns}-worker has 2 records of lag",
            config.topics.due
        )),
        "{warning:?}"
    );

    // Across tenants: not for a token bound to one.
    let resp = http_as(Some(ACME))
        .get(format!("{api}/v1/cluster"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    ingest.stop().await;
}

/// Submits `job` over REST; asserts it was accepted.
async fn submit(api: &str, job: Value) {
    let resp = http()
        .post(format!("{api}/v1/jobs"))
        .json(&job)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        resp.text().await.unwrap()
    );
}

/// `GET /v1/cluster` as the test token; `None` on any failure (to be asked again).
async fn read_view(api: &str) -> Option<Value> {
    sked_e2e::try_json(&format!("{api}/v1/cluster")).await
}

/// Sums `rate × seconds` over the reads of `GET /v1/cluster` (each read once) until it
/// reaches `want` (30 s at most), and asserts it is `want`, not more: the rates count each
/// record once, however the reads split them. Returns the rates of the last read summed.
async fn grown(api: &str, rate: &str, want: f64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut sum, mut last_at, mut last) = (0.0, Value::Null, Value::Null);
    while sum < want - 0.01 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(v) = read_view(api).await else {
            continue;
        };
        if v["at"] == last_at || v["rates"].is_null() {
            continue;
        }
        last_at = v["at"].clone();
        let r = v["rates"].clone();
        let seconds = r["seconds"].as_f64().unwrap();
        // The view sleeps 5 s between its reads, and each read takes what the broker takes
        // (4 s once, in a loaded CI run), so only the lower bound is the view's own.
        assert!(seconds >= 4.9, "at least 5 s between reads: {r}");
        sum += r[rate].as_f64().unwrap() * seconds;
        last = r;
    }
    assert!(
        (sum - want).abs() < 0.01,
        "{rate}: {sum} records, not {want}: {last}"
    );
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_processes_announce_themselves_and_leave_when_they_drain() {
    use sked_core::store::{Store, replicas::Replica};
    let ns = unique("replicas");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let api = ingest.api();
    // What a process killed -9 leaves: one quiet for 30 s (not listed, kept) and one for
    // 11 minutes (removed by the next read).
    let store = Store::connect(&config.redis).await.unwrap();
    let ghost = |id: &str, ago: chrono::Duration| {
        let at = chrono::Utc::now() - ago;
        Replica {
            service: "worker".into(),
            id: id.into(),
            host: format!("{id}-host"),
            version: "0.0.0".into(),
            started_at: at,
            seen_at: at,
            figures: Default::default(),
            lateness: None,
        }
    };
    store
        .announce(&ghost("quiet", chrono::Duration::seconds(30)))
        .await
        .unwrap();
    store
        .announce(&ghost("gone", chrono::Duration::minutes(11)))
        .await
        .unwrap();
    submit(
        &api,
        json!({"id": "now", "app": "sms", "delay": "0s", "payload": {}}),
    )
    .await;
    // One job that stays pending, for the bytes per pending job.
    submit(
        &api,
        json!({"id": "later", "app": "sms", "delay": "1h", "payload": {}}),
    )
    .await;

    let cluster = || async { Some(read_view(&api).await?["replicas"].as_array()?.clone()) };
    let replicas = eventually(Duration::from_secs(30), "the scheduler's fire", || async {
        let r = cluster().await?;
        r.iter()
            .any(|r| r["service"] == "scheduler" && r["figures"]["fired"] == 1)
            .then_some(r)
    })
    .await;
    let services: Vec<&str> = replicas
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["ingest", "scheduler"], "{replicas:?}");
    let s = &replicas[1];
    assert_eq!(s["figures"]["early"], 0, "{s}");
    assert_eq!(s["figures"]["claimed"], 1, "{s}");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_ne!(replicas[0]["id"], s["id"]);

    // The lateness of the last minute: the scheduler's histogram holds its one fire, and the
    // merge over every scheduler gives it as p50, p99 and max alike.
    let window: sked_core::store::replicas::LatenessWindow =
        serde_json::from_value(s["lateness"].clone()).unwrap();
    assert_eq!(window.counts.iter().sum::<u64>(), 1, "{s}");
    assert_eq!(window.counts.len(), window.bounds_us.len() + 1);
    let v = eventually(
        Duration::from_secs(12),
        "the lateness and memory",
        || async {
            let v = read_view(&api).await?;
            (v["lateness"]["fires"] == 1 && v["redis"]["pending"] == 1).then_some(v)
        },
    )
    .await;
    let l = &v["lateness"];
    let max = l["max_ms"].as_f64().unwrap();
    assert!((0.0..10_000.0).contains(&max), "{l}");
    assert_eq!(l["p50_ms"], l["max_ms"], "{l}");
    assert_eq!(l["p99_ms"], l["max_ms"], "{l}");
    assert_eq!(l["seconds"], 60);
    let m = &v["redis"];
    assert_eq!(m["nodes"], 1, "{m}");
    assert!(m["used_bytes"].as_u64().unwrap() > 100_000, "{m}");
    assert_eq!(
        m["bytes_per_pending"], m["used_bytes"],
        "one job pending: {m}"
    );
    // A second scheduler's 99 fires 2.5 s late (in the bucket up to 3 s) are merged with it.
    let mut twin = ghost("twin", chrono::Duration::zero());
    twin.service = "scheduler".into();
    let three_s = window
        .bounds_us
        .iter()
        .position(|b| *b == 3_000_000)
        .unwrap();
    let mut counts = vec![0; window.counts.len()];
    counts[three_s] = 99;
    twin.lateness = Some(sked_core::store::replicas::LatenessWindow {
        counts,
        max_us: 2_500_000,
        ..window.clone()
    });
    store.announce(&twin).await.unwrap();
    let l = eventually(
        Duration::from_secs(12),
        "both schedulers merged",
        || async {
            let v = read_view(&api).await?;
            (v["lateness"]["fires"] == 100).then(|| v["lateness"].clone())
        },
    )
    .await;
    assert_eq!(l["p50_ms"], 2500.0, "{l}");
    assert_eq!(l["p99_ms"], 2500.0, "{l}");
    assert_eq!(l["max_ms"], 2500.0, "{l}");
    store.retire("twin").await.unwrap();
    let mut conn = store.connection();
    let kept: Vec<String> = redis::cmd("ZRANGE")
        .arg(store.keys().replicas_seen())
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(kept.contains(&"quiet".to_owned()), "{kept:?}");
    assert!(!kept.contains(&"gone".to_owned()), "{kept:?}");
    let info: Option<String> = redis::cmd("HGET")
        .arg(store.keys().replica_info())
        .arg("gone")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(info, None);

    // A scheduler that drains leaves the list at once, not 20 s later.
    scheduler.stop().await;
    eventually(Duration::from_secs(12), "the scheduler gone", || async {
        let r = cluster().await?;
        (!r.iter().any(|r| r["service"] == "scheduler")).then_some(())
    })
    .await;
    ingest.stop().await;
}
