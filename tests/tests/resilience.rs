//! Crash, outage and shutdown scenarios of ingest: nothing lost, nothing duplicated, nothing
//! committed before it is durable. And every service stops cleanly on SIGTERM while it still
//! waits for Redis.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use reqwest::StatusCode;
use sked_e2e::{
    PrivateRedis, Proc, brokers, create_topics, due_count, eventually, flush, ingest::Ingest,
    produce, producer, redis_url, test_config, test_sets, unique,
};

/// Sum of the offsets committed by `group` on `topic`'s partitions.
fn committed(group: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

async fn publish_many(topic: &str, from: usize, to: usize) {
    let p = producer();
    let mut pending = Vec::new();
    for i in from..to {
        // Half carry an id, half rely on the id derived from (topic, partition, offset): a
        // redelivery that minted a new id would show up as an extra job.
        let body = if i % 2 == 0 {
            format!(r#"{{"id":"job-{i}","app":"sms","delay":"1h","payload":{{"i":{i}}}}}"#)
        } else {
            format!(r#"{{"app":"sms","delay":"1h","payload":{{"i":{i}}}}}"#)
        };
        let key = format!("k{i}");
        let record = rdkafka::producer::FutureRecord::to(topic)
            .key(&key)
            .payload(&body);
        pending.push(p.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
        if pending.len() >= 5000 {
            for f in pending.drain(..) {
                f.await.expect("delivery").map_err(|(e, _)| e).expect("ack");
            }
        }
    }
    for f in pending {
        f.await.expect("delivery").map_err(|(e, _)| e).expect("ack");
    }
    flush(&p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_batch_loses_nothing_and_duplicates_nothing() {
    let ns = unique("kill");
    let sets = test_sets(&ns);
    let config = test_config(&ns, &[]);
    create_topics(&config, 3).await;
    const N: usize = 40_000;
    publish_many(&config.topics.ingest, 0, N).await;

    let (url, prefix, shards) = (
        redis_url(),
        config.redis.key_prefix.clone(),
        config.redis.shards,
    );
    let mut proc = Proc::start("sked-ingest", &sets);
    let seen = eventually(Duration::from_secs(60), "first jobs stored", || async {
        let n = due_count(&url, &prefix, shards).await;
        (n > 0).then_some(n)
    })
    .await;
    proc.kill9();
    let at_kill = due_count(&url, &prefix, shards).await;
    assert!(
        (seen as usize) < N && (at_kill as usize) < N,
        "killed mid-way ({at_kill} of {N} stored)"
    );

    let _proc = Proc::start("sked-ingest", &sets);
    eventually(
        Duration::from_secs(120),
        "every job stored after restart",
        || async { (due_count(&url, &prefix, shards).await as usize >= N).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        due_count(&url, &prefix, shards).await as usize,
        N,
        "exactly one job per request"
    );
    let dlq = sked_e2e::read_topic(
        &config.topics.dlq,
        3,
        0,
        Duration::from_secs(2),
        Duration::ZERO,
    );
    assert!(dlq.is_empty(), "nothing dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_for_10s_loses_nothing_and_commits_nothing_early() {
    let mut redis = PrivateRedis::start();
    let ns = unique("outage");
    let url = redis.url();
    let config = test_config(&ns, &[&format!("redis.url={url}")]);
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let (prefix, shards) = (config.redis.key_prefix.clone(), config.redis.shards);

    publish_many(&config.topics.ingest, 0, 200).await;
    eventually(Duration::from_secs(30), "first 200 stored", || async {
        (due_count(&url, &prefix, shards).await == 200).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "ready", || async {
        (ingest.readyz().await == StatusCode::OK).then_some(())
    })
    .await;

    redis.stop();
    let down_at = tokio::time::Instant::now();
    publish_many(&config.topics.ingest, 200, 500).await;
    eventually(
        Duration::from_secs(10),
        "not ready while redis is down",
        || async { (ingest.readyz().await == StatusCode::SERVICE_UNAVAILABLE).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let group = config.ingest.group_id.clone();
    let topic = config.topics.ingest.clone();
    let during = tokio::task::spawn_blocking(move || committed(&group, &topic, 3))
        .await
        .unwrap();
    assert!(
        during <= 200,
        "committed {during} offsets while only 200 records were durable"
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down_at.elapsed())).await;

    redis.resume();
    eventually(
        Duration::from_secs(60),
        "all 500 stored after redis returned",
        || async {
            let conn = redis::Client::open(url.as_str())
                .ok()?
                .get_multiplexed_async_connection()
                .await
                .ok()?;
            drop(conn);
            (due_count(&url, &prefix, shards).await == 500).then_some(())
        },
    )
    .await;
    eventually(Duration::from_secs(10), "ready again", || async {
        (ingest.readyz().await == StatusCode::OK).then_some(())
    })
    .await;
    ingest.stop().await;
    let group = config.ingest.group_id.clone();
    let topic = config.topics.ingest.clone();
    let after = tokio::task::spawn_blocking(move || committed(&group, &topic, 3))
        .await
        .unwrap();
    assert_eq!(after, 500, "every record committed after the drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_idempotency_key_from_two_instances_and_after_restart_makes_one_job() {
    let ns = unique("idem");
    let config = test_config(&ns, &[]);
    create_topics(&config, 2).await;
    let (a, b) = tokio::join!(Ingest::start(config.clone()), Ingest::start(config.clone()));
    let p = producer();
    let topic = config.topics.ingest.clone();
    let req = |id: &str| {
        format!(
            r#"{{"requestId":"{id}","appName":"sms","scheduledTime":"2031-05-05T10:00:00","idempotencyKey":"order-77","jobData":{{}}}}"#
        )
    };
    // One copy per partition, so both instances (or both partition owners) race on the key.
    let (r1, r2) = (req("req-1"), req("req-2"));
    tokio::join!(
        produce(&p, &topic, Some(0), Some(b"x"), Some(r1.as_bytes()), &[]),
        produce(&p, &topic, Some(1), Some(b"y"), Some(r2.as_bytes()), &[]),
    );
    let marker = |id: &str| format!(r#"{{"id":"{id}","app":"sms","delay":"1h"}}"#);
    produce(
        &p,
        &topic,
        Some(0),
        Some(b"m"),
        Some(marker("marker-0").as_bytes()),
        &[],
    )
    .await;
    produce(
        &p,
        &topic,
        Some(1),
        Some(b"m"),
        Some(marker("marker-1").as_bytes()),
        &[],
    )
    .await;
    for m in ["marker-0", "marker-1"] {
        eventually(Duration::from_secs(60), m, || async {
            a.get_job_text(m).await
        })
        .await;
    }
    let found = |ingest: &Ingest| {
        let ingest_api = ingest.api();
        async move {
            let mut n = 0;
            for id in ["req-1", "req-2", "req-3"] {
                let r = sked_e2e::http()
                    .get(format!("{ingest_api}/v1/jobs/{id}"))
                    .send()
                    .await
                    .unwrap();
                if r.status() == StatusCode::OK {
                    n += 1;
                }
            }
            n
        }
    };
    assert_eq!(found(&a).await, 1, "one job for one idempotency key");
    a.stop().await;
    b.stop().await;

    // A restart that re-reads everything (new group) plus a third copy: still one job.
    let again = test_config(&ns, &[&format!("ingest.group_id={ns}-second")]);
    let c = Ingest::start(again).await;
    let r3 = req("req-3");
    produce(&p, &topic, Some(0), Some(b"z"), Some(r3.as_bytes()), &[]).await;
    produce(
        &p,
        &topic,
        Some(0),
        Some(b"m"),
        Some(marker("marker-2").as_bytes()),
        &[],
    )
    .await;
    eventually(Duration::from_secs(60), "marker-2", || async {
        c.get_job_text("marker-2").await
    })
    .await;
    assert_eq!(
        found(&c).await,
        1,
        "still one job after restart and redelivery"
    );
    assert_eq!(
        due_count(&redis_url(), &config.redis.key_prefix, config.redis.shards).await,
        4
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_and_commits_every_durable_record() {
    let ns = unique("drain");
    let config = test_config(&ns, &[]);
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    publish_many(&config.topics.ingest, 0, 3000).await;
    let (url, prefix, shards) = (
        redis_url(),
        config.redis.key_prefix.clone(),
        config.redis.shards,
    );
    eventually(Duration::from_secs(60), "3000 stored", || async {
        (due_count(&url, &prefix, shards).await == 3000).then_some(())
    })
    .await;
    ingest.stop().await;
    let (group, topic) = (config.ingest.group_id.clone(), config.topics.ingest.clone());
    let after = tokio::task::spawn_blocking(move || committed(&group, &topic, 3))
        .await
        .unwrap();
    assert_eq!(after, 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_redis_is_unreachable_answers_health_then_exits_0_for_every_service() {
    let ns = unique("term-early");
    for service in [
        "sked-ingest",
        "sked-scheduler",
        "sked-worker",
        "sked-replayer",
    ] {
        let admin = sked_e2e::replayer::free_port();
        let mut sets = test_sets(&ns);
        sets.push("redis.url=redis://127.0.0.1:1".into());
        sets.push(format!("admin.listen_addr=127.0.0.1:{admin}"));
        sets.push("replayer.listen_addr=127.0.0.1:0".into());
        let mut proc = Proc::start(service, &sets);
        let readyz = format!("http://127.0.0.1:{admin}/readyz");
        let status = eventually(
            Duration::from_secs(20),
            &format!("{service} admin up"),
            || async {
                let resp = sked_e2e::http().get(&readyz).send().await.ok()?;
                Some(resp.status())
            },
        )
        .await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{service}: redis is down"
        );

        let pid = proc.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let exit = eventually(Duration::from_secs(10), &format!("{service} exits"), || {
            std::future::ready(proc.child.try_wait().unwrap())
        })
        .await;
        assert!(
            exit.success(),
            "{service}: a stop before redis answered is a clean stop, got {exit}"
        );
    }
}
