//! Stall detection (kafka/stall.rs) against the real broker: a partition with lag whose
//! committed offset stands still is reported (metric, then readiness) and cleared once it
//! moves again, whether this member holds it (a record that runs long) or another member
//! does (a member that joined the group and stopped consuming).

use std::time::Duration;

use chrono::Utc;
use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer},
};
use reqwest::StatusCode;
use sked_e2e::{
    brokers, create_topics, eventually, producer,
    worker::{Endpoint, Worker, metric_sum, produce_fire, worker_config},
};

async fn readyz(worker: &Worker) -> StatusCode {
    reqwest::get(format!("http://{}/readyz", worker.admin))
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

async fn stalled(worker: &Worker, topic: &str) -> f64 {
    metric_sum(
        &worker.metrics().await,
        "sked_consumer_stalled_partitions",
        &[&format!("topic=\"{topic}\"")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_held_up_by_one_long_record_is_reported_then_cleared() {
    let ns = sked_e2e::unique("stall-own");
    // `long` runs 14 s; the records after it finish at once, but the partition's committed
    // offset cannot pass `long` until it ends.
    let endpoint = Endpoint::start(|call, _| {
        if call.job_id == "long" {
            (200, Duration::from_secs(14))
        } else {
            (200, Duration::ZERO)
        }
    })
    .await;
    let url = format!("apps.web.url={}", endpoint.url("/hook"));
    let config = worker_config(
        &ns,
        &[&url, "kafka.stall_after=3s", "worker.default_timeout=60s"],
    );
    create_topics(&config, 1).await;
    let worker = Worker::start(config.clone()).await;
    let due = config.topics.due.clone();
    eventually(Duration::from_secs(30), "the worker ready", || async {
        (readyz(&worker).await == StatusCode::OK).then_some(())
    })
    .await;
    let p = producer();
    for id in ["long", "after-1", "after-2"] {
        produce_fire(&p, &due, id, "web", Utc::now(), "{}").await;
    }
    let started = std::time::Instant::now();
    eventually(Duration::from_secs(20), "the stall reported", || async {
        (stalled(&worker, &due).await == 1.0).then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "reported before stall_after"
    );
    assert_eq!(endpoint.calls_for("after-2").len(), 1, "later records ran");
    eventually(Duration::from_secs(20), "readiness off", || async {
        (readyz(&worker).await == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    let text = worker.metrics().await;
    assert_eq!(
        metric_sum(&text, "sked_consumer_rejoins_total", &[]),
        0.0,
        "a partition this member holds is not recovered by rejoining"
    );
    // `long` ends at 14 s; the commit moves; the stall clears.
    eventually(Duration::from_secs(30), "the stall cleared", || async {
        (stalled(&worker, &due).await == 0.0 && readyz(&worker).await == StatusCode::OK)
            .then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(13),
        "cleared before the record ended"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_held_by_a_member_that_stopped_consuming_is_reported_and_cleared_when_it_leaves()
 {
    let ns = sked_e2e::unique("stall-zombie");
    let endpoint = Endpoint::start(|_, _| (200, Duration::ZERO)).await;
    let url = format!("apps.web.url={}", endpoint.url("/hook"));
    let config = worker_config(&ns, &[&url, "kafka.stall_after=3s"]);
    create_topics(&config, 2).await;
    let due = config.topics.due.clone();
    let group = config.worker.group_id.clone();

    // A member that joins the worker group, takes its partitions and then never polls again
    // (its heartbeats go on from librdkafka's own thread, so the group keeps it).
    let zombie: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("max.poll.interval.ms", "600000")
        .create()
        .expect("zombie");
    zombie.subscribe(&[&due]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while zombie.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the zombie got no partition"
        );
        let _ = zombie.poll(Duration::from_millis(100));
    }

    let p = producer();
    for i in 0..20 {
        produce_fire(&p, &due, &format!("z-{i}"), "web", Utc::now(), "{}").await;
    }
    let worker = Worker::start(config.clone()).await;
    eventually(Duration::from_secs(30), "the stall reported", || async {
        (stalled(&worker, &due).await >= 1.0).then_some(())
    })
    .await;
    eventually(Duration::from_secs(20), "readiness off", || async {
        (readyz(&worker).await == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    let text = worker.metrics().await;
    assert!(
        metric_sum(&text, "sked_consumer_rejoins_total", &[]) >= 1.0,
        "a stalled partition held elsewhere makes this member rejoin"
    );

    // The zombie leaves: its partitions come to the worker, every job runs, the stall clears.
    drop(zombie);
    eventually(Duration::from_secs(60), "every job run", || async {
        (endpoint.calls().len() >= 20).then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "the stall cleared", || async {
        (stalled(&worker, &due).await == 0.0 && readyz(&worker).await == StatusCode::OK)
            .then_some(())
    })
    .await;
    worker.stop().await;
}
