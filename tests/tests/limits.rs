//! `[global_limits]` across worker processes, against the real broker and Redis: a start rate
//! of 50/s shared by three workers holds within 10 % over a minute; a concurrency key of 2
//! never has 3 jobs running across three workers; a slot held by a worker killed -9 comes back
//! when its lease ends, not before; a job held past `max_wait` goes to the retry topic unrun,
//! with the same attempt. The Redis scripts keep their semantics on a Redis Cluster.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;
use sked_core::store::{
    Store,
    limits::{Rate, Reservation},
};
use sked_e2e::{
    Proc, cluster_sets, create_topics, eventually, header, producer, read_topic, test_config,
    test_sets, unique,
    worker::{Call, Endpoint, Worker, fire, metric_sum, worker_config, worker_sets},
};

/// A fire of `job_id` for app `web` due now, with the label `customer` when given.
fn labelled(job_id: &str, customer: Option<&str>) -> (Vec<u8>, Vec<(String, String)>) {
    let (value, headers) = fire(job_id, "web", Utc::now(), r#"{"n":1}"#, 1);
    let Some(customer) = customer else {
        return (value, headers);
    };
    let mut envelope: serde_json::Value = serde_json::from_slice(&value).expect("envelope");
    envelope["labels"] = serde_json::json!({ "customer": customer });
    (serde_json::to_vec(&envelope).expect("envelope"), headers)
}

/// A record to produce: key, value, headers.
type Record = (String, Vec<u8>, Vec<(String, String)>);

/// Produces every record to `topic` (keyed by its job id), 500 in flight at a time.
async fn produce_all(producer: &FutureProducer, topic: &str, records: Vec<Record>) {
    for chunk in records.chunks(500) {
        let sends = chunk.iter().map(|(key, value, headers)| {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            async move {
                sked_e2e::produce(producer, topic, None, Some(key.as_bytes()), Some(value), &h)
                    .await
            }
        });
        futures::future::join_all(sends).await;
    }
}

/// `--set` flags of one worker process of app `web` at `url`, tagged `x-worker: <name>`.
fn process_sets(ns: &str, url: &str, name: &str, extra: &[&str]) -> Vec<String> {
    let mut sets = test_sets(ns);
    sets.extend(worker_sets(ns));
    sets.push(format!("apps.web.url={url}"));
    sets.push(format!("apps.web.headers.x-worker={name}"));
    sets.extend(extra.iter().map(|s| s.to_string()));
    sets
}

fn worker_of(call: &Call) -> String {
    call.headers
        .get("x-worker")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The most intervals `[at, answered]` that overlap at one instant.
fn max_overlap(calls: &[&Call]) -> usize {
    let mut edges: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for c in calls {
        edges.push((c.at, 1));
        edges.push((c.answered.expect("answered"), -1));
    }
    // Ends before starts at the same instant: touching intervals do not overlap.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_global_rate_of_50_per_second_holds_within_10_percent_across_three_workers() {
    let ns = unique("lim-rate");
    let endpoint = Endpoint::start(|_, _| (200, Duration::ZERO)).await;
    let url = endpoint.url("/hook");
    // A wait long enough that nothing is handed to the retry topic: the backlog waits in the
    // workers, and the limit alone sets the pace.
    let extra = [
        "global_limits.apps.web={ per_second = 50.0 }",
        "global_limits.max_wait=120s",
    ];
    let config = test_config(&ns, &extra);
    create_topics(&config, 3).await;
    let _workers: Vec<Proc> = (1..=3)
        .map(|i| {
            Proc::start(
                "sked-worker",
                &process_sets(&ns, &url, &format!("w{i}"), &extra),
            )
        })
        .collect();
    // Let the three join the group before the backlog arrives (a rebalance mid-run abandons
    // reservations, which would under-run the limit).
    tokio::time::sleep(Duration::from_secs(8)).await;

    const JOBS: usize = 4200;
    let records = (0..JOBS)
        .map(|i| {
            let id = format!("rate-{i}");
            let (value, headers) = labelled(&id, None);
            (id, value, headers)
        })
        .collect();
    produce_all(&producer(), &config.topics.due, records).await;

    let first = eventually(Duration::from_secs(30), "the first call", || async {
        endpoint.calls().first().map(|c| c.at)
    })
    .await;
    // One minute, after a 5 s warm-up.
    let from = first + chrono::Duration::seconds(5);
    let to = from + chrono::Duration::seconds(60);
    let wait = (to - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await;
    let calls = endpoint.calls();
    let window: Vec<&Call> = calls.iter().filter(|c| c.at >= from && c.at < to).collect();
    let n = window.len();
    assert!(
        (2700..=3300).contains(&n),
        "{n} starts in 60 s across three workers: the limit is 3000 (±10 %)"
    );
    assert!(calls.len() < JOBS, "the backlog outlasted the window");
    let mut per_worker = std::collections::BTreeMap::<String, usize>::new();
    for c in &window {
        *per_worker.entry(worker_of(c)).or_default() += 1;
    }
    assert_eq!(
        per_worker.len(),
        3,
        "all three workers ran jobs in the window: {per_worker:?}"
    );
    // Burst 1: the limiter hands out starts 20 ms apart, so nearly every gap between two
    // consecutive starts (of any worker) is about 20 ms. This is judged over all the gaps, not
    // per second: a worker that is off the CPU for a few hundred ms (two cores shared with the
    // whole suite) starts its overdue jobs together when it wakes, which puts one second over
    // 50 (68 was seen once in CI) without the limiter being wrong; such stalls also put some
    // gaps near zero (226 of 2,999, 7.5 %, once in CI). A limiter that let starts through in
    // bursts, even at the right average rate, makes most gaps near zero (80 % for starts
    // rounded to 100 ms boundaries), so a quarter is the bound.
    let mut at: Vec<DateTime<Utc>> = window.iter().map(|c| c.at).collect();
    at.sort();
    let gaps: Vec<i64> = at
        .windows(2)
        .map(|w| (w[1] - w[0]).num_microseconds().unwrap_or(i64::MAX))
        .collect();
    let close = gaps.iter().filter(|g| **g < 5_000).count();
    let mut per_second = std::collections::BTreeMap::<i64, usize>::new();
    for c in &window {
        *per_second.entry(c.at.timestamp()).or_default() += 1;
    }
    let busiest = per_second.values().max().copied().unwrap_or(0);
    assert!(
        close * 4 <= gaps.len(),
        "{close} of {} consecutive starts were under 5 ms apart (limit 50/s, burst 1: about 20 ms); \
         the busiest second had {busiest}",
        gaps.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrency_key_of_2_never_has_3_jobs_running_across_three_workers() {
    let ns = unique("lim-conc");
    let endpoint = Endpoint::start(|_, _| (200, Duration::from_millis(300))).await;
    let url = endpoint.url("/hook");
    let extra = [
        r#"global_limits.concurrency.customer={ label = "customer", max = 2 }"#,
        "global_limits.max_wait=120s",
    ];
    let config = test_config(&ns, &extra);
    create_topics(&config, 3).await;
    let _workers: Vec<Proc> = (1..=3)
        .map(|i| {
            Proc::start(
                "sked-worker",
                &process_sets(&ns, &url, &format!("w{i}"), &extra),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(8)).await;

    // 45 jobs of customer c1 (keyed by job id, so over all three partitions), 15 of c2 and
    // 15 with no customer.
    let mut records = Vec::new();
    for i in 0..75 {
        let customer = match i % 5 {
            0 => Some("c2"),
            1 => None,
            _ => Some("c1"),
        };
        let id = format!("conc-{i}");
        let (value, headers) = labelled(&id, customer);
        records.push((id, value, headers));
    }
    produce_all(&producer(), &config.topics.due, records).await;

    let calls = eventually(Duration::from_secs(90), "every job answered", || async {
        let calls = endpoint.calls();
        (calls.len() >= 75 && calls.iter().all(|c| c.answered.is_some())).then_some(calls)
    })
    .await;
    assert_eq!(calls.len(), 75, "each job ran once");
    let of = |pick: &dyn Fn(usize) -> bool| -> Vec<&Call> {
        calls
            .iter()
            .filter(|c| {
                let i: usize = c.job_id["conc-".len()..].parse().expect("job index");
                pick(i)
            })
            .collect()
    };
    let c1 = of(&|i| i % 5 >= 2);
    let c2 = of(&|i| i % 5 == 0);
    let free = of(&|i| i % 5 == 1);
    assert_eq!((c1.len(), c2.len(), free.len()), (45, 15, 15));
    assert_eq!(max_overlap(&c1), 2, "c1 ran 2 at once, never 3");
    assert!(max_overlap(&c2) <= 2, "c2 ran at most 2 at once");
    let workers: std::collections::BTreeSet<String> = c1.iter().map(|c| worker_of(c)).collect();
    assert_eq!(workers.len(), 3, "c1's jobs ran on all three workers");
    // Jobs without the label are not held: they run beside c1's two.
    let all: Vec<&Call> = calls.iter().collect();
    assert!(
        max_overlap(&all) > 4,
        "unlabelled jobs and c2 were not held by c1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_held_by_a_worker_killed_9_comes_back_when_its_lease_ends() {
    let ns = unique("lim-kill");
    // The first job hangs: its worker dies in it.
    let endpoint = Endpoint::start(|call, _| {
        if call.job_id == "held-1" {
            (200, Duration::from_secs(60))
        } else {
            (200, Duration::ZERO)
        }
    })
    .await;
    let url = endpoint.url("/hook");
    let key = r#"global_limits.concurrency.customer={ label = "customer", max = 1 }"#;
    // The dying worker reads one topic, the survivor another, so that only the lease can free
    // the slot (a redelivered fire would take its own slot back).
    let doomed_topic = format!("{ns}.due-a");
    let survivor_topic = format!("{ns}.due-b");
    let doomed_topics = format!(r#"worker.topics=["{doomed_topic}"]"#);
    let survivor_topics = format!(r#"worker.topics=["{survivor_topic}"]"#);
    // Lease = max_wait 1s + timeout 3s + grace 1s.
    let doomed_extra = [
        key,
        "global_limits.max_wait=1s",
        "worker.default_timeout=3s",
        "worker.lease_grace=1s",
        &doomed_topics,
    ];
    let config = test_config(&ns, &doomed_extra);
    create_topics(&config, 1).await;
    create_single_partition_topics(&config, &[&doomed_topic, &survivor_topic]).await;
    // The survivor runs in a group of its own, already joined when the slot is lost: the
    // wait it sees is the slot's, not a rebalance's (a first mutation run showed a join delay
    // of about the lease that hid a slot granted at once).
    let p = producer();
    let survivor_group = format!("worker.group_id={ns}-survivor");
    let survivor = Worker::start(worker_config(
        &ns,
        &[
            &format!("apps.web.url={url}"),
            key,
            "global_limits.max_wait=30s",
            &survivor_topics,
            &survivor_group,
        ],
    ))
    .await;
    let (value, headers) = labelled("warm-up", None);
    produce_all(
        &p,
        &survivor_topic,
        vec![("warm-up".into(), value, headers)],
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the survivor consuming",
        || async { (!endpoint.calls_for("warm-up").is_empty()).then_some(()) },
    )
    .await;

    let mut doomed = Proc::start(
        "sked-worker",
        &process_sets(&ns, &url, "doomed", &doomed_extra),
    );
    let store = Store::connect(&config.redis).await.expect("store");

    let (value, headers) = labelled("held-1", Some("c1"));
    produce_all(&p, &doomed_topic, vec![("held-1".into(), value, headers)]).await;
    eventually(Duration::from_secs(30), "the first job running", || async {
        (!endpoint.calls_for("held-1").is_empty()).then_some(())
    })
    .await;
    let holders = store.slot_holders("customer", "c1").await.expect("holders");
    assert_eq!(holders.len(), 1, "one slot held: {holders:?}");
    assert!(
        holders[0].0.starts_with("held-1@"),
        "held by the first fire: {holders:?}"
    );
    let lease_end = holders[0].1;
    doomed.kill9();

    let (value, headers) = labelled("held-2", Some("c1"));
    produce_all(&p, &survivor_topic, vec![("held-2".into(), value, headers)]).await;
    let second = eventually(
        Duration::from_secs(30),
        "the second job running",
        || async { endpoint.calls_for("held-2").first().cloned() },
    )
    .await;
    let at = second.at.timestamp_millis();
    assert!(
        at >= lease_end - 100,
        "the second job ran {} ms before the dead worker's lease ended",
        lease_end - at
    );
    assert!(
        at <= lease_end + 2500,
        "the slot came back {} ms after its lease ended",
        at - lease_end
    );
    survivor.stop().await;
}

/// Creates `topics` with one partition each.
async fn create_single_partition_topics(config: &sked_core::config::Config, topics: &[&str]) {
    let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
    sked_core::kafka::topics::ensure(&config.kafka, &topics, 1, 1)
        .await
        .expect("create topics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_held_past_max_wait_goes_to_the_retry_topic_unrun_with_the_same_attempt() {
    let ns = unique("lim-defer");
    let endpoint = Endpoint::start(|call, _| {
        if call.job_id == "slow" {
            (200, Duration::from_secs(4))
        } else {
            (200, Duration::ZERO)
        }
    })
    .await;
    let url = endpoint.url("/hook");
    let app_url = format!("apps.web.url={url}");
    let config = worker_config(
        &ns,
        &[
            &app_url,
            r#"global_limits.concurrency.customer={ label = "customer", max = 1 }"#,
            // 1 start every 2 s.
            "global_limits.tenants.acme={ per_second = 0.5 }",
            "global_limits.max_wait=300ms",
        ],
    );
    create_topics(&config, 1).await;
    let worker = Worker::start(config.clone()).await;
    let p = producer();
    let with_tenant = |id: &str, customer: Option<&str>| {
        let (value, headers) = labelled(id, customer);
        let mut envelope: serde_json::Value = serde_json::from_slice(&value).expect("envelope");
        envelope["tenant"] = serde_json::json!("acme");
        (
            id.to_owned(),
            serde_json::to_vec(&envelope).expect("envelope"),
            headers,
        )
    };
    let record = |id: &str, customer: Option<&str>| {
        let (value, headers) = labelled(id, customer);
        (id.to_owned(), value, headers)
    };
    // `slow` holds c1's one slot for 4 s; `blocked` wants it. `first` takes acme's start;
    // `second`, right after, would wait 2 s for the next.
    produce_all(&p, &config.topics.due, vec![record("slow", Some("c1"))]).await;
    eventually(Duration::from_secs(30), "the slow job running", || async {
        (!endpoint.calls_for("slow").is_empty()).then_some(())
    })
    .await;
    let sent = Utc::now().timestamp_millis();
    produce_all(
        &p,
        &config.topics.due,
        vec![record("blocked", Some("c1")), with_tenant("first", None)],
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the first acme job running",
        || async { (!endpoint.calls_for("first").is_empty()).then_some(()) },
    )
    .await;
    produce_all(&p, &config.topics.due, vec![with_tenant("second", None)]).await;
    let retry_topic = config.topics.retry.clone();
    let retries = tokio::task::spawn_blocking(move || {
        read_topic(
            &retry_topic,
            1,
            2,
            Duration::from_secs(30),
            Duration::from_secs(1),
        )
    })
    .await
    .expect("read");
    let by_job = |id: &str| {
        retries
            .iter()
            .find(|m| header(m, "sked-job-id").as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no retry record of {id}: {} records", retries.len()))
    };
    for (id, limit, least_ms) in [
        ("blocked", "concurrency:customer", 1000),
        ("second", "tenant:acme", 1500),
    ] {
        let m = by_job(id);
        assert_eq!(
            header(m, "sked-attempt").as_deref(),
            Some("1"),
            "{id}: same attempt"
        );
        assert_eq!(
            header(m, "last-error"),
            Some(format!("held by global limit {limit}")),
            "{id}"
        );
        let retry_at: i64 = header(m, "sked-retry-at")
            .and_then(|v| v.parse().ok())
            .expect("sked-retry-at");
        assert!(
            retry_at >= sent + least_ms,
            "{id}: due again {} ms after it was held, at least {least_ms}",
            retry_at - sent
        );
    }
    assert_eq!(retries.len(), 2, "only the held jobs were handed on");
    assert!(
        endpoint.calls_for("blocked").is_empty(),
        "the held job did not run"
    );
    assert!(
        endpoint.calls_for("second").is_empty(),
        "the held job did not run"
    );
    assert_eq!(endpoint.calls_for("first").len(), 1);
    let text = worker.metrics().await;
    for limit in ["concurrency:customer", "tenant:acme"] {
        assert_eq!(
            metric_sum(
                &text,
                "sked_worker_limit_deferred_total",
                &[&format!("limit=\"{limit}\"")]
            ),
            1.0,
            "{limit}"
        );
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_scripts_keep_their_semantics_on_standalone_redis_and_on_a_cluster() {
    for cluster in [false, true] {
        let ns = unique("lim-store");
        let mut extra: Vec<String> = Vec::new();
        if cluster {
            extra.extend(cluster_sets());
        }
        let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        let config = test_config(&ns, &refs);
        let store = Store::connect(&config.redis).await.expect("store");
        let lease = Duration::from_millis(800);

        // Two slots of c1; a third holder waits for the earliest lease; the first holder
        // asking again keeps its slot; another value is not affected.
        assert_eq!(
            store.acquire_slot("k", "c1", 2, "f1", lease).await.unwrap(),
            None
        );
        assert_eq!(
            store.acquire_slot("k", "c1", 2, "f2", lease).await.unwrap(),
            None
        );
        let wait = store.acquire_slot("k", "c1", 2, "f3", lease).await.unwrap();
        assert!(
            wait.is_some_and(|w| w <= lease),
            "a third holder waits at most the lease: {wait:?} (cluster {cluster})"
        );
        assert_eq!(
            store.acquire_slot("k", "c1", 2, "f1", lease).await.unwrap(),
            None
        );
        assert_eq!(
            store
                .acquire_slot("k", "{c2} x", 2, "f3", lease)
                .await
                .unwrap(),
            None
        );
        // A release frees a slot at once; an unreleased one frees at its lease.
        store.release_slot("k", "c1", "f2").await.unwrap();
        assert_eq!(
            store.acquire_slot("k", "c1", 2, "f3", lease).await.unwrap(),
            None
        );
        assert!(
            store
                .acquire_slot("k", "c1", 2, "f4", lease)
                .await
                .unwrap()
                .is_some()
        );
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        assert_eq!(
            store.acquire_slot("k", "c1", 2, "f4", lease).await.unwrap(),
            None
        );
        assert_eq!(store.slot_holders("k", "c1").await.unwrap().len(), 1);

        // 10/s, burst 1: the first start now, then one every 100 ms, reserved in order;
        // past the most wait, refused without reserving.
        let rate = Rate {
            per_second: 10.0,
            burst: 1,
        };
        let most = Duration::from_millis(350);
        let mut waits = Vec::new();
        for _ in 0..4 {
            match store.reserve_start("a:x", rate, most).await.unwrap() {
                Reservation::Granted(w) => waits.push(w.as_millis()),
                Reservation::Refused(w) => panic!("refused early after {waits:?}: {w:?}"),
            }
        }
        assert!(waits[0] <= 5, "{waits:?}");
        for (i, w) in waits.iter().enumerate().skip(1) {
            let want = 100 * i as u128;
            assert!(
                w + 10 >= want && *w <= want,
                "start {i} waits {w} ms, want about {want} (cluster {cluster})"
            );
        }
        match store.reserve_start("a:x", rate, most).await.unwrap() {
            Reservation::Refused(w) => assert!(w > most, "{w:?}"),
            granted => panic!("granted past the most wait: {granted:?}"),
        }
        match store.reserve_start("a:x", rate, most).await.unwrap() {
            Reservation::Refused(_) => {}
            granted => panic!("a refusal reserved nothing, so this is refused too: {granted:?}"),
        }
        // Burst 3 on an idle limit: three at once.
        let burst = Rate {
            per_second: 1.0,
            burst: 3,
        };
        for i in 0..3 {
            assert_eq!(
                store
                    .reserve_start("t:y", burst, Duration::ZERO)
                    .await
                    .unwrap(),
                Reservation::Granted(Duration::ZERO),
                "burst start {i}"
            );
        }
        assert!(matches!(
            store
                .reserve_start("t:y", burst, Duration::ZERO)
                .await
                .unwrap(),
            Reservation::Refused(_)
        ));
    }
}
