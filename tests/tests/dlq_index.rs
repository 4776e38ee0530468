//! The DLQ index against the real broker and Redis: after a replayer is killed -9 in the
//! middle of a burst of letters, the index its successor finishes holds every letter of the
//! topic once, and its counts agree with the topic; a bounded index evicts the oldest letters
//! and says it is incomplete; an index lost from Redis is rebuilt from the topic.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use rdkafka::Message;
use serde_json::Value;
use sked_e2e::{
    Proc, create_topics, eventually, header, producer, read_topic, redis, redis_url,
    replayer::{
        Failure, Record, Replayer, dlq_headers, free_port, get, produce_all, replayer_config,
        replayer_sets,
    },
    unique,
};

const APPS: [&str; 3] = ["sms", "email", "push"];
const TENANTS: [Option<&str>; 3] = [Some("acme"), Some("beta"), None];

/// Letter `i` of a run: app, tenant and reason cycle, each at its own second after `base`.
fn letter(i: usize, target: &str, base: DateTime<Utc>) -> Record {
    let job = format!("j-{i}");
    let f = Failure {
        original_topic: target,
        stage: "execute",
        reason: if i % 2 == 0 {
            "handler_failed"
        } else {
            "timeout"
        },
        message: "HTTP 503 from gateway",
        at: base + chrono::Duration::seconds(i as i64),
        app: APPS[i % 3],
        job_id: &job,
        attempts: 3,
        replay_count: None,
    };
    let mut headers = dlq_headers(&f);
    if let Some(t) = TENANTS[(i / 3) % 3] {
        headers.push(("sked-tenant".into(), t.into()));
    }
    Record {
        key: Some(job.as_bytes().to_vec()),
        value: Some(format!(r#"{{"n":{i}}}"#).into_bytes()),
        headers,
        partition: None,
    }
}

/// (partition, offset) of every letter a list answer holds, asserting none is there twice.
fn positions(list: &Value) -> BTreeSet<(i64, i64)> {
    let letters = list["letters"].as_array().unwrap();
    let set: BTreeSet<(i64, i64)> = letters
        .iter()
        .map(|l| {
            (
                l["partition"].as_i64().unwrap(),
                l["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(set.len(), letters.len(), "a letter listed twice");
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_index_agrees_with_the_topic_after_the_replayer_is_killed_9_during_a_burst() {
    const LETTERS: usize = 6000;
    let ns = unique("dlqindex");
    let port = free_port();
    let mut sets = replayer_sets(&ns);
    sets.push(format!("replayer.listen_addr=127.0.0.1:{port}"));
    let config = replayer_config(&ns, &[]);
    create_topics(&config, 3).await;
    let api = format!("http://127.0.0.1:{port}");
    let stats_url = format!("{api}/v1/dlq/stats");

    let mut first = Proc::start("sked-replayer", &sets);
    eventually(Duration::from_secs(30), "replayer up", || async {
        let resp = sked_e2e::http().get(&stats_url).send().await.ok()?;
        resp.status().is_success().then_some(())
    })
    .await;

    // A burst in steps of 200, the replayer killed -9 a third of the way in and started again.
    let base = DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000).unwrap();
    let (dlq, target) = (config.topics.dlq.clone(), config.topics.due.clone());
    let burst = tokio::spawn(async move {
        let p = producer();
        for step in 0..LETTERS / 200 {
            let records: Vec<Record> = (step * 200..(step + 1) * 200)
                .map(|i| letter(i, &target, base))
                .collect();
            produce_all(&p, &dlq, &records).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    eventually(Duration::from_secs(30), "a third indexed", || async {
        let (_, s) = get(&stats_url).await;
        (s["total"].as_u64()? >= (LETTERS / 3) as u64).then_some(())
    })
    .await;
    first.kill9();
    let _second = Proc::start("sked-replayer", &sets);
    burst.await.unwrap();

    // The successor takes over after the dead indexer's lease and reads on.
    let stats = eventually(Duration::from_secs(90), "every letter indexed", || async {
        let resp = sked_e2e::http().get(&stats_url).send().await.ok()?;
        let s: Value = resp.json().await.ok()?;
        (s["total"] == LETTERS && s["index"]["caught_up"] == true).then_some(s)
    })
    .await;

    let topic = read_topic(
        &config.topics.dlq,
        3,
        LETTERS,
        Duration::from_secs(60),
        Duration::from_secs(1),
    );
    assert_eq!(topic.len(), LETTERS);
    let in_topic: BTreeSet<(i64, i64)> = topic
        .iter()
        .map(|m| (i64::from(m.partition()), m.offset()))
        .collect();
    let mut by_app: BTreeMap<String, u64> = BTreeMap::new();
    let mut acme_sms = 0u64;
    for m in &topic {
        let app = header(m, "sked-app").unwrap();
        if app == "sms" && header(m, "sked-tenant").as_deref() == Some("acme") {
            acme_sms += 1;
        }
        *by_app.entry(app).or_default() += 1;
    }

    let (_, list) = get(&format!("{api}/v1/dlq?order=offset&limit=10000")).await;
    assert_eq!(list["matched"], LETTERS, "{}", list["index"]);
    assert_eq!(
        positions(&list),
        in_topic,
        "the index holds exactly the topic's letters"
    );
    let want: Value = serde_json::to_value(&by_app).unwrap();
    assert_eq!(stats["by_app"], want);
    assert_eq!(stats["index"]["letters"], LETTERS);
    assert_eq!(stats["index"]["complete"], true);

    // A tenant with an app: counted by walking the smaller set, and listed newest first.
    let (_, acme) = get(&format!("{api}/v1/dlq?tenant=acme&app=sms&limit=5")).await;
    assert_eq!(acme["matched"], acme_sms, "{acme}");
    let at: Vec<&str> = acme["letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["at"].as_str().unwrap())
        .collect();
    assert_eq!(at.len(), 5);
    assert!(at.windows(2).all(|w| w[0] > w[1]), "newest first: {at:?}");
    let (_, acme_stats) = get(&format!("{stats_url}?tenant=acme")).await;
    assert_eq!(acme_stats["by_app"]["sms"], acme_sms, "{acme_stats}");
    assert_eq!(
        acme_stats["scanned"], 0,
        "a tenant's counts come from the counters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bounded_index_evicts_the_oldest_and_a_lost_one_is_rebuilt_from_the_topic() {
    const LETTERS: usize = 1300;
    let ns = unique("dlqbound");
    let config = replayer_config(&ns, &["replayer.index_max_letters=1000"]);
    create_topics(&config, 3).await;
    let base = DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000).unwrap();
    let records: Vec<Record> = (0..LETTERS)
        .map(|i| letter(i, &config.topics.due, base))
        .collect();
    produce_all(&producer(), &config.topics.dlq, &records).await;
    let replayer = Replayer::start(config.clone()).await;
    let api = replayer.api();

    let bounded = || async {
        let (_, s) = get(&format!("{api}/v1/dlq/stats")).await;
        let i = &s["index"];
        let done = i["letters"] == 1000 && i["evicted"] == LETTERS - 1000 && i["caught_up"] == true;
        (done && s["total"] == 1000).then_some(s)
    };
    let stats = eventually(Duration::from_secs(30), "evicted to the bound", bounded).await;
    assert_eq!(stats["index"]["complete"], false);
    let (_, list) = get(&format!("{api}/v1/dlq?limit=10000")).await;
    let jobs: BTreeSet<usize> = list["letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["job_id"].as_str().unwrap()[2..].parse().unwrap())
        .collect();
    assert_eq!(
        jobs,
        (LETTERS - 1000..LETTERS).collect(),
        "the newest stay, the oldest left"
    );

    // Lose the index: every key of it goes from Redis. The indexer loses its lease, takes it
    // again and reads the topic from the beginning (the bound holds again at its next look).
    let mut conn = redis(&redis_url()).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:{{dlq}}*", config.redis.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() > 4, "{keys:?}");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (_, empty) = get(&format!("{api}/v1/dlq/stats")).await;
    assert!(empty["total"].as_u64().unwrap() < 1000, "{empty}");
    eventually(Duration::from_secs(60), "rebuilt", bounded).await;
    let (_, again) = get(&format!("{api}/v1/dlq?limit=10000")).await;
    assert_eq!(
        positions(&again),
        positions(&list),
        "the same letters again"
    );
    replayer.stop().await;
}
