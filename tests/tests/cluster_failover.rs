//! sked through Redis Cluster failovers: while one-shot jobs stream into ingest and fire, the
//! primary that serves shard 0 and then a second primary hand their slots over to their
//! replicas (graceful `CLUSTER FAILOVER`, on a private six-node cluster). Every job is stored
//! and fires exactly once, for the time it was given and never before it, and the store ends
//! consistent: every job dispatched, nothing left due or in flight.
//!
//! `RUST_LOG=warn` (or finer) shows the services' logs in the test output.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use sked_core::{
    job::{JobId, Shard},
    store::{JobState, Store},
};
use sked_e2e::{
    admin_metrics,
    cluster::{PrivateCluster, SlotOwners},
    create_topics, eventually, header, header_ms,
    ingest::Ingest,
    read_topic,
    scheduler::{Scheduler, metric},
    stream_one_shots, unique,
};

/// Jobs produced, one every [`PACE`]: about 6 s of traffic.
const JOBS: usize = 1500;
const PACE: Duration = Duration::from_millis(4);
/// Each job is due this long after it is sent.
const LEAD_MS: i64 = 3000;

/// Waits until at least `n` jobs were sent.
async fn sent_at_least(sent: &AtomicUsize, n: usize) {
    eventually(Duration::from_secs(30), "jobs sent", || async {
        (sent.load(Ordering::SeqCst) >= n).then_some(())
    })
    .await;
}

/// Fails over the primary of `key`'s slot to its replica and checks that the roles swapped.
async fn fail_over(cluster: &PrivateCluster, key: &str) -> (SlotOwners, Duration) {
    let before = cluster.owners(key).await;
    let started = Instant::now();
    cluster.failover(before.replicas[0]).await;
    let took = started.elapsed();
    let after = cluster.owners(key).await;
    assert_eq!(
        after.primary, before.replicas[0],
        "the replica took over {key}: before {before:?}, after {after:?}"
    );
    assert!(
        after.replicas.contains(&before.primary),
        "the former primary follows it: before {before:?}, after {after:?}"
    );
    (before, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_survive_primary_failovers_none_lost_twice_or_early() {
    let cluster = PrivateCluster::start().await;
    let ns = unique("cfail");
    let config = cluster.config(&ns, &[]);
    let _logs = std::env::var_os("RUST_LOG")
        .map(|_| sked_core::telemetry::init("cluster_failover", &config.log));
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let prefix = &config.redis.key_prefix;

    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let producing = tokio::spawn(stream_one_shots(
        config.topics.ingest.clone(),
        "f-",
        JOBS,
        PACE,
        Duration::from_millis(LEAD_MS as u64),
        sent.clone(),
    ));

    // First failover: shard 0's primary, while jobs are being stored and the first ones fire.
    sent_at_least(&sent, JOBS * 2 / 5).await;
    let shard0 = format!("{prefix}:{{s0}}:due");
    let at = (started.elapsed(), sent.load(Ordering::SeqCst));
    let (first, took) = fail_over(&cluster, &shard0).await;
    eprintln!(
        "failover 1 ({shard0}, {first:?}) at {:?}, {} jobs sent, took {took:?}",
        at.0, at.1
    );

    // Second failover: a shard served by another primary, while jobs are stored and fired.
    sent_at_least(&sent, JOBS * 3 / 4).await;
    let now_serving_s0 = cluster.owners(&shard0).await.primary;
    let mut other = None;
    for s in 1..config.redis.shards {
        let key = format!("{prefix}:{{s{s}}}:due");
        if cluster.owners(&key).await.primary != now_serving_s0 {
            other = Some(key);
            break;
        }
    }
    let other = other.expect("some shard is served by another primary");
    let at = (started.elapsed(), sent.load(Ordering::SeqCst));
    let (second, took) = fail_over(&cluster, &other).await;
    eprintln!(
        "failover 2 ({other}, {second:?}) at {:?}, {} jobs sent, took {took:?}",
        at.0, at.1
    );

    let due_at = producing.await.unwrap();
    eprintln!("{JOBS} jobs sent and acked after {:?}", started.elapsed());
    let fired = read_topic(
        &config.topics.due,
        3,
        JOBS,
        Duration::from_secs(30),
        Duration::from_secs(2),
    );
    eprintln!("{} fires read after {:?}", fired.len(), started.elapsed());

    // Every job fired once, for the time it was given, never before it.
    let mut fire_ids = BTreeSet::new();
    let mut jobs = BTreeSet::new();
    let mut early = Vec::new();
    for m in &fired {
        let job = header(m, "sked-job-id").unwrap();
        let fire = header(m, "sked-fire-id").unwrap();
        let (due, fired_at) = (header_ms(m, "sked-due-at"), header_ms(m, "sked-fired-at"));
        assert!(fire_ids.insert(fire.clone()), "{fire} fired twice");
        assert_eq!(
            due_at.get(&job),
            Some(&due),
            "{job} fired for the time it was given"
        );
        if fired_at < due {
            early.push((fire, due - fired_at));
        }
        jobs.insert(job);
    }
    let missing: Vec<&String> = due_at.keys().filter(|id| !jobs.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {JOBS} jobs never fired: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert_eq!(jobs.len(), JOBS, "every job fired");
    assert_eq!(fired.len(), JOBS, "each once");
    assert!(early.is_empty(), "fired early (fire id, ms): {early:?}");

    // The store agrees: nothing left due or in flight, every job stored once and dispatched.
    let store = Store::connect(&config.redis).await.unwrap();
    let shards: Vec<Shard> = (0..config.redis.shards).map(Shard).collect();
    eventually(
        Duration::from_secs(10),
        "no job left due or in flight",
        || async {
            let backlog = store.backlog(&shards).await.unwrap();
            backlog
                .iter()
                .all(|(due, inflight)| *due == 0 && *inflight == 0)
                .then_some(())
        },
    )
    .await;
    let states: Vec<(String, Option<JobState>)> = futures::stream::iter(due_at.keys())
        .map(|id| {
            let store = store.clone();
            async move {
                let record = store.get(&JobId::parse(id).unwrap()).await.unwrap();
                (id.clone(), record.map(|r| r.state))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let not_dispatched: Vec<_> = states
        .iter()
        .filter(|(_, state)| *state != Some(JobState::Dispatched))
        .collect();
    assert!(
        not_dispatched.is_empty(),
        "{} jobs not dispatched in redis: {:?}",
        not_dispatched.len(),
        &not_dispatched[..not_dispatched.len().min(20)]
    );
    assert_eq!(
        cluster.count_keys(&format!("{prefix}:*:j:*")).await,
        JOBS,
        "one job record per job"
    );

    let ingest_text = admin_metrics(ingest.admin).await;
    let scheduler_text = scheduler.metrics().await;
    assert_eq!(
        metric(&scheduler_text, "sked_scheduler_early_fires_total"),
        0.0
    );
    eprintln!(
        "ingest store errors {}; scheduler fired {}, store errors {}, produce errors {}, reclaimed {}",
        metric(&ingest_text, "sked_ingest_store_errors_total"),
        metric(&scheduler_text, "sked_scheduler_fired_total"),
        metric(&scheduler_text, "sked_scheduler_store_errors_total"),
        metric(&scheduler_text, "sked_scheduler_produce_errors_total"),
        metric(&scheduler_text, "sked_scheduler_reclaimed_total"),
    );
    scheduler.stop().await;
    ingest.stop().await;
}
