//! Time end to end: a preview agrees with what the scheduler then fires; a calendar excludes
//! its days, is counted, and stops excluding once deleted; calendars through the API; bad
//! expressions, policies and calendars rejected at REST (400), over Kafka (DLQ with reason)
//! and in the CLI (exit 4).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sked_core::job::{FireId, JobId};
use sked_e2e::{
    create_topics, eventually, header, header_ms, http, ingest::Ingest, produce, producer,
    read_topic, scheduler::Scheduler, scheduler::metric, test_config, unique,
};

async fn call(method: Method, url: String, body: Value) -> (StatusCode, Value) {
    let resp = http()
        .request(method, url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(ingest: &Ingest, path: &str, body: Value) -> (StatusCode, Value) {
    call(Method::POST, format!("{}{path}", ingest.api()), body).await
}

fn ms(at: &Value) -> i64 {
    DateTime::parse_from_rfc3339(at.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// The next whole second at least `lead` from now.
fn whole_second_after(lead: Duration) -> DateTime<Utc> {
    let t = Utc::now() + TimeDelta::from_std(lead).unwrap();
    DateTime::from_timestamp(t.timestamp() + 1, 0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_preview_of_five_slots_agrees_with_the_fires_the_scheduler_produces() {
    let ns = unique("preview");
    let config = test_config(&ns, &["scheduler.poll_interval=100ms"]);
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;

    let start = whole_second_after(Duration::from_secs(4));
    let (status, preview) = post(
        &ingest,
        "/v1/schedules/preview",
        json!({"cron": "* * * * * *", "timezone": "Asia/Kathmandu",
               "from": start.to_rfc3339(), "n": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["timezone"], "Asia/Kathmandu");
    assert_eq!(preview["description"], "every second, Asia/Kathmandu");
    let slots = preview["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 5);
    assert_eq!(slots[0]["offset"], "+05:45");
    let previewed: Vec<i64> = slots.iter().map(|s| ms(&s["at"])).collect();
    assert_eq!(previewed[0], start.timestamp_millis());

    let (status, body) = post(
        &ingest,
        "/v1/jobs",
        json!({"id": "every-second", "app": "sms", "cron": "* * * * * *",
               "timezone": "Asia/Kathmandu", "start_at": start.to_rfc3339(), "max_runs": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let fired = read_topic(
        &config.topics.due,
        3,
        5,
        Duration::from_secs(30),
        Duration::from_secs(2),
    );
    let mut got: Vec<(i64, String)> = fired
        .iter()
        .map(|m| {
            (
                header_ms(m, "sked-due-at"),
                header(m, "sked-fire-id").unwrap(),
            )
        })
        .collect();
    got.sort();
    let id = JobId::parse("every-second").unwrap();
    let expected: Vec<(i64, String)> = previewed
        .iter()
        .map(|&t| {
            let at = DateTime::from_timestamp_millis(t).unwrap();
            (t, FireId::new(&id, at).to_string())
        })
        .collect();
    assert_eq!(
        got, expected,
        "the fires are the previewed slots, once each"
    );

    // Describe explains the schedule with the same words.
    let (_, job) = ingest.get_job("every-second").await;
    assert_eq!(job["description"], "every second, Asia/Kathmandu");
    scheduler.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_calendar_excludes_its_days_counts_them_and_stops_once_deleted() {
    let ns = unique("calendar");
    let today = Utc::now().date_naive();
    let days: Vec<String> = [-1i64, 0, 1]
        .iter()
        .map(|d| (today + TimeDelta::days(*d)).to_string())
        .collect();
    let config = test_config(
        &ns,
        &[
            "scheduler.poll_interval=100ms",
            // A config calendar: listed, read-only through the API.
            "calendars.weekends.weekdays=[\"sat\", \"sun\"]",
            "calendars.weekends.timezone=\"Europe/Berlin\"",
        ],
    );
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    let api = ingest.api();

    // Calendars through the API.
    let body = json!({"timezone": "UTC", "dates": days, "description": "around today"});
    let (status, created) = call(
        Method::PUT,
        format!("{api}/v1/calendars/around"),
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["source"], "api");
    let (status, _) = call(Method::PUT, format!("{api}/v1/calendars/around"), body).await;
    assert_eq!(status, StatusCode::OK, "a second PUT replaces");
    let (status, list) = call(Method::GET, format!("{api}/v1/calendars"), Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<(&str, &str)> = list["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["source"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("around", "api"), ("weekends", "config")]);
    let (status, err) = call(
        Method::PUT,
        format!("{api}/v1/calendars/weekends"),
        json!({"weekdays": ["mon"]}),
    )
    .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (StatusCode::CONFLICT, &json!("read_only"))
    );
    let (status, err) = call(
        Method::PUT,
        format!("{api}/v1/calendars/bad"),
        json!({"ranges": [{"from": "2026-12-31", "to": "2026-12-01"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["param"], "ranges");

    // The preview marks the excluded slots.
    let (status, preview) = post(
        &ingest,
        "/v1/schedules/preview",
        json!({"cron": "*/2 * * * * *", "calendars": ["around"], "n": 1,
               "from": format!("{}T00:00:00Z", days[2])}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let first = &preview["slots"][0];
    assert_eq!(first["annotations"], json!(["excluded"]));
    assert_eq!(first["calendar"], "around");

    let scheduler = Scheduler::start(config.clone()).await;
    for (id, calendars) in [("held-off", json!(["around"])), ("free", json!([]))] {
        let (status, body) = post(
            &ingest,
            "/v1/jobs",
            json!({"id": id, "app": "sms", "cron": "* * * * * *", "calendars": calendars}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    eventually(Duration::from_secs(20), "3 slots excluded", || async {
        let (_, job) = ingest.get_job("held-off").await;
        (job["counters"]["excluded"].as_u64() >= Some(3)).then_some(())
    })
    .await;
    let (_, job) = ingest.get_job("held-off").await;
    assert_eq!(job["counters"]["fired"], 0, "{job}");
    // The slot history names each excluded slot, newest first, when it was passed over.
    let slots = job["slots"].as_array().unwrap();
    assert!(slots.len() >= 3, "{job}");
    let dues: Vec<chrono::DateTime<chrono::Utc>> = slots
        .iter()
        .map(|s| serde_json::from_value(s["due_at"].clone()).unwrap())
        .collect();
    assert!(
        dues.windows(2).all(|w| w[0] > w[1]),
        "newest first: {dues:?}"
    );
    assert!(
        dues.iter().all(|d| d.timestamp_subsec_millis() == 0),
        "{dues:?}"
    );
    for s in slots {
        assert_eq!(s["outcome"], "excluded", "{s}");
        let due: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(s["due_at"].clone()).unwrap();
        let noted: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(s["noted_at"].clone()).unwrap();
        assert!(noted >= due, "passed over once due: {s}");
    }
    // Under 50, one entry per counted slot (read together, an ack may land between them).
    eventually(
        Duration::from_secs(10),
        "as many slots as counted",
        || async {
            let (_, job) = ingest.get_job("held-off").await;
            let n = job["slots"].as_array()?.len() as u64;
            (job["counters"]["excluded"].as_u64() == Some(n) || n == 50).then_some(())
        },
    )
    .await;
    assert_eq!(job["calendars"], json!(["around"]));
    assert_eq!(
        job["next"],
        json!([]),
        "every slot in reach is excluded: {job}"
    );
    let (_, free) = ingest.get_job("free").await;
    assert!(free["counters"]["fired"].as_u64() >= Some(2), "{free}");
    assert_eq!(free["counters"]["excluded"], 0);
    assert_eq!(free["slots"], json!([]), "{free}");
    let metrics = scheduler.metrics().await;
    assert!(
        metric(&metrics, "sked_scheduler_slots_total{slot=\"excluded\"}") >= 3.0,
        "{metrics}"
    );
    let fires_of_held_off = read_topic(
        &config.topics.due,
        3,
        usize::MAX,
        Duration::from_secs(3),
        Duration::ZERO,
    )
    .iter()
    .filter(|m| header(m, "sked-job-id").as_deref() == Some("held-off"))
    .count();
    assert_eq!(fires_of_held_off, 0, "no excluded slot reached Kafka");

    // Deleted while attached: the job fires again, within the cache's refresh bound.
    let (status, deleted) = call(
        Method::DELETE,
        format!("{api}/v1/calendars/around"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, &deleted["status"]),
        (StatusCode::OK, &json!("deleted"))
    );
    eventually(Duration::from_secs(15), "held-off fires again", || async {
        let (_, job) = ingest.get_job("held-off").await;
        (job["counters"]["fired"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    assert!(
        metric(
            &scheduler.metrics().await,
            "sked_scheduler_calendar_missing_total"
        ) >= 1.0
    );
    scheduler.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_expressions_policies_and_calendars_are_rejected_at_rest_over_kafka_and_in_the_cli() {
    let ns = unique("badtime");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;

    let bad: [(Value, &str, &str); 5] = [
        (json!({"cron": "0 30 25 * * *"}), "invalid_cron", "hour"),
        (
            json!({"cron": "0 0 * * MON#6"}),
            "invalid_cron",
            "day-of-week",
        ),
        (
            json!({"cron": "30 2 * * *", "dst": {"gap": "sideways"}}),
            "invalid_field",
            "dst",
        ),
        (
            json!({"cron": "30 2 * * *", "dom_dow": "xor"}),
            "invalid_field",
            "dom_dow",
        ),
        (
            json!({"cron": "30 2 * * *", "calendars": ["nope"]}),
            "unknown_calendar",
            "nope",
        ),
    ];
    // REST: submit and preview.
    for (fields, code, names) in &bad {
        let mut job = json!({"app": "sms"});
        job.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let (status, err) = post(&ingest, "/v1/jobs", job).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{fields}: {err}");
        assert_eq!(err["error"]["code"], *code, "{fields}: {err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{fields}: {message}");
        let (status, err) = post(&ingest, "/v1/schedules/preview", fields.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "preview {fields}: {err}");
        assert_eq!(err["error"]["code"], *code, "preview {fields}: {err}");
    }
    let (status, err) = post(
        &ingest,
        "/v1/schedules/preview",
        json!({"cron": "* * * * *", "n": 10001}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "invalid_parameter");
    assert_eq!(err["error"]["param"], "n");
    let (status, err) = post(
        &ingest,
        "/v1/schedules/preview",
        json!({"cron": "* * * * *", "from": "2026-01-01T00:00:00Z", "to": "2040-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        (status, &err["error"]["param"]),
        (StatusCode::BAD_REQUEST, &json!("to"))
    );

    // Kafka: each to the DLQ with its reason.
    let p = producer();
    for (i, (fields, _, _)) in bad.iter().enumerate() {
        let mut job = json!({"id": format!("bad-{i}"), "app": "sms"});
        job.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let bytes = serde_json::to_vec(&job).unwrap();
        produce(
            &p,
            &config.topics.ingest,
            Some(0),
            Some(b"k"),
            Some(&bytes),
            &[],
        )
        .await;
    }
    let dead = read_topic(
        &config.topics.dlq,
        1,
        bad.len(),
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| header(m, "sked-reason").unwrap())
        .collect();
    let expected: Vec<&str> = bad.iter().map(|(_, code, _)| *code).collect();
    assert_eq!(reasons, expected);
    for m in &dead {
        assert!(!header(m, "error-message").unwrap().is_empty());
    }

    // CLI, offline: exit 4 and one line naming the field.
    for args in [
        vec!["cron", "preview", "0 30 25 * * *"],
        vec!["cron", "explain", "61 * * * *"],
        vec!["cron", "preview", "* * * * *", "--tz", "Mars/Base"],
    ] {
        let err = sked_cli::run(std::iter::once("sked").chain(args.iter().copied()))
            .await
            .unwrap_err();
        assert_eq!(err.code, 4, "{args:?}: {}", err.line());
        assert!(!err.line().contains('\n'));
    }
    ingest.stop().await;
}
