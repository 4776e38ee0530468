//! sked on a Redis Cluster (the three-master cluster `scripts/dev-stack.sh` starts): the store's
//! scripts and pipelines keep to one slot each, every service runs against it, and a kill -9
//! loses nothing there either.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{collections::BTreeSet, time::Duration};

use chrono::{SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::json;
use sked_core::{
    config::{Config, Layers, load},
    job::{JobId, Shard},
    request::{self, Limits, Origin},
    store::{Ack, AckOutcome, Applied, Cancelled, JobState, Op, Store, runs},
};
use sked_e2e::{
    Proc, cluster_sets, create_topics, eventually, get_json, header, http,
    ingest::Ingest,
    keys_per_cluster_node, operation_succeeded, produce, producer, read_topic, redis,
    redis_cluster_url,
    replayer::{Replayer, replay_and_wait, replayer_sets},
    scheduler::{Scheduler, metric},
    test_sets, unique,
    worker::{Endpoint, Worker, worker_sets},
};

fn cluster_config(sets: Vec<String>) -> Config {
    let mut sets = sets;
    sets.extend(cluster_sets());
    load(&Layers {
        sets,
        ..Default::default()
    })
    .unwrap()
}

fn limits(config: &Config) -> Limits {
    Limits {
        max_bytes: config.limits.max_request_bytes,
        max_horizon: config.limits.max_horizon.get(),
        default_timezone: config.default_timezone,
        apps: None,
    }
}

/// `SCRIPT FLUSH` on every node, as after a restart of each primary.
async fn flush_scripts_everywhere() {
    for url in redis_cluster_url().split(',') {
        let mut conn = redis(url.trim()).await;
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_on_a_cluster_spreads_shards_over_nodes_and_keeps_its_semantics() {
    let ns = unique("cstore");
    let config = cluster_config(test_sets(&ns));
    let store = Store::connect(&config.redis).await.unwrap();
    let now = Utc::now();
    let origin = Origin::new(now);
    let past = (now - chrono::Duration::seconds(1)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let future = (now + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Millis, true);

    // 400 jobs over all 16 shards, half of them with an idempotency key of their own (in yet
    // other shards), due now; 100 due in an hour.
    let mut requests = Vec::new();
    for i in 0..400 {
        requests.push(if i % 2 == 0 {
            format!(r#"{{"id":"c-{i}","app":"sms","run_at":"{past}","idempotency_key":"k-{i}"}}"#)
        } else {
            format!(r#"{{"id":"c-{i}","app":"sms","run_at":"{past}"}}"#)
        });
    }
    for i in 0..100 {
        requests.push(format!(
            r#"{{"id":"later-{i}","app":"sms","run_at":"{future}"}}"#
        ));
    }
    let ops: Vec<Op> = requests
        .iter()
        .map(|r| {
            Op::insert(
                request::parse(r.as_bytes(), &limits(&config), &origin).unwrap(),
                r.as_bytes(),
            )
        })
        .collect();
    let applied = store.apply(&ops).await.unwrap();
    assert!(
        applied.iter().all(|a| *a == Applied::Created),
        "{applied:?}"
    );
    let again = store.apply(&ops).await.unwrap();
    assert!(
        again.iter().all(|a| matches!(a, Applied::Duplicate { .. })),
        "a repeated batch changes nothing: {again:?}"
    );
    // Another job under a used idempotency key is a duplicate of the job that holds it.
    let thief =
        r#"{"id":"thief","app":"sms","run_at":"2030-01-01T00:00:00Z","idempotency_key":"k-0"}"#;
    let spec = request::parse(thief.as_bytes(), &limits(&config), &origin).unwrap();
    let stolen = store
        .apply(&[Op::insert(spec, thief.as_bytes())])
        .await
        .unwrap();
    assert_eq!(
        stolen,
        [Applied::Duplicate {
            existing: JobId::parse("c-0").unwrap()
        }]
    );
    assert_eq!(store.due_count().await.unwrap(), 500);

    let per_node = keys_per_cluster_node(&config.redis.key_prefix).await;
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "keys are spread over the cluster's nodes: {per_node:?}"
    );

    // The scripts survive their cache being emptied on every node.
    flush_scripts_everywhere().await;
    let shards: Vec<Shard> = (0..config.redis.shards).map(Shard).collect();
    let mut claimed = BTreeSet::new();
    for shard in &shards {
        let batch = store
            .claim(
                *shard,
                Utc::now().timestamp_millis(),
                1000,
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert!(batch.corrupt.is_empty(), "{:?}", batch.corrupt);
        let acks: Vec<Ack> = batch
            .jobs
            .iter()
            .map(|j| Ack {
                id: j.spec.id.as_str().to_owned(),
                score_raw: j.score_raw.clone(),
                lease_until: batch.lease_until,
                fired: 1,
                next: None,
                ..Default::default()
            })
            .collect();
        for job in &batch.jobs {
            assert!(claimed.insert(job.spec.id.as_str().to_owned()));
        }
        let outcomes = store.ack(*shard, &acks).await.unwrap();
        assert!(
            outcomes.iter().all(|o| *o == AckOutcome::Done),
            "{outcomes:?}"
        );
    }
    assert_eq!(
        claimed.len(),
        400,
        "every due job claimed once, no later job"
    );
    let backlog = store.backlog(&shards).await.unwrap();
    assert_eq!(backlog.iter().map(|(due, _)| due).sum::<u64>(), 100);
    assert_eq!(backlog.iter().map(|(_, inflight)| inflight).sum::<u64>(), 0);
    let earliest = store.earliest(&shards).await.unwrap();
    let first = earliest.iter().flatten().min().copied().unwrap();
    assert!(
        first > Utc::now().timestamp_millis(),
        "only the later jobs are left"
    );

    // Cancel and read back, through the cluster.
    let later = JobId::parse("later-7").unwrap();
    assert_eq!(store.cancel(&later).await.unwrap(), Cancelled::Cancelled);
    assert_eq!(
        store.cancel(&JobId::parse("c-3").unwrap()).await.unwrap(),
        Cancelled::Finished
    );
    let record = store.get(&later).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Cancelled);

    // Run state of a fire (workers' keys), in the job's slot.
    let job = JobId::parse("c-5").unwrap();
    let run = runs::Run {
        job_id: &job,
        fire_id: "c-5@1",
        attempt: 1,
        replay: 0,
    };
    assert_eq!(
        store.begin_run(run, Duration::from_secs(30)).await.unwrap(),
        runs::Begin::Run
    );
    store
        .finish_run(
            run,
            runs::RunState::Succeeded,
            Duration::from_millis(3),
            None,
            &runs::AttemptDetail::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.begin_run(run, Duration::from_secs(30)).await.unwrap(),
        runs::Begin::AlreadyDone
    );
    let info = store.run_info(&job).await.unwrap().unwrap();
    assert_eq!(info.state, runs::RunState::Succeeded);

    // The job's attempts: newest first, 20 kept, with the run's TTL, in the job's slot.
    for attempt in 2..=25 {
        let run = runs::Run { attempt, ..run };
        store
            .finish_run(
                run,
                runs::RunState::Retrying,
                Duration::from_millis(1),
                Some("boom"),
                &runs::AttemptDetail {
                    traceparent: Some(
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
                    ),
                    headers: vec![("sked-fire-id".into(), "c-5@1".into())],
                    keep: 20,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let key = runs::attempts_key(store.keys(), &job);
    let mut conn = store.connection();
    let kept: Vec<String> = redis::cmd("LRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let kept: Vec<runs::AttemptInfo> = kept
        .iter()
        .map(|a| serde_json::from_str(a).unwrap())
        .collect();
    assert_eq!(kept.len(), 20);
    let numbers: Vec<u32> = kept.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, (6..=25).rev().collect::<Vec<u32>>());
    assert_eq!(
        kept[0].trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(kept[0].error.as_deref(), Some("boom"));
    assert_eq!(kept[0].headers["sked-fire-id"], "c-5@1");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "the attempts expire with the run: {ttl}");
    // `worker.attempts_kept = 0` records none.
    let run = runs::Run { attempt: 26, ..run };
    store
        .finish_run(
            run,
            runs::RunState::Dead,
            Duration::from_millis(1),
            Some("off"),
            &runs::AttemptDetail::default(),
        )
        .await
        .unwrap();
    let head: Vec<String> = redis::cmd("LRANGE")
        .arg(&key)
        .arg(0)
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(head[0].contains(r#""attempt":25"#), "{head:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_four_services_on_a_cluster_run_each_job_once_on_time_retry_and_replay() {
    // `flaky-*` fails its first call; `broken` fails until the replay.
    let fixed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = fixed.clone();
    let endpoint = Endpoint::start(move |call, earlier| {
        let status = if call.job_id == "broken" {
            if f.load(std::sync::atomic::Ordering::SeqCst) {
                200
            } else {
                500
            }
        } else if call.job_id.starts_with("flaky") && earlier == 0 {
            503
        } else {
            200
        };
        (status, Duration::ZERO)
    })
    .await;
    let ns = unique("cpipe");
    let mut sets = replayer_sets(&ns);
    sets.extend(worker_sets(&ns));
    sets.push(format!("apps.sms.url={}", endpoint.url("/sms")));
    let config = cluster_config(sets);
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let worker = Worker::start(config.clone()).await;
    let replayer = Replayer::start(config.clone()).await;

    // 60 one-shots through Kafka (all shards), a recurring job, a job cancelled before its
    // time, a job that fails once, a job that dead-letters.
    let kafka = producer();
    let run_at = Utc::now() + chrono::Duration::seconds(2);
    let at = run_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    for i in 0..60 {
        let body = format!(r#"{{"id":"once-{i}","app":"sms","run_at":"{at}"}}"#);
        produce(
            &kafka,
            &config.topics.ingest,
            None,
            Some(format!("once-{i}").as_bytes()),
            Some(body.as_bytes()),
            &[],
        )
        .await;
    }
    let retry = json!({"max_attempts": 2, "initial": "500ms", "max": "1s", "jitter": 0.0});
    let submit = |body: serde_json::Value| {
        let url = format!("{}/v1/jobs", ingest.api());
        async move {
            let resp = http()
                .post(url)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED, "{body}");
        }
    };
    submit(json!({"id": "tick", "app": "sms", "every": "1s", "max_runs": 3})).await;
    submit(json!({"id": "flaky-1", "app": "sms", "run_at": at, "retry": retry})).await;
    submit(json!({"id": "broken", "app": "sms", "run_at": at, "retry": {"max_attempts": 1}})).await;
    submit(json!({"id": "gone", "app": "sms", "run_at": at})).await;
    let resp = http()
        .delete(format!("{}/v1/jobs/gone", ingest.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    eventually(Duration::from_secs(30), "every one-shot ran", || async {
        (0..60)
            .all(|i| !endpoint.calls_for(&format!("once-{i}")).is_empty())
            .then_some(())
    })
    .await;
    eventually(Duration::from_secs(15), "tick ran 3 times", || async {
        (endpoint.calls_for("tick").len() >= 3).then_some(())
    })
    .await;
    ingest
        .wait_run_state("flaky-1", "succeeded", Duration::from_secs(15))
        .await;
    let dead = read_topic(
        &config.topics.dlq,
        3,
        1,
        Duration::from_secs(20),
        Duration::from_secs(1),
    );
    assert_eq!(dead.len(), 1, "one dead letter");
    assert_eq!(header(&dead[0], "sked-job-id").as_deref(), Some("broken"));

    // Replay after the fix: the replayer's keys live on the cluster too.
    fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    let selection = json!({"job_id": "broken"});
    let done = replay_and_wait(&replayer.api(), &selection, Duration::from_secs(30)).await;
    assert_eq!(done["published"], 1);
    ingest
        .wait_run_state("broken", "succeeded", Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    for i in 0..60 {
        let calls = endpoint.calls_for(&format!("once-{i}"));
        assert_eq!(calls.len(), 1, "once-{i} ran once");
        assert!(calls[0].at >= run_at, "once-{i} ran early: {}", calls[0].at);
    }
    assert_eq!(endpoint.calls_for("tick").len(), 3, "max_runs = 3");
    assert_eq!(endpoint.calls_for("flaky-1").len(), 2);
    assert_eq!(
        endpoint.calls_for("broken").len(),
        2,
        "once, then once replayed"
    );
    assert!(
        endpoint.calls_for("gone").is_empty(),
        "cancelled never runs"
    );
    // 60 + 3 ticks + flaky-1 twice (its retry) + broken twice (its replay), each once.
    let due = read_topic(
        &config.topics.due,
        3,
        67,
        Duration::from_secs(10),
        Duration::from_secs(1),
    );
    let fires: BTreeSet<(String, Option<String>, Option<String>)> = due
        .iter()
        .map(|m| {
            (
                header(m, "sked-fire-id").unwrap(),
                header(m, "sked-attempt"),
                header(m, "sked-replay-id"),
            )
        })
        .collect();
    assert_eq!(due.len(), 67, "{fires:?}");
    assert_eq!(fires.len(), due.len(), "no fire produced twice: {fires:?}");

    let per_node = keys_per_cluster_node(&config.redis.key_prefix).await;
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "keys are spread over the cluster's nodes: {per_node:?}"
    );
    // All four processes announce themselves on a cluster too (their keys share one slot).
    let services = eventually(
        Duration::from_secs(15),
        "four processes and their fires",
        || async {
            let v = sked_e2e::try_json(&format!("{}/v1/cluster", ingest.api())).await?;
            let s: Vec<String> = v["replicas"]
                .as_array()?
                .iter()
                .filter_map(|r| r["service"].as_str().map(str::to_owned))
                .collect();
            (s.len() == 4 && v["lateness"]["fires"].as_u64() > Some(0)).then_some((s, v))
        },
    )
    .await;
    let (services, v) = services;
    assert_eq!(services, ["ingest", "replayer", "scheduler", "worker"]);
    // INFO memory answers once per primary on a cluster: all three are summed.
    assert_eq!(v["redis"]["nodes"], 3, "{}", v["redis"]);
    assert!(
        v["redis"]["used_bytes"].as_u64() > Some(0),
        "{}",
        v["redis"]
    );
    replayer.stop().await;
    worker.stop().await;
    scheduler.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_killed_with_fires_in_flight_on_a_cluster_they_are_reclaimed() {
    let ns = unique("creclaim");
    let mut sets = test_sets(&ns);
    sets.push("scheduler.lease=2s".into());
    let config = cluster_config(sets.clone());
    create_topics(&config, 3).await;
    let store = Store::connect(&config.redis).await.unwrap();
    let now = Utc::now();
    let at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let ops: Vec<Op> = (0..500)
        .map(|i| {
            let r = format!(r#"{{"id":"r-{i}","app":"sms","run_at":"{at}"}}"#);
            Op::insert(
                request::parse(r.as_bytes(), &limits(&config), &Origin::new(now)).unwrap(),
                r.as_bytes(),
            )
        })
        .collect();
    store.apply(&ops).await.unwrap();

    // A scheduler whose broker never answers claims every job and cannot produce them.
    let mut stuck_sets = sets;
    stuck_sets.extend(cluster_sets());
    stuck_sets.push("kafka.brokers=127.0.0.1:1".into());
    stuck_sets.push("kafka.rdkafka.message.timeout.ms=600000".into());
    let mut stuck = Proc::start("sked-scheduler", &stuck_sets);
    let shards: Vec<Shard> = (0..config.redis.shards).map(Shard).collect();
    eventually(Duration::from_secs(30), "all 500 claimed", || async {
        let backlog = store.backlog(&shards).await.unwrap();
        (backlog.iter().map(|(_, f)| f).sum::<u64>() == 500).then_some(())
    })
    .await;
    stuck.kill9();

    let survivor = Scheduler::start(config.clone()).await;
    let fired = read_topic(
        &config.topics.due,
        3,
        500,
        Duration::from_secs(60),
        Duration::from_secs(2),
    );
    let ids: BTreeSet<String> = fired
        .iter()
        .map(|m| header(m, "sked-fire-id").unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        500,
        "every in-flight fire was reclaimed and fired"
    );
    assert_eq!(fired.len(), 500, "and fired once");
    let text = survivor.metrics().await;
    assert_eq!(
        metric(&text, "sked_scheduler_reclaimed_total"),
        500.0,
        "{text}"
    );
    survivor.stop().await;
}

/// The operating API on a Redis Cluster: every listing, the counts, the verbs and a bulk
/// cancel run their scripts and pipelines against shards spread over the three primaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operating_api_lists_counts_pauses_and_bulk_cancels_on_a_cluster() {
    let ns = unique("coperate");
    let config = cluster_config(test_sets(&ns));
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let api = ingest.api();
    let client = http();
    let at = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Millis, true);
    for i in 0..300 {
        let body = format!(
            r#"{{"id":"op-{i:03}","app":"a{}","tenant":"t{}","labels":{{"g":"g{}"}},"run_at":"{at}"}}"#,
            i % 3,
            i % 5,
            i % 2
        );
        let r = client
            .post(format!("{api}/v1/jobs"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let list = |query: &'static str| {
        let api = api.clone();
        async move {
            let mut ids = BTreeSet::new();
            let mut cursor = String::new();
            loop {
                let page = get_json(&format!("{api}/v1/jobs?limit=40&{query}{cursor}")).await;
                for j in page["jobs"].as_array().unwrap() {
                    assert!(
                        ids.insert(j["id"].as_str().unwrap().to_owned()),
                        "{query}: twice"
                    );
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = format!("&cursor={c}"),
                    None => return ids,
                }
            }
        }
    };
    assert_eq!(list("order=due").await.len(), 300);
    assert_eq!(list("order=created").await.len(), 300);
    assert_eq!(list("app=a1").await.len(), 100);
    assert_eq!(list("tenant=t4").await.len(), 60);
    assert_eq!(list("label=g%3Dg1&app=a0").await.len(), 50);
    let stats = get_json(&format!("{api}/v1/stats")).await;
    assert_eq!(stats["by_app"]["a2"], 100, "{stats}");
    assert_eq!(stats["by_tenant"]["t0"], 60, "{stats}");

    // A job paused on its own, an app paused (its hold copied into every shard).
    let r = client
        .post(format!("{api}/v1/jobs/op-007/pause"))
        .body(r#"{"note":"cluster"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        list("state=paused").await.into_iter().collect::<Vec<_>>(),
        ["op-007"]
    );
    let r = client
        .post(format!("{api}/v1/apps/a0/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pauses = get_json(&format!("{api}/v1/pauses")).await;
    assert_eq!(pauses["pauses"][0]["name"], "a0", "{pauses}");

    // A bulk cancel of one label value: every match once, none other, counts moved.
    let op: serde_json::Value = client
        .post(format!("{api}/v1/operations"))
        .json(&json!({"action": "cancel", "selector": {"label": ["g=g0"]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = op["id"].as_str().unwrap().to_owned();
    let done = operation_succeeded(&api, &id, Duration::from_secs(30)).await;
    assert_eq!(done["outcomes"], json!({"cancelled": 150}), "{done}");
    assert_eq!(list("label=g%3Dg0").await.len(), 0);
    assert_eq!(list("label=g%3Dg1").await.len(), 150);
    assert_eq!(list("state=cancelled").await.len(), 150);
    let stats = get_json(&format!("{api}/v1/stats")).await;
    assert_eq!(stats["pending"], 150, "{stats}");
    assert_eq!(stats["by_app"]["a2"], 50, "{stats}");
    ingest.stop().await;
}
