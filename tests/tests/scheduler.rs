//! Scheduler scenarios against the real broker and Redis: on time, never early, once per fire
//! id across replicas, crash recovery, misfire policies, cancel racing a fire.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::Message;
use reqwest::StatusCode;
use sked_e2e::{
    Proc, create_topics, header, http,
    ingest::Ingest,
    read_topic,
    scheduler::{Scheduler, metric, put_jobs},
    test_config, test_sets, unique,
};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ms(msg: &rdkafka::message::OwnedMessage, name: &str) -> i64 {
    header(msg, name)
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|_| panic!("header {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_fire_on_time_and_never_early() {
    let ns = unique("ontime");
    let config = test_config(&ns, &[]);
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;

    let now = Utc::now();
    let in_one_second = now + chrono::Duration::seconds(1);
    let bodies = [
        format!(
            r#"{{"id":"in-1s","app":"sms","run_at":"{}","payload":{{"n":1}}}}"#,
            rfc3339(in_one_second)
        ),
        format!(
            r#"{{"id":"past","app":"sms","run_at":"{}"}}"#,
            rfc3339(now - chrono::Duration::seconds(30))
        ),
        r#"{"id":"zero","app":"sms","delay":0}"#.to_owned(),
    ];
    for body in &bodies {
        let resp = http()
            .post(format!("{}/v1/jobs", ingest.api()))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let fired = read_topic(
        &config.topics.due,
        3,
        3,
        Duration::from_secs(20),
        Duration::from_secs(1),
    );
    let received_at = Utc::now();
    assert_eq!(fired.len(), 3, "each job fires once");
    let by_id: BTreeMap<String, _> = fired
        .iter()
        .map(|m| (header(m, "sked-job-id").unwrap(), m))
        .collect();

    let on_time = by_id["in-1s"];
    let due = ms(on_time, "sked-due-at");
    let fired_at = ms(on_time, "sked-fired-at");
    assert_eq!(due, in_one_second.timestamp_millis());
    assert!(fired_at >= due, "fired {} ms early", due - fired_at);
    assert!(fired_at - due < 1000, "fired {} ms late", fired_at - due);
    assert!(received_at.timestamp_millis() >= due);
    assert_eq!(
        header(on_time, "sked-fire-id").unwrap(),
        format!("in-1s@{due}")
    );
    assert_eq!(header(on_time, "sked-attempt").as_deref(), Some("1"));
    assert!(header(on_time, "traceparent").unwrap().starts_with("00-"));
    let envelope: serde_json::Value = serde_json::from_slice(on_time.payload().unwrap()).unwrap();
    assert_eq!(envelope["payload"]["n"], 1);
    assert_eq!(envelope["app"], "sms");

    let past = by_id["past"];
    assert!(
        ms(past, "sked-fired-at") - ms(past, "sked-due-at") >= 30_000,
        "late fire keeps its lateness"
    );
    assert!(by_id.contains_key("zero"));

    let text = scheduler.metrics().await;
    assert!(
        metric(&text, "sked_scheduler_fire_lateness_seconds_count") >= 3.0,
        "{text}"
    );
    assert_eq!(metric(&text, "sked_scheduler_early_fires_total"), 0.0);
    assert_eq!(metric(&text, "sked_scheduler_fired_total"), 3.0);
    let (status, job) = ingest.get_job("in-1s").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["state"], "dispatched");
    scheduler.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_jobs_due_together_fire_once_each_across_two_replicas() {
    let ns = unique("herd");
    let config = test_config(&ns, &[]);
    create_topics(&config, 3).await;
    let due = Utc::now() + chrono::Duration::seconds(2);
    let jobs: Vec<(String, Option<DateTime<Utc>>)> = (0..10_000)
        .map(|i| {
            (
                format!(
                    r#"{{"id":"h-{i}","app":"sms","run_at":"{}"}}"#,
                    rfc3339(due)
                ),
                None,
            )
        })
        .collect();
    put_jobs(&config, &jobs, Utc::now()).await;
    let (a, b) = tokio::join!(
        Scheduler::start(config.clone()),
        Scheduler::start(config.clone())
    );

    let fired = read_topic(
        &config.topics.due,
        3,
        10_000,
        Duration::from_secs(60),
        Duration::from_secs(2),
    );
    let mut fire_ids: Vec<String> = fired
        .iter()
        .map(|m| header(m, "sked-fire-id").unwrap())
        .collect();
    let total = fire_ids.len();
    fire_ids.sort();
    fire_ids.dedup();
    // What the schedulers sent, to tell a fire sent twice (a re-claim) from a record the
    // broker or the read gave twice, should the count below be off.
    let sent = metric(&a.metrics().await, "sked_scheduler_fired_total")
        + metric(&b.metrics().await, "sked_scheduler_fired_total");
    let reclaimed = metric(&a.metrics().await, "sked_scheduler_reclaimed_total")
        + metric(&b.metrics().await, "sked_scheduler_reclaimed_total");
    assert_eq!(
        fire_ids.len(),
        10_000,
        "every job fired (sent {sent}, reclaimed {reclaimed})"
    );
    assert_eq!(
        total, 10_000,
        "each fire id exactly once (sent {sent}, reclaimed {reclaimed})"
    );
    for m in &fired {
        assert!(
            ms(m, "sked-fired-at") >= ms(m, "sked-due-at"),
            "never early"
        );
    }
    assert_eq!(sent, 10_000.0);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_fires_in_flight_they_are_reclaimed_and_fired() {
    let ns = unique("reclaim");
    let config = test_config(&ns, &["scheduler.lease=2s"]);
    create_topics(&config, 3).await;
    let now = Utc::now();
    let jobs: Vec<_> = (0..2_000)
        .map(|i| {
            (
                format!(
                    r#"{{"id":"r-{i}","app":"sms","run_at":"{}"}}"#,
                    rfc3339(now)
                ),
                None,
            )
        })
        .collect();
    put_jobs(&config, &jobs, now).await;

    // A scheduler whose broker never answers claims the jobs and cannot produce them:
    // every fire is in flight when it is killed.
    let mut sets = test_sets(&ns);
    sets.push("scheduler.lease=2s".into());
    let mut stuck_sets = sets.clone();
    stuck_sets.push("kafka.brokers=127.0.0.1:1".into());
    stuck_sets.push("kafka.rdkafka.message.timeout.ms=600000".into());
    let mut stuck = Proc::start("sked-scheduler", &stuck_sets);
    let url = sked_e2e::redis_url();
    let prefix = config.redis.key_prefix.clone();
    sked_e2e::eventually(Duration::from_secs(30), "all 2000 claimed", || async {
        let mut conn = sked_e2e::redis(&url).await;
        let mut pipe = redis::pipe();
        for s in 0..config.redis.shards {
            pipe.zcard(format!("{prefix}:{{s{s}}}:inflight"));
        }
        let n: Vec<u64> = pipe.query_async(&mut conn).await.unwrap();
        (n.iter().sum::<u64>() == 2000).then_some(())
    })
    .await;
    stuck.kill9();

    let survivor = Scheduler::start(config.clone()).await;
    let fired = read_topic(
        &config.topics.due,
        3,
        2_000,
        Duration::from_secs(60),
        Duration::from_secs(2),
    );
    let mut ids: Vec<String> = fired
        .iter()
        .map(|m| header(m, "sked-fire-id").unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        2_000,
        "every in-flight fire was reclaimed and fired"
    );
    let text = survivor.metrics().await;
    assert_eq!(
        metric(&text, "sked_scheduler_reclaimed_total"),
        2000.0,
        "{text}"
    );
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_down_two_minutes_one_shots_fire_and_cron_follows_misfire_policy() {
    let ns = unique("misfire");
    let config = test_config(&ns, &[]);
    create_topics(&config, 3).await;
    let now = Utc::now();
    // The last 10-second slot at least two minutes ago: the scheduler "was down" since then.
    let secs = (now - chrono::Duration::seconds(120)).timestamp();
    let slot = DateTime::<Utc>::from_timestamp(secs - secs.rem_euclid(10), 0).unwrap();
    let missed = (now.timestamp() - slot.timestamp()) / 10 + 1;
    let cron = |id: &str, misfire: &str| {
        (
            format!(r#"{{"id":"{id}","app":"sms","cron":"*/10 * * * * *","misfire":"{misfire}"}}"#),
            Some(slot),
        )
    };
    let jobs = vec![
        (
            r#"{"id":"once-late","app":"sms","delay":"1s"}"#.to_owned(),
            Some(now - chrono::Duration::seconds(120)),
        ),
        cron("c-once", "fire_once"),
        cron("c-skip", "skip"),
        cron("c-all", "fire_all"),
    ];
    put_jobs(&config, &jobs, now).await;
    let scheduler = Scheduler::start(config.clone()).await;

    let expected = 1 + 1 + missed as usize;
    let fired = read_topic(
        &config.topics.due,
        3,
        expected,
        Duration::from_secs(30),
        Duration::from_secs(2),
    );
    // Only slots due before the restart were missed; the cron goes on firing new ones.
    let mut per_job: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for m in &fired {
        let due = ms(m, "sked-due-at");
        if due <= now.timestamp_millis() {
            per_job
                .entry(header(m, "sked-job-id").unwrap())
                .or_default()
                .push(due);
        }
    }
    // Slots more than the misfire threshold (5 s) old are missed; a slot due within the
    // threshold when the scheduler came back is on time and fires under every policy.
    let cutoff = now.timestamp_millis() - 6_000;
    let missed_slots = (cutoff - slot.timestamp_millis()) / 10_000 + 1;
    let older = |id: &str| -> Vec<i64> {
        let mut v: Vec<i64> = per_job
            .get(id)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| *d <= cutoff)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        per_job.get("once-late").map(Vec::len),
        Some(1),
        "one-shot fires once on restart"
    );
    assert_eq!(
        per_job.get("c-once").map(Vec::len),
        Some(1),
        "fire_once: one fire for all missed slots"
    );
    assert!(
        older("c-skip").is_empty(),
        "skip: missed slots are not fired: {:?}",
        older("c-skip")
    );
    let all = older("c-all");
    assert_eq!(
        all.len() as i64,
        missed_slots,
        "fire_all: every missed slot, {all:?}"
    );
    assert_eq!(all.first(), Some(&slot.timestamp_millis()));
    assert!(
        all.windows(2).all(|w| w[1] - w[0] == 10_000),
        "fire_all fires each slot: {all:?}"
    );

    let text = scheduler.metrics().await;
    assert!(
        text.contains(r#"sked_scheduler_slots_total{slot="missed"}"#),
        "{text}"
    );
    // Every cron job has its next slot scheduled in the future.
    let store = sked_core::store::Store::connect(&config.redis)
        .await
        .unwrap();
    for id in ["c-once", "c-skip", "c-all"] {
        let job = store
            .get(&sked_core::job::JobId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        let next = job.next_due.expect("next fire scheduled");
        assert!(next > now, "{id} next fire {next} is after the outage");
        assert_eq!(next.timestamp() % 10, 0, "{id} stays on its 10 s grid");
    }
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_racing_a_fire_is_either_cancelled_or_dispatched_never_both() {
    let ns = unique("race");
    let config = test_config(&ns, &[]);
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    const N: usize = 300;
    let due = Utc::now() + chrono::Duration::milliseconds(1500);
    let jobs: Vec<_> = (0..N)
        .map(|i| {
            (
                format!(
                    r#"{{"id":"x-{i}","app":"sms","run_at":"{}"}}"#,
                    rfc3339(due)
                ),
                None,
            )
        })
        .collect();
    put_jobs(&config, &jobs, Utc::now()).await;
    tokio::time::sleep_until(
        tokio::time::Instant::now() + (due - Utc::now()).to_std().unwrap_or_default()
            - Duration::from_millis(5),
    )
    .await;
    let api = ingest.api();
    let outcomes = futures_like_join(N, |i| {
        let api = api.clone();
        async move {
            let resp = http()
                .delete(format!("{api}/v1/jobs/x-{i}"))
                .send()
                .await
                .unwrap();
            resp.status()
        }
    })
    .await;
    let fired = read_topic(
        &config.topics.due,
        3,
        N,
        Duration::from_secs(10),
        Duration::from_secs(2),
    );
    let fired_ids: std::collections::BTreeSet<String> = fired
        .iter()
        .map(|m| header(m, "sked-job-id").unwrap())
        .collect();
    assert_eq!(fired_ids.len(), fired.len(), "no job fired twice");
    let (mut cancelled, mut dispatched) = (0, 0);
    for (i, status) in outcomes.iter().enumerate() {
        let did_fire = fired_ids.contains(&format!("x-{i}"));
        match *status {
            StatusCode::OK => {
                cancelled += 1;
                assert!(!did_fire, "x-{i} was cancelled and fired");
            }
            StatusCode::CONFLICT => {
                dispatched += 1;
                assert!(did_fire, "x-{i} was reported dispatched but never fired");
            }
            other => panic!("x-{i}: unexpected cancel status {other}"),
        }
    }
    assert_eq!(cancelled + dispatched, N);
    println!("cancel race: {cancelled} cancelled, {dispatched} dispatched");
    scheduler.stop().await;
    ingest.stop().await;
}

async fn futures_like_join<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interval_fires_without_drift_and_update_replaces_next_fire() {
    let ns = unique("every");
    let config = test_config(&ns, &[]);
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let start = Utc::now() + chrono::Duration::milliseconds(500);
    let body = format!(
        r#"{{"id":"tick","app":"sms","every":"1s","start_at":"{}","max_runs":4}}"#,
        rfc3339(start)
    );
    let resp = http()
        .post(format!("{}/v1/jobs", ingest.api()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // A one-shot far away, then updated to fire now.
    let far = r#"{"id":"moved","app":"sms","delay":"1h"}"#;
    http()
        .post(format!("{}/v1/jobs", ingest.api()))
        .body(far)
        .send()
        .await
        .unwrap();
    let soon = format!(
        r#"{{"id":"moved","app":"sms","run_at":"{}"}}"#,
        rfc3339(Utc::now())
    );
    let resp = http()
        .post(format!("{}/v1/jobs", ingest.api()))
        .body(soon)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let fired = read_topic(
        &config.topics.due,
        3,
        5,
        Duration::from_secs(20),
        Duration::from_secs(2),
    );
    let mut ticks: Vec<i64> = fired
        .iter()
        .filter(|m| header(m, "sked-job-id").as_deref() == Some("tick"))
        .map(|m| ms(m, "sked-due-at"))
        .collect();
    ticks.sort();
    assert_eq!(ticks.len(), 4, "max_runs = 4: {ticks:?}");
    assert!(
        ticks.windows(2).all(|w| w[1] - w[0] == 1000),
        "no drift: {ticks:?}"
    );
    assert_eq!(
        fired
            .iter()
            .filter(|m| header(m, "sked-job-id").as_deref() == Some("moved"))
            .count(),
        1
    );
    let (_, job) = ingest.get_job("tick").await;
    assert_eq!(job["state"], "dispatched", "no fire left after max_runs");
    scheduler.stop().await;
    ingest.stop().await;
}

/// A scheduler stalled past its lease (a GC pause, a slow Redis) acks late, after another
/// scheduler reclaimed the job and claimed it again: the late ack must not touch the other
/// claim (it would schedule the next fire twice or end the job early).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_ack_after_another_scheduler_reclaimed_the_job_changes_nothing() {
    use sked_core::store::{Ack, AckOutcome, JobState, Store};
    let ns = unique("late-ack");
    let config = test_config(&ns, &[]);
    let now = Utc::now() - chrono::Duration::seconds(1);
    put_jobs(
        &config,
        &[(
            r#"{"id":"tick","app":"sms","every":"1s","max_runs":5}"#.into(),
            Some(now),
        )],
        now,
    )
    .await;
    let store = Store::connect(&config.redis).await.unwrap();
    let job = sked_core::job::JobId::parse("tick").unwrap();
    let shard = store.keys().shard_of(&job);
    let ack = |batch: &sked_core::store::ClaimBatch, next: i64| {
        let j = &batch.jobs[0];
        Ack {
            id: j.spec.id.to_string(),
            score_raw: j.score_raw.clone(),
            lease_until: batch.lease_until,
            fired: 1,
            next: Some(next),
            ..Default::default()
        }
    };
    // Scheduler A claims with a lease that has run out by the time B looks.
    let t = Utc::now().timestamp_millis();
    let a = store
        .claim(shard, t, 10, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(a.jobs.len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    // B reclaims it, then claims it again under its own lease.
    let t = Utc::now().timestamp_millis();
    let b = store
        .claim(shard, t, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(b.reclaimed, 1);
    let b = if b.jobs.is_empty() {
        store
            .claim(shard, t, 10, Duration::from_secs(30))
            .await
            .unwrap()
    } else {
        b
    };
    assert_eq!(b.jobs.len(), 1, "B holds the job");
    assert_eq!(a.jobs[0].score_raw, b.jobs[0].score_raw, "the same fire");

    // A's late ack is stale and leaves B's claim alone.
    let late = store.ack(shard, &[ack(&a, t + 1_000)]).await.unwrap();
    assert_eq!(late, [AckOutcome::Stale]);
    let record = store.get(&job).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Firing, "still B's");
    assert_eq!(record.next_due, None, "no next fire scheduled by A");
    // B's ack goes through.
    let own = store.ack(shard, &[ack(&b, t + 2_000)]).await.unwrap();
    assert_eq!(own, [AckOutcome::Next]);
    let record = store.get(&job).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Scheduled);
    assert_eq!(
        record.next_due.map(|d| d.timestamp_millis()),
        Some(t + 2_000)
    );
}

/// Issue 10 item 6: a scheduler fires several slots of a recurring job in one claim, then dies
/// before the ack (the test-only crash point `scheduler.before_ack`, feature `fault-hooks`).
/// The survivor reclaims the job once those slots are past the misfire threshold. It must fire
/// the same slots again (same fire ids) and count them, so that the job fires exactly
/// `max_runs` distinct slots. Before the mend it re-fired only the claimed slot and counted the
/// others as missed: 8 distinct fire ids for `max_runs` 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_runs_holds_when_a_claim_that_fired_several_slots_dies_before_its_ack() {
    use sked_core::store::{JobState, Store};
    let ns = unique("max-runs-crash");
    // Both replicas share the lease and the threshold (the replay assumes a common lease).
    let shared = ["scheduler.lease=2s", "scheduler.misfire_threshold=5s"];
    let config = test_config(&ns, &shared);
    create_topics(&config, 1).await;
    let port = sked_e2e::replayer::free_port();
    let mut sets = test_sets(&ns);
    sets.extend(shared.iter().map(|s| (*s).to_owned()));
    sets.push(format!("admin.listen_addr=127.0.0.1:{port}"));
    let mut doomed = Proc::start_with_env(
        "sked-scheduler",
        &sets,
        &[("SKED_TEST_CRASH_AT", "scheduler.before_ack")],
    );
    sked_e2e::eventually(
        Duration::from_secs(30),
        "the doomed scheduler ready",
        || async {
            let status = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
                .await
                .ok()?
                .status();
            (status == StatusCode::OK).then_some(())
        },
    )
    .await;

    // Slots every second from a whole second 2.2 s ago: three are due at once, none missed.
    let start_ms = (Utc::now().timestamp_millis() - 2_200) / 1_000 * 1_000;
    let start = DateTime::<Utc>::from_timestamp_millis(start_ms).unwrap();
    let runs = 6;
    put_jobs(
        &config,
        &[(
            format!(
                r#"{{"id":"capped","app":"sms","every":"1s","start_at":"{}","max_runs":{runs}}}"#,
                rfc3339(start)
            ),
            None,
        )],
        start - chrono::Duration::seconds(1),
    )
    .await;
    let exit = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = doomed.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the crash point was never reached"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(!exit.success(), "aborted at the crash point: {exit}");
    let before: Vec<i64> = read_topic(
        &config.topics.due,
        1,
        usize::MAX,
        Duration::from_secs(5),
        Duration::ZERO,
    )
    .iter()
    .map(|m| ms(m, "sked-due-at"))
    .collect();
    assert!(
        before.len() >= 2,
        "the dead claim fired several slots (the case under test): {before:?}"
    );

    // The survivor claims once the dead claim's later slots are missed (threshold 5 s).
    let survive_at = start + chrono::Duration::milliseconds(2_000 + 5_500);
    if let Ok(wait) = (survive_at - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let survivor = Scheduler::start(config.clone()).await;
    let store = Store::connect(&config.redis).await.unwrap();
    let job = sked_core::job::JobId::parse("capped").unwrap();
    sked_e2e::eventually(Duration::from_secs(30), "the job to end", || async {
        let record = store.get(&job).await.unwrap()?;
        (record.state == JobState::Dispatched).then_some(())
    })
    .await;
    // Anything a wrong count would still fire is due within a few seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fired = read_topic(
        &config.topics.due,
        1,
        usize::MAX,
        Duration::from_secs(5),
        Duration::ZERO,
    );
    let mut slots = BTreeMap::new();
    for m in &fired {
        let due = ms(m, "sked-due-at");
        assert!(ms(m, "sked-fired-at") >= due, "never early");
        assert_eq!(
            header(m, "sked-fire-id").unwrap(),
            format!("capped@{due}"),
            "the fire id names the slot"
        );
        assert_eq!((due - start_ms) % 1_000, 0, "on the grid: {due}");
        *slots.entry(due).or_insert(0) += 1;
    }
    assert_eq!(
        slots.len(),
        runs,
        "exactly max_runs distinct slots; fires per slot: {slots:?}"
    );
    for due in &before {
        assert_eq!(
            slots[due], 2,
            "a slot of the dead claim fired again, once: {slots:?}"
        );
    }
    let text = survivor.metrics().await;
    assert_eq!(
        metric(&text, "sked_scheduler_reclaimed_total"),
        1.0,
        "{text}"
    );
    // The expired lease's deadline, kept for the replay, went with the ack.
    let runs_key = store.keys().runs(store.keys().shard_of(&job));
    let mut conn = sked_e2e::redis(&sked_e2e::redis_url()).await;
    let kept: bool = redis::cmd("HEXISTS")
        .arg(&runs_key)
        .arg("/capped")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!kept, "no deadline left in {runs_key}");
    survivor.stop().await;
}

/// The fire ids of `fired`, sorted (one per record, duplicates kept), after checking that
/// none of them went out before its due time.
fn fire_ids_never_early(fired: &[rdkafka::message::OwnedMessage]) -> Vec<String> {
    for m in fired {
        assert!(
            ms(m, "sked-fired-at") >= ms(m, "sked-due-at"),
            "never early"
        );
    }
    let mut ids: Vec<String> = fired
        .iter()
        .map(|m| header(m, "sked-fire-id").unwrap())
        .collect();
    ids.sort();
    ids
}

/// `n` one-shots due now, all claimed by one scheduler process whose sends are slow (the
/// test-only slow point `scheduler.produce`, feature `fault-hooks`, lets one through every
/// `slow_ms`). Answers the configuration, the process and its admin address.
async fn slow_claim(
    name: &str,
    shared: &[&str],
    n: usize,
    slow_ms: u64,
) -> (sked_core::config::Config, Proc, std::net::SocketAddr) {
    let ns = unique(name);
    let config = test_config(&ns, shared);
    create_topics(&config, 3).await;
    let now = Utc::now();
    let jobs: Vec<_> = (0..n)
        .map(|i| {
            (
                format!(
                    r#"{{"id":"{name}-{i}","app":"sms","run_at":"{}"}}"#,
                    rfc3339(now)
                ),
                None,
            )
        })
        .collect();
    put_jobs(&config, &jobs, now).await;
    let port = sked_e2e::replayer::free_port();
    let mut sets = test_sets(&ns);
    sets.extend(shared.iter().map(|s| (*s).to_owned()));
    sets.push(format!("admin.listen_addr=127.0.0.1:{port}"));
    let slow = Proc::start_with_env(
        "sked-scheduler",
        &sets,
        &[
            ("SKED_TEST_SLOW_AT", "scheduler.produce"),
            ("SKED_TEST_SLOW_MS", &slow_ms.to_string()),
        ],
    );
    // Its claimed counter, not the in-flight set: acks start one send after the claim.
    let admin: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    sked_e2e::eventually(
        Duration::from_secs(30),
        "every job claimed by the slow replica",
        || async {
            let text = http()
                .get(format!("http://{admin}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (metric(&text, "sked_scheduler_claimed_total") >= n as f64).then_some(())
        },
    )
    .await;
    (config, slow, admin)
}

/// Issue 10 item 5: a claim whose fires take longer than its lease (a slow broker: the
/// test-only slow point `scheduler.produce`, feature `fault-hooks`, lets one send through every
/// 60 ms) keeps its leases by renewing them while its fires progress. A second replica that
/// runs meanwhile reclaims nothing, and every fire goes out once. Without the renewal, the
/// second replica reclaims the jobs after the 1 s lease and fires them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_claim_renews_its_leases_and_no_other_replica_fires_it_again() {
    const N: usize = 80;
    let (config, mut slow, admin) = slow_claim("renew", &["scheduler.lease=1s"], N, 60).await;
    let other = Scheduler::start(config.clone()).await;

    // 80 sends at 60 ms each: about 5 s, five leases.
    let fired = read_topic(
        &config.topics.due,
        3,
        N + 1,
        Duration::from_secs(20),
        Duration::ZERO,
    );
    let mut ids = fire_ids_never_early(&fired);
    let total = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), N, "every job fired");
    assert_eq!(
        total, N,
        "and each once: no lease expired under the slow claim"
    );
    let text = other.metrics().await;
    assert_eq!(
        metric(&text, "sked_scheduler_reclaimed_total"),
        0.0,
        "{text}"
    );
    let slow_text = sked_e2e::admin_metrics(admin).await;
    assert!(
        metric(&slow_text, "sked_scheduler_lease_renewals_total") >= 3.0,
        "the slow claim renewed its leases: {slow_text}"
    );
    assert_eq!(
        metric(&slow_text, "sked_scheduler_leases_lost_total"),
        0.0,
        "{slow_text}"
    );
    other.stop().await;
    slow.kill9();
}

/// Issue 10 item 1: `scheduler.drain_timeout` bounds the drain. A scheduler whose sends are
/// slow (the slow point lets one through every 100 ms: 80 jobs take 8 s) gets SIGTERM with a
/// 1 s drain deadline: it exits 0 without waiting for the rest of its round, having fired only
/// part of it, and another scheduler fires the rest after their leases (nothing lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_abandons_a_slow_round_at_the_drain_deadline_and_nothing_is_lost() {
    const N: usize = 80;
    let shared = ["scheduler.lease=1s", "scheduler.drain_timeout=1s"];
    let (config, mut slow, _) = slow_claim("drain-deadline", &shared, N, 100).await;
    let pid = slow.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || slow.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "drained and exited 0: {status}");
    let before = read_topic(
        &config.topics.due,
        3,
        N,
        Duration::from_secs(3),
        Duration::ZERO,
    )
    .len();
    assert!(
        before < N,
        "the round was abandoned at the deadline, not finished: {before} of {N} fired"
    );

    let survivor = Scheduler::start(config.clone()).await;
    let fired = read_topic(
        &config.topics.due,
        3,
        N.max(before + N),
        Duration::from_secs(15),
        Duration::ZERO,
    );
    let mut ids = fire_ids_never_early(&fired);
    ids.dedup();
    assert_eq!(ids.len(), N, "every job fired: nothing lost");
    survivor.stop().await;
}
