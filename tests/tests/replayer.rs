//! Replayer scenarios against the real broker and Redis: retries drained back into the due
//! index and fired at their time under the original ids; the DLQ API (list, show, stats);
//! replays published once each, dry runs publishing nothing, the replay cap; a replay killed
//! midway resumed without publishing anything twice; the `sked dlq` CLI.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use rdkafka::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sked_core::{job::JobId, store::Store};
use sked_e2e::{
    Proc, create_topics, header, producer, read_topic,
    replayer::{
        Failure, Record, Replayer, dlq_headers, envelope, free_port, get, post, produce_all,
        replay_and_wait, replayer_config, replayer_sets, retry_headers, wait_replay,
    },
    scheduler::{Scheduler, metric},
    unique,
};

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn letter(f: &Failure<'_>, value: &[u8], partition: Option<i32>) -> Record {
    Record {
        key: Some(f.job_id.as_bytes().to_vec()),
        value: Some(value.to_vec()),
        headers: dlq_headers(f),
        partition,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_fire_at_their_time_under_the_original_ids_and_never_block_each_other() {
    let ns = unique("retry");
    let config = replayer_config(&ns, &[]);
    create_topics(&config, 3).await;
    let replayer = Replayer::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;

    let now = Utc::now();
    let due = now - chrono::Duration::seconds(5);
    let soon = now + chrono::Duration::seconds(1);
    let later = now + chrono::Duration::minutes(10);
    let (soon_env, soon_fire) = envelope("order-soon", "sms", due);
    let (later_env, later_fire) = envelope("order-later", "sms", due);
    let p = producer();
    // The 10-minute retry is produced first, on the same partition: it must not hold up the
    // 1-second one.
    produce_all(
        &p,
        &config.topics.retry,
        &[
            Record {
                key: Some(b"order-later".to_vec()),
                value: Some(later_env.into_bytes()),
                headers: retry_headers("order-later", &later_fire, "sms", due, later, 2),
                partition: Some(0),
            },
            Record {
                key: Some(b"order-soon".to_vec()),
                value: Some(soon_env.into_bytes()),
                headers: retry_headers("order-soon", &soon_fire, "sms", due, soon, 2),
                partition: Some(0),
            },
            Record {
                key: Some(b"junk".to_vec()),
                value: Some(b"not an envelope".to_vec()),
                headers: vec![("sked-job-id".into(), "junk".into())],
                partition: Some(0),
            },
        ],
    )
    .await;

    let fired = read_topic(
        &config.topics.due,
        3,
        1,
        Duration::from_secs(20),
        Duration::from_secs(2),
    );
    let received = Utc::now();
    assert_eq!(fired.len(), 1, "only the 1-second retry fires");
    let f = &fired[0];
    assert_eq!(header(f, "sked-job-id").as_deref(), Some("order-soon"));
    assert_eq!(
        header(f, "sked-fire-id").as_deref(),
        Some(soon_fire.as_str())
    );
    assert_eq!(header(f, "sked-attempt").as_deref(), Some("2"));
    assert_eq!(f.key(), Some(&b"order-soon"[..]));
    let fired_at: i64 = header(f, "sked-fired-at").unwrap().parse().unwrap();
    assert!(
        fired_at >= ms(soon),
        "fired {} ms early",
        ms(soon) - fired_at
    );
    assert!(received.timestamp_millis() >= ms(soon));
    assert!(
        fired_at - ms(soon) < 2000,
        "fired {} ms late",
        fired_at - ms(soon)
    );
    let env: Value = serde_json::from_slice(f.payload().unwrap()).unwrap();
    assert_eq!(env["attempt"], 2);
    assert_eq!(env["job_id"], "order-soon");
    assert_eq!(env["fire_id"], soon_fire.as_str());
    assert_eq!(
        env["payload"].to_string(),
        r#"{"n":12345678901234567890}"#,
        "payload digits intact"
    );

    // The 10-minute retry waits in the due index at its retry time.
    let store = Store::connect(&config.redis).await.unwrap();
    let id = JobId::parse(&format!("{later_fire}~2")).unwrap();
    let record = store
        .get(&id)
        .await
        .unwrap()
        .expect("10-minute retry stored");
    assert_eq!(record.next_due.map(ms), Some(ms(later)));
    assert_eq!(record.spec.retry_of.unwrap().attempt, 2);

    // The junk record went to the DLQ (stage execute) and did not block the partition.
    let dead = read_topic(
        &config.topics.dlq,
        3,
        1,
        Duration::from_secs(10),
        Duration::from_millis(500),
    );
    assert_eq!(dead.len(), 1);
    assert_eq!(header(&dead[0], "sked-stage").as_deref(), Some("execute"));
    assert_eq!(
        header(&dead[0], "sked-reason").as_deref(),
        Some("invalid_json")
    );
    assert_eq!(dead[0].payload(), Some(&b"not an envelope"[..]));
    assert_eq!(
        header(&dead[0], "original-topic").as_deref(),
        Some(config.topics.retry.as_str())
    );

    let text = replayer.metrics().await;
    assert!(
        text.contains(r#"sked_replayer_retries_stored_records_total{outcome="created"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sked_replayer_retries_rejected_records_total{reason="invalid_json"} 1"#),
        "{text}"
    );
    assert_eq!(
        metric(&scheduler.metrics().await, "sked_scheduler_fired_total"),
        1.0
    );
    scheduler.stop().await;
    replayer.stop().await;
}

/// Six dead letters of two apps, stages and reasons, one with a binary value; returns their
/// (partition, offset).
async fn seed_letters(dlq: &str, target: &str) -> Vec<(i32, i64)> {
    let base = DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000).unwrap();
    let at = |s: i64| base + chrono::Duration::seconds(s);
    let f = |job: &'static str, app, stage, reason, message, s| Failure {
        original_topic: target,
        stage,
        reason,
        message,
        at: at(s),
        app,
        job_id: job,
        attempts: 3,
        replay_count: None,
    };
    let records = vec![
        letter(
            &f(
                "a1",
                "sms",
                "execute",
                "handler_failed",
                "HTTP 503 from gateway",
                0,
            ),
            br#"{"n":1}"#,
            Some(0),
        ),
        letter(
            &f(
                "a2",
                "sms",
                "execute",
                "timeout",
                "handler timed out after 30s",
                10,
            ),
            br#"{"n":2}"#,
            Some(1),
        ),
        letter(
            &f(
                "a3",
                "email",
                "execute",
                "handler_failed",
                "SMTP refused",
                20,
            ),
            br#"{"n":3}"#,
            Some(2),
        ),
        letter(
            &f(
                "a4",
                "email",
                "ingest",
                "invalid_cron",
                "bad cron `* *`",
                30,
            ),
            br#"{"app":"email","cron":"* *"}"#,
            Some(0),
        ),
        letter(
            &f(
                "a5",
                "sms",
                "execute",
                "handler_failed",
                "HTTP 503 again",
                40,
            ),
            &[0xff, 0xfe, 0x00, 0x80],
            Some(1),
        ),
        letter(
            &f("a6", "sms", "execute", "timeout", "timed out", 50),
            br#"{"n":6}"#,
            Some(2),
        ),
    ];
    produce_all(&producer(), dlq, &records).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_show_and_stats_filter_the_letters() {
    let ns = unique("dlqapi");
    let config = replayer_config(&ns, &[]);
    create_topics(&config, 3).await;
    let at = seed_letters(&config.topics.dlq, &config.topics.due).await;
    let replayer = Replayer::start(config.clone()).await;
    let api = replayer.api();

    let (status, all) = get(&format!("{api}/v1/dlq")).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["matched"], 6);
    let jobs: Vec<&str> = all["letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["a6", "a5", "a4", "a3", "a2", "a1"], "newest first");

    let (_, sms) = get(&format!("{api}/v1/dlq?app=sms&reason=handler_failed")).await;
    let jobs: Vec<&str> = sms["letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["a5", "a1"]);
    let (_, errs) = get(&format!(
        "{api}/v1/dlq?error=http%20503&stage=execute&limit=1"
    ))
    .await;
    assert_eq!(errs["matched"], 2);
    assert_eq!(errs["letters"].as_array().unwrap().len(), 1);
    assert_eq!(errs["letters"][0]["job_id"], "a5");
    let since = 1_800_000_000_000i64 + 10_000;
    let until = 1_800_000_000_000i64 + 40_000;
    let (_, window) = get(&format!(
        "{api}/v1/dlq?since={since}&until={until}&order=offset"
    ))
    .await;
    assert_eq!(window["matched"], 3, "{window}");
    let (_, by_job) = get(&format!("{api}/v1/dlq?job_id=a4")).await;
    assert_eq!(by_job["letters"][0]["stage"], "ingest");
    assert_eq!(by_job["letters"][0]["reason"], "invalid_cron");

    let (status, bad) = get(&format!("{api}/v1/dlq?stage=run")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["code"], "invalid_field");
    let (status, _) = get(&format!("{api}/v1/dlq?colour=red")).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown filters are refused"
    );

    let (p, o) = at[0];
    let (status, one) = get(&format!("{api}/v1/dlq/{p}/{o}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["job_id"], "a1");
    assert_eq!(one["value"]["text"], r#"{"n":1}"#);
    assert_eq!(one["key"]["text"], "a1");
    assert_eq!(
        one["headers"]["error-message"]["text"],
        "HTTP 503 from gateway"
    );
    assert_eq!(
        one["headers"]["original-topic"]["text"],
        config.topics.due.as_str()
    );
    let (p, o) = at[4];
    let (_, binary) = get(&format!("{api}/v1/dlq/{p}/{o}")).await;
    assert_eq!(binary["value"]["base64"], "//4AgA==");
    let (status, missing) = get(&format!("{api}/v1/dlq/0/999999")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"]["code"], "not_found");

    let (status, stats) = get(&format!("{api}/v1/dlq/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["total"], 6);
    assert_eq!(stats["by_app"], json!({"email": 2, "sms": 4}));
    assert_eq!(
        stats["by_reason"],
        json!({"handler_failed": 3, "invalid_cron": 1, "timeout": 2})
    );
    assert_eq!(stats["by_stage"], json!({"execute": 5, "ingest": 1}));
    let (_, email) = get(&format!("{api}/v1/dlq/stats?app=email")).await;
    assert_eq!(email["total"], 2);
    replayer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_publishes_selected_letters_once_with_replay_headers() {
    let ns = unique("replay");
    let config = replayer_config(&ns, &["replayer.max_replays=2"]);
    create_topics(&config, 3).await;
    let target = config.topics.due.clone();
    seed_letters(&config.topics.dlq, &target).await;
    // Two more sms letters: one replayed once before (may go again), one at the cap.
    let base = Utc::now();
    let replayed = |job, n| Failure {
        original_topic: &target,
        stage: "execute",
        reason: "handler_failed",
        message: "still failing",
        at: base,
        app: "sms",
        job_id: job,
        attempts: 3,
        replay_count: Some(n),
    };
    produce_all(
        &producer(),
        &config.topics.dlq,
        &[
            letter(&replayed("b1", 1), br#"{"n":"b1"}"#, Some(0)),
            letter(&replayed("b2", 2), br#"{"n":"b2"}"#, Some(0)),
        ],
    )
    .await;
    let replayer = Replayer::start(config.clone()).await;
    let api = replayer.api();

    // A dry run counts and publishes nothing.
    let (status, dry) = post(
        &format!("{api}/v1/dlq/replays"),
        &json!({"app": "sms", "dry_run": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["status"], "done");
    assert_eq!(dry["selected"], 5, "{dry}");
    assert_eq!(dry["skipped_max_replays"], 1);
    assert_eq!(dry["published"], 0);

    let done = replay_and_wait(
        &api,
        &json!({"app": "sms", "rate": 0}),
        Duration::from_secs(30),
    )
    .await;
    let id = done["id"].as_str().unwrap().to_owned();
    assert_eq!(done["published"], 5, "{done}");
    assert_eq!(done["skipped_max_replays"], 1);
    assert_eq!(done["by_target"][target.as_str()], 5);

    let out = read_topic(
        &target,
        3,
        5,
        Duration::from_secs(20),
        Duration::from_secs(2),
    );
    assert_eq!(
        out.len(),
        5,
        "each selected letter once; the dry run published nothing"
    );
    let mut jobs: Vec<String> = out
        .iter()
        .map(|m| header(m, "sked-job-id").unwrap())
        .collect();
    jobs.sort();
    assert_eq!(jobs, ["a1", "a2", "a5", "a6", "b1"], "b2 is at the cap");
    for m in &out {
        let job = header(m, "sked-job-id").unwrap();
        assert_eq!(header(m, "sked-attempt").as_deref(), Some("1"));
        let count = if job == "b1" { "2" } else { "1" };
        assert_eq!(header(m, "sked-replay-count").as_deref(), Some(count));
        assert!(
            header(m, "sked-replay-id")
                .unwrap()
                .starts_with(&format!("{id}:"))
        );
        assert!(
            header(m, "sked-replayed-at")
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
        assert_eq!(
            header(m, "traceparent").as_deref(),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        assert_eq!(m.key(), Some(job.as_bytes()), "original key");
    }
    let a5 = out
        .iter()
        .find(|m| header(m, "sked-job-id").as_deref() == Some("a5"))
        .unwrap();
    assert_eq!(
        a5.payload(),
        Some(&[0xff, 0xfe, 0x00, 0x80][..]),
        "original bytes"
    );

    // A target override and a limit: the first letter in DLQ order only.
    let other = format!("{ns}.other");
    sked_core::kafka::topics::ensure(&config.kafka, std::slice::from_ref(&other), 1, 1)
        .await
        .unwrap();
    let done = replay_and_wait(
        &api,
        &json!({"reason": "timeout", "limit": 1, "target_topic": other}),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(done["published"], 1);
    let out = read_topic(
        &other,
        1,
        1,
        Duration::from_secs(20),
        Duration::from_secs(1),
    );
    assert_eq!(out.len(), 1);
    let (status, bad) = post(
        &format!("{api}/v1/dlq/replays"),
        &json!({"target_topic": format!("{ns}.nowhere")}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let (status, _) = get(&format!("{api}/v1/dlq/replays/0000")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let text = replayer.metrics().await;
    assert!(
        text.contains(r#"sked_replayer_dlq_replayed_records_total{outcome="published"} 6"#),
        "{text}"
    );
    replayer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_killed_midway_resumes_and_publishes_each_letter_exactly_once() {
    let ns = unique("replaykill");
    let port = free_port();
    let mut sets = replayer_sets(&ns);
    sets.push(format!("replayer.listen_addr=127.0.0.1:{port}"));
    let config = replayer_config(&ns, &[]);
    create_topics(&config, 3).await;
    let target = config.topics.due.clone();
    let now = Utc::now();
    let jobs: Vec<String> = (0..300).map(|i| format!("k-{i}")).collect();
    let records: Vec<Record> = jobs
        .iter()
        .map(|job| {
            let f = Failure {
                original_topic: &target,
                stage: "execute",
                reason: "handler_failed",
                message: "boom",
                at: now,
                app: "sms",
                job_id: job,
                attempts: 3,
                replay_count: None,
            };
            letter(&f, job.as_bytes(), None)
        })
        .collect();
    produce_all(&producer(), &config.topics.dlq, &records).await;

    let api = format!("http://127.0.0.1:{port}");
    let mut first = Proc::start("sked-replayer", &sets);
    let started = sked_e2e::eventually(Duration::from_secs(20), "replayer up", || async {
        let resp = sked_e2e::http()
            .post(format!("{api}/v1/dlq/replays"))
            .json(&json!({"app": "sms", "rate": 50}))
            .send()
            .await
            .ok()?;
        (resp.status() == StatusCode::ACCEPTED).then_some(())?;
        resp.json::<Value>().await.ok()
    })
    .await;
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["selected"], 300);
    let progress = format!("{api}/v1/dlq/replays/{id}");
    sked_e2e::eventually(Duration::from_secs(20), "a third published", || async {
        let (_, p) = get(&progress).await;
        (p["published"].as_u64()? >= 100).then_some(())
    })
    .await;
    first.kill9();

    let out = read_topic(
        &target,
        3,
        300,
        Duration::from_secs(3),
        Duration::from_millis(0),
    );
    let before = out.len();
    assert!(
        (100..300).contains(&before),
        "killed midway: {before} published"
    );

    let _second = Proc::start("sked-replayer", &sets);
    let done = wait_replay(&api, &id, Duration::from_secs(60)).await;
    assert!(done["resumes"].as_u64().unwrap() >= 1, "{done}");
    assert!(
        done["already_published"].as_u64().unwrap() >= before as u64,
        "{done}"
    );
    assert_eq!(done["published"], 300, "{done}");

    let out = read_topic(
        &target,
        3,
        300,
        Duration::from_secs(30),
        Duration::from_secs(3),
    );
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in &out {
        *counts
            .entry(header(m, "sked-replay-id").unwrap())
            .or_default() += 1;
    }
    assert_eq!(counts.len(), 300, "every selected letter replayed");
    assert!(
        counts.values().all(|n| *n == 1),
        "a letter replayed twice: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(out.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_rate_unlimited_publishes_every_selected_letter() {
    let ns = unique("replayfast");
    let config = replayer_config(&ns, &[]);
    create_topics(&config, 3).await;
    let target = config.topics.due.clone();
    let n = 5000;
    let now = Utc::now();
    let jobs: Vec<String> = (0..n).map(|i| format!("f-{i}")).collect();
    let records: Vec<Record> = jobs
        .iter()
        .map(|job| {
            let f = Failure {
                original_topic: &target,
                stage: "execute",
                reason: "handler_failed",
                message: "boom",
                at: now,
                app: "bulk",
                job_id: job,
                attempts: 3,
                replay_count: None,
            };
            letter(
                &f,
                br#"{"payload":"0123456789012345678901234567890123456789"}"#,
                None,
            )
        })
        .collect();
    produce_all(&producer(), &config.topics.dlq, &records).await;
    let replayer = Replayer::start(config.clone()).await;
    let api = replayer.api();
    let t0 = Instant::now();
    let (status, started) = post(&format!("{api}/v1/dlq/replays"), &json!({"rate": 0})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let selected_in = t0.elapsed();
    let id = started["id"].as_str().unwrap().to_owned();
    let done = wait_replay(&api, &id, Duration::from_secs(120)).await;
    let total = t0.elapsed();
    assert_eq!(done["published"], n);
    // Speed is measured by `sked-bench replay`, not asserted here.
    eprintln!("replayed {n} letters in {total:?} (selection {selected_in:?})");
    replayer.stop().await;
}

/// Runs the built `sked` binary with `args`; returns (exit code, stdout, stderr).
async fn sked(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(sked_e2e::binary("sked"))
        .args(args)
        .env_remove("SKED_API_URL")
        .env_remove("SKED_REPLAYER_URL")
        .env("SKED_TOKEN", sked_e2e::TEST_TOKEN)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sked_dlq_commands_drive_the_replayer() {
    let ns = unique("dlqcli");
    let config = replayer_config(&ns, &[]);
    create_topics(&config, 3).await;
    let at = seed_letters(&config.topics.dlq, &config.topics.due).await;
    let replayer = Replayer::start(config.clone()).await;
    let url = replayer.api();
    let base = ["--replayer", url.as_str(), "dlq"];
    let run = |rest: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(rest);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let call = |rest: &[&str]| {
        let args = run(rest);
        async move { sked(&args.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };

    let (code, out, err) = call(&["stats"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("total: 6\nby app:\n  sms    4\n  email  2\n"),
        "{out}"
    );

    let (code, out, _) = call(&["ls", "--app", "sms", "--reason", "timeout"]).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("AT"), "{out}");
    assert!(lines[1].contains("a6") && lines[2].contains("a2"), "{out}");
    assert_eq!(lines[3], "2 of 2 matching dead letters");
    let (code, out, _) = call(&["--json", "ls", "--stage", "ingest"]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["letters"][0]["job_id"], "a4");

    let (p, o) = at[0];
    let (code, out, _) = call(&["show", &format!("{p}/{o}")]).await;
    assert_eq!(code, 0);
    assert!(out.contains("HTTP 503 from gateway"), "{out}");
    assert!(out.ends_with("value:\n{\"n\":1}\n"), "{out}");
    let (code, _, err) = call(&["show", "0/999999"]).await;
    assert_eq!(code, 3, "{err}");
    assert_eq!(err.trim(), "sked: no dead letter at 0/999999");

    let (code, out, _) = call(&["replay", "--app", "email", "--dry-run"]).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("dry run: would replay 2 dead letters to"),
        "{out}"
    );
    let (code, _, err) = call(&["replay", "--app", "email"]).await;
    assert_eq!(code, 6, "unconfirmed without a terminal: {err}");
    let (code, out, err) = call(&["replay", "--app", "email", "--rate", "0", "--yes"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("done: published 2 of 2 selected"), "{out}");
    let replayed = read_topic(
        &config.topics.due,
        3,
        2,
        Duration::from_secs(20),
        Duration::from_secs(1),
    );
    assert_eq!(replayed.len(), 2);

    // The history, newest first: the replay, then the dry runs (the refused replay counted
    // with one before asking).
    let (code, out, err) = call(&["replays"]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("ID  "), "{out}");
    let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let real = cells(lines[1]);
    assert_eq!(real[2..], ["done", "2", "2", "app=email"], "{out}");
    for dry in &lines[2..4] {
        assert_eq!(
            cells(dry)[2..],
            ["dry", "run", "2", "0", "app=email"],
            "{out}"
        );
    }
    assert_eq!(lines[4], "3 replays");
    let (code, out, _) = call(&["--json", "replays", "--limit", "1"]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["replays"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["replays"][0]["id"].as_str(), Some(real[0].as_str()));
    let (code, _, err) = call(&["replays", "--limit", "0"]).await;
    assert_ne!(code, 0);
    assert_eq!(
        err.trim(),
        "sked: request rejected (invalid_field): limit: must be between 1 and 1000",
        "one readable line"
    );

    let (code, _, err) = call(&["ls", "--since", "yesterday-ish"]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = sked(&["--replayer", "http://127.0.0.1:1", "dlq", "stats"]).await;
    assert_eq!(code, 69, "{err}");
    replayer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_dead_lettered_twice_is_replayed_once() {
    let ns = unique("dup-letter");
    let config = replayer_config(&ns, &[]);
    create_topics(&config, 3).await;
    let target = config.topics.due.clone();
    let failure = |job| Failure {
        original_topic: &target,
        stage: "execute",
        reason: "handler_failed",
        message: "boom",
        at: Utc::now(),
        app: "sms",
        job_id: job,
        attempts: 3,
        replay_count: None,
    };
    // d1's letter twice (its worker died between the letter's ack and the commit), then d2.
    produce_all(
        &producer(),
        &config.topics.dlq,
        &[
            letter(&failure("d1"), br#"{"n":"d1"}"#, Some(0)),
            letter(&failure("d1"), br#"{"n":"d1"}"#, Some(0)),
            letter(&failure("d2"), br#"{"n":"d2"}"#, Some(0)),
        ],
    )
    .await;
    let replayer = Replayer::start(config.clone()).await;
    let api = replayer.api();
    let (_, listed) = get(&format!("{api}/v1/dlq?app=sms")).await;
    assert_eq!(
        listed["letters"].as_array().map(Vec::len),
        Some(3),
        "the DLQ shows what is there: {listed}"
    );

    let done = replay_and_wait(&api, &json!({"app": "sms"}), Duration::from_secs(30)).await;
    assert_eq!(done["selected"], 2, "{done}");
    assert_eq!(done["skipped_duplicates"], 1, "{done}");
    assert_eq!(done["published"], 2, "{done}");
    let out = read_topic(
        &target,
        3,
        2,
        Duration::from_secs(20),
        Duration::from_secs(2),
    );
    let mut jobs: Vec<String> = out
        .iter()
        .map(|m| header(m, "sked-job-id").unwrap())
        .collect();
    jobs.sort();
    assert_eq!(jobs, ["d1", "d2"], "d1 once");
    replayer.stop().await;
}
