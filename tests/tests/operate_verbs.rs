//! Acting on jobs: pause and resume across slots with each misfire policy and two scheduler
//! replicas, pausing a whole app, trigger and backfill fire ids, `PUT` with a stale etag.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use sked_e2e::{
    create_topics, header, header_ms, http, ingest::Ingest, read_topic, scheduler::Scheduler,
    scheduler::put_jobs, test_config, unique,
};

async fn call(method: reqwest::Method, url: String, body: &str) -> (StatusCode, Value) {
    let resp = http()
        .request(method, url)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn post(ingest: &Ingest, path: &str, body: &str) -> (StatusCode, Value) {
    call(
        reqwest::Method::POST,
        format!("{}{path}", ingest.api()),
        body,
    )
    .await
}

/// (due ms, fired ms) of every fire of each job on the due topic so far.
fn fires(
    topic: &str,
    expected: usize,
    wait: Duration,
) -> BTreeMap<String, Vec<(i64, i64, String)>> {
    let mut out: BTreeMap<String, Vec<(i64, i64, String)>> = BTreeMap::new();
    for m in read_topic(topic, 3, expected, wait, Duration::from_secs(1)) {
        out.entry(header(&m, "sked-job-id").unwrap())
            .or_default()
            .push((
                header_ms(&m, "sked-due-at"),
                header_ms(&m, "sked-fired-at"),
                header(&m, "sked-fire-id").unwrap(),
            ));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cron_paused_across_slots_resumes_by_its_misfire_policy_on_two_replicas() {
    let ns = unique("pause");
    let config = test_config(
        &ns,
        &[
            "scheduler.misfire_threshold=1s",
            "scheduler.poll_interval=100ms",
        ],
    );
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let (s1, s2) = (
        Scheduler::start(config.clone()).await,
        Scheduler::start(config.clone()).await,
    );
    for (id, misfire) in [
        ("c-once", "fire_once"),
        ("c-skip", "skip"),
        ("c-all", "fire_all"),
    ] {
        let body =
            format!(r#"{{"id":"{id}","app":"sms","cron":"*/2 * * * * *","misfire":"{misfire}"}}"#);
        let (status, _) = post(&ingest, "/v1/jobs", &body).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // Let each fire at least once, then pause all three for more than three slots.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let paused_at = Utc::now().timestamp_millis();
    for id in ["c-once", "c-skip", "c-all"] {
        let (status, body) = post(
            &ingest,
            &format!("/v1/jobs/{id}/pause"),
            r#"{"note":"deploy"}"#,
        )
        .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("paused")),
            "{body}"
        );
        let (status, again) = post(&ingest, &format!("/v1/jobs/{id}/pause"), "").await;
        assert_eq!(
            (status, again["status"].as_str()),
            (StatusCode::OK, Some("already_paused"))
        );
    }
    let (_, d) = call(
        reqwest::Method::GET,
        format!("{}/v1/jobs/c-skip", ingest.api()),
        "",
    )
    .await;
    assert_eq!(d["state"], "paused");
    assert_eq!(d["paused"]["note"], "deploy");
    tokio::time::sleep(Duration::from_millis(6000)).await;
    // Resume 1.5 s after a slot: the latest passed slot is late by more than the 1 s
    // threshold, so every slot of the pause is missed and none is on time (an on-time slot
    // would stand for the missed ones under fire_once).
    let into_slot = Utc::now().timestamp_millis().rem_euclid(2000);
    tokio::time::sleep(Duration::from_millis((3500 - into_slot) as u64 % 2000)).await;
    let resumed_at = Utc::now().timestamp_millis();
    for id in ["c-once", "c-skip", "c-all"] {
        let (status, body) = post(&ingest, &format!("/v1/jobs/{id}/resume"), "").await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("resumed")),
            "{body}"
        );
        let (_, again) = post(&ingest, &format!("/v1/jobs/{id}/resume"), "").await;
        assert_eq!(again["status"], "not_paused");
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let all = fires(&config.topics.due, 1_000_000, Duration::from_secs(3));

    // A fire already claimed when the pause landed may go out just after it; none later.
    for (id, fs) in &all {
        let during: Vec<_> = fs
            .iter()
            .filter(|(_, fired, _)| *fired > paused_at + 300 && *fired < resumed_at)
            .collect();
        assert!(during.is_empty(), "{id} fired while paused: {during:?}");
        let mut ids: Vec<&String> = fs.iter().map(|f| &f.2).collect();
        ids.dedup();
        assert_eq!(ids.len(), fs.len(), "{id}: a fire id twice on two replicas");
    }
    // Slots that passed while paused, late by more than the threshold at resume.
    let missed = |id: &str| -> Vec<i64> {
        all[id]
            .iter()
            .filter(|(due, fired, _)| {
                *due > paused_at + 300 && *due < resumed_at - 1_000 && *fired >= resumed_at
            })
            .map(|f| f.0)
            .collect()
    };
    let slots = (paused_at + 300..resumed_at - 1_000)
        .filter(|ms| ms % 2000 == 0)
        .count();
    assert!(slots >= 2, "the pause spans slots: {slots}");
    assert_eq!(
        missed("c-skip"),
        Vec::<i64>::new(),
        "skip fires none of them"
    );
    assert_eq!(
        missed("c-once").len(),
        1,
        "fire_once: one fire for them: {:?}",
        missed("c-once")
    );
    assert_eq!(
        missed("c-all").len(),
        slots,
        "fire_all: every one: {:?}",
        missed("c-all")
    );
    // Each goes on firing after the resume, and counts what it missed.
    for id in ["c-once", "c-skip", "c-all"] {
        assert!(
            all[id].iter().any(|f| f.1 > resumed_at + 500),
            "{id} fires again"
        );
        let (_, d) = call(
            reqwest::Method::GET,
            format!("{}/v1/jobs/{id}?next=3", ingest.api()),
            "",
        )
        .await;
        assert_eq!(d["state"], "scheduled", "{d}");
        assert_eq!(d["next"].as_array().unwrap().len(), 3, "{d}");
        let c = &d["counters"];
        assert!(c["fired"].as_u64().unwrap() >= 3, "{id}: {c}");
        assert!(
            c["missed"].as_u64().unwrap() + c["skipped"].as_u64().unwrap() >= 1,
            "{id}: missed slots are counted: {c}"
        );
        let h = d["history"].as_array().unwrap();
        assert!(!h.is_empty(), "{d}");
        assert_eq!(h[0]["origin"], "schedule");
        // The slot history names the slots of the pause that did not fire: all of them for
        // skip, all but the one fired for fire_once, none for fire_all.
        let skipped: Vec<i64> = d["slots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["outcome"] == "skipped")
            .map(|s| {
                serde_json::from_value::<chrono::DateTime<Utc>>(s["due_at"].clone())
                    .unwrap()
                    .timestamp_millis()
            })
            .filter(|due| *due > paused_at + 300 && *due < resumed_at - 1_000)
            .collect();
        let fired: Vec<i64> = all[id].iter().map(|f| f.0).collect();
        assert!(
            skipped.iter().all(|s| !fired.contains(s)),
            "{id}: a skipped slot never fired: {skipped:?}"
        );
        let want = match id {
            "c-skip" => slots,
            "c-once" => slots - 1,
            _ => 0,
        };
        assert_eq!(skipped.len(), want, "{id}: {}", d["slots"]);
    }
    s1.stop().await;
    s2.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pausing_an_app_holds_all_its_jobs_and_no_other() {
    let ns = unique("apppause");
    let config = test_config(&ns, &["scheduler.poll_interval=100ms"]);
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let (s1, s2) = (
        Scheduler::start(config.clone()).await,
        Scheduler::start(config.clone()).await,
    );
    let (status, body) = post(&ingest, "/v1/apps/sms/pause", r#"{"note":"provider down"}"#).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("paused")),
        "{body}"
    );
    let (_, again) = post(&ingest, "/v1/apps/sms/pause", "").await;
    assert_eq!(again["status"], "already_paused");
    for i in 0..20 {
        for app in ["sms", "mail"] {
            let body = format!(r#"{{"id":"{app}-{i}","app":"{app}","delay":"200ms"}}"#);
            assert_eq!(
                post(&ingest, "/v1/jobs", &body).await.0,
                StatusCode::CREATED
            );
        }
    }
    let body = r#"{"id":"sms-every","app":"sms","every":"1s"}"#;
    assert_eq!(post(&ingest, "/v1/jobs", body).await.0, StatusCode::CREATED);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = fires(&config.topics.due, 20, Duration::from_secs(5));
    assert_eq!(
        before.keys().filter(|k| k.starts_with("mail-")).count(),
        20,
        "other apps fire"
    );
    assert!(
        before.keys().all(|k| !k.starts_with("sms")),
        "{:?}",
        before.keys()
    );
    let (_, held) = call(
        reqwest::Method::GET,
        format!("{}/v1/jobs?state=held&app=sms&limit=100", ingest.api()),
        "",
    )
    .await;
    assert_eq!(held["jobs"].as_array().unwrap().len(), 21, "{held}");
    let (_, d) = call(
        reqwest::Method::GET,
        format!("{}/v1/jobs/sms-3", ingest.api()),
        "",
    )
    .await;
    assert_eq!(d["state"], "held");
    assert_eq!(d["paused"]["scope"], "app");
    assert_eq!(d["paused"]["note"], "provider down");
    let (_, pauses) = call(
        reqwest::Method::GET,
        format!("{}/v1/pauses", ingest.api()),
        "",
    )
    .await;
    assert_eq!(pauses["pauses"][0]["name"], "sms");

    let (status, body) = post(&ingest, "/v1/apps/sms/resume", "").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("resumed"))
    );
    let after = fires(&config.topics.due, 41, Duration::from_secs(15));
    assert_eq!(
        after
            .keys()
            .filter(|k| k.starts_with("sms-") && *k != "sms-every")
            .count(),
        20
    );
    assert!(after.contains_key("sms-every"), "the recurring job goes on");
    for (id, fs) in &after {
        if id.starts_with("sms-") && id != "sms-every" {
            assert_eq!(fs.len(), 1, "{id} fired once");
        }
    }
    s1.stop().await;
    s2.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trigger_and_backfill_fire_exactly_the_expected_fire_ids_once_when_sent_twice() {
    let ns = unique("trigger");
    let config = test_config(&ns, &["scheduler.poll_interval=100ms"]);
    create_topics(&config, 3).await;
    // A minutely cron whose first slot was 5 minutes ago: the scheduler skips what it missed.
    let now = Utc::now();
    let first = DateTime::<Utc>::from_timestamp(now.timestamp() / 60 * 60 - 300, 0).unwrap();
    put_jobs(
        &config,
        &[(
            r#"{"id":"nightly","app":"sms","cron":"0 * * * * *","misfire":"skip"}"#.into(),
            Some(first),
        )],
        now,
    )
    .await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    sked_e2e::eventually(
        Duration::from_secs(10),
        "the missed slots planned",
        || async {
            let (_, d) = call(
                reqwest::Method::GET,
                format!("{}/v1/jobs/nightly", ingest.api()),
                "",
            )
            .await;
            (d["counters"]["skipped"].as_u64().unwrap_or(0) > 0).then_some(())
        },
    )
    .await;

    let (status, t1) = post(&ingest, "/v1/jobs/nightly/trigger", r#"{"key":"k1"}"#).await;
    assert_eq!(
        (status, t1["status"].as_str()),
        (StatusCode::OK, Some("triggered")),
        "{t1}"
    );
    let (_, t2) = post(&ingest, "/v1/jobs/nightly/trigger", r#"{"key":"k1"}"#).await;
    assert_eq!(t2["status"], "duplicate");
    assert_eq!(
        t1["fire_ids"], t2["fire_ids"],
        "the same fire id both times"
    );
    let trigger_fire = t1["fire_ids"][0].as_str().unwrap().to_owned();

    // Backfill the first four skipped slots.
    let to = first + chrono::Duration::minutes(4);
    let body = format!(
        r#"{{"from":"{}","to":"{}"}}"#,
        first.to_rfc3339(),
        to.to_rfc3339()
    );
    let (status, b1) = post(&ingest, "/v1/jobs/nightly/backfill", &body).await;
    assert_eq!(status, StatusCode::OK, "{b1}");
    let expected: Vec<String> = (0..4)
        .map(|k| {
            format!(
                "nightly@{}",
                (first + chrono::Duration::minutes(k)).timestamp_millis()
            )
        })
        .collect();
    let got: Vec<String> = b1["fire_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    let (_, b2) = post(&ingest, "/v1/jobs/nightly/backfill", &body).await;
    assert!(
        b2["fire_ids"].as_array().is_none_or(|a| a.is_empty()),
        "the second backfill finds them fired: {b2}"
    );
    // A future range is refused.
    let future = format!(
        r#"{{"from":"{}","to":"2099-01-01T00:00:00Z"}}"#,
        first.to_rfc3339()
    );
    assert_eq!(
        post(&ingest, "/v1/jobs/nightly/backfill", &future).await.0,
        StatusCode::BAD_REQUEST
    );

    let fired = fires(&config.topics.due, 5, Duration::from_secs(15));
    let ids: Vec<&String> = fired["nightly"].iter().map(|f| &f.2).collect();
    for want in expected.iter().chain([&trigger_fire]) {
        assert_eq!(
            ids.iter().filter(|i| **i == want).count(),
            1,
            "{want} once in {ids:?}"
        );
    }
    // The fire jobs behind triggers and backfills are not listed as jobs of their own.
    let all = "scheduled,paused,held,firing,dispatched,running,succeeded,retrying,dead,cancelled";
    let (_, listed) = call(
        reqwest::Method::GET,
        format!("{}/v1/jobs?state={all}", ingest.api()),
        "",
    )
    .await;
    let ids: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["nightly"], "{listed}");
    let (_, d) = call(
        reqwest::Method::GET,
        format!("{}/v1/jobs/nightly", ingest.api()),
        "",
    )
    .await;
    assert_eq!(d["counters"]["triggered"], 1, "{d}");
    assert_eq!(d["counters"]["backfilled"], 4, "{d}");
    // The schedule did not move.
    let next = DateTime::parse_from_rfc3339(d["next_due"].as_str().unwrap()).unwrap();
    assert_eq!(next.timestamp() % 60, 0, "{d}");
    scheduler.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_a_stale_etag_gets_412_and_changes_nothing() {
    let ns = unique("etag");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config).await;
    let url = format!("{}/v1/jobs/e-1", ingest.api());
    let v1 = r#"{"id":"e-1","app":"sms","run_at":"2031-01-01T00:00:00Z","payload":{"v":1}}"#;
    assert_eq!(post(&ingest, "/v1/jobs", v1).await.0, StatusCode::CREATED);
    let (_, d) = call(reqwest::Method::GET, url.clone(), "").await;
    let etag = d["etag"].as_str().unwrap().to_owned();

    let put = |body: &'static str, etag: Option<String>| {
        let url = url.clone();
        async move {
            let mut req = http().put(url).body(body);
            if let Some(e) = etag {
                req = req.header("If-Match", format!("\"{e}\""));
            }
            let r = req.send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let v2 = r#"{"id":"e-1","app":"sms","run_at":"2031-02-01T00:00:00Z","payload":{"v":2}}"#;
    let v3 = r#"{"id":"e-1","app":"sms","run_at":"2031-03-01T00:00:00Z","payload":{"v":3}}"#;
    let (status, body) = put(v2, None).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{body}");
    let (status, body) = put(v2, Some(etag.clone())).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("updated")),
        "{body}"
    );
    let (status, body) = put(v3, Some(etag)).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["error"]["code"], "precondition_failed");
    let (_, d) = call(reqwest::Method::GET, url.clone(), "").await;
    assert_eq!(d["next_due"], "2031-02-01T00:00:00Z", "v2 stays: {d}");
    assert_eq!(d["job"]["payload"]["v"], 2);
    // Another job's id in the body is refused.
    let other = r#"{"id":"e-2","app":"sms","delay":"1h"}"#;
    let (status, _) = put(other, Some(d["etag"].as_str().unwrap().to_owned())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Reschedule a one-shot; sent twice, same answer.
    for _ in 0..2 {
        let (status, body) = post(
            &ingest,
            "/v1/jobs/e-1/reschedule",
            r#"{"run_at":"2032-01-01T00:00:00Z"}"#,
        )
        .await;
        assert_eq!(
            (status, body["due_at"].as_str()),
            (StatusCode::OK, Some("2032-01-01T00:00:00Z")),
            "{body}"
        );
    }
    let (_, d) = call(reqwest::Method::GET, url, "").await;
    assert_eq!(d["next_due"], "2032-01-01T00:00:00Z");
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_describes_pauses_and_bulk_cancels_against_the_real_service() {
    let ns = unique("cli");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config).await;
    let api = ingest.api();
    for i in 0..3 {
        let body = format!(
            r#"{{"id":"cli-{i}","app":"sms","tenant":"acme","labels":{{"team":"pay"}},"delay":"1h","payload":{{"n":{i}}}}}"#
        );
        assert_eq!(
            post(&ingest, "/v1/jobs", &body).await.0,
            StatusCode::CREATED
        );
    }
    let cli = |args: &[&str]| {
        let mut argv = vec![
            "sked",
            "--token",
            sked_e2e::TEST_TOKEN,
            "--api",
            api.as_str(),
        ];
        argv.extend_from_slice(args);
        let argv: Vec<String> = argv.into_iter().map(str::to_owned).collect();
        async move { sked_cli::run(argv).await }
    };
    let table = cli(&["job", "ls", "--label", "team=pay"]).await.unwrap();
    for i in 0..3 {
        assert!(table.contains(&format!("cli-{i}")), "{table}");
    }
    assert!(table.contains("acme"), "{table}");
    let found = cli(&["--json", "job", "ls", "--payload", r#""n":1"#, "--all"])
        .await
        .unwrap();
    assert!(
        found.contains(r#""cli-1""#)
            && !found.contains(r#""cli-0""#)
            && !found.contains(r#""cli-2""#),
        "{found}"
    );
    let described = cli(&["job", "describe", "cli-0"]).await.unwrap();
    assert!(described.contains("scheduled"), "{described}");
    cli(&["job", "pause", "cli-0", "--note", "cli test"])
        .await
        .unwrap();
    let paused = cli(&["--json", "job", "ls", "--state", "paused"])
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&paused).unwrap();
    assert_eq!(v["jobs"][0]["id"], "cli-0", "{paused}");
    let err = cli(&["job", "ls", "--label", "noequals"])
        .await
        .unwrap_err();
    assert_eq!(err.code, 2, "usage: {err}");
    let err = cli(&["job", "describe", "nope"]).await.unwrap_err();
    assert_eq!(err.code, 3, "not found: {err}");
    let dry = cli(&[
        "ops",
        "create",
        "--action",
        "cancel",
        "--selector",
        "label=team=pay",
        "--dry-run",
        "--wait",
    ])
    .await
    .unwrap();
    assert!(dry.contains("would act on 3 jobs"), "{dry}");
    let done = cli(&[
        "ops",
        "create",
        "--action",
        "cancel",
        "--selector",
        "label=team=pay",
        "--yes",
        "--wait",
    ])
    .await
    .unwrap();
    assert!(done.contains("succeeded"), "{done}");
    let left: Value = serde_json::from_str(
        &cli(&["--json", "job", "ls", "--label", "team=pay"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(left["jobs"].as_array().unwrap().len(), 0, "{left}");
    ingest.stop().await;
}
