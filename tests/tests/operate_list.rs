//! Finding jobs: `GET /v1/jobs` with every filter, paging under churn, `GET /v1/stats`, and
//! the JSON errors of bad input.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use sked_core::store::{Op, Store};
use sked_e2e::{create_topics, http, ingest::Ingest, scheduler::Scheduler, test_config, unique};

async fn get(ingest: &Ingest, path_and_query: &str) -> (StatusCode, Value) {
    let resp = http()
        .get(format!("{}{path_and_query}", ingest.api()))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path_and_query}: {status} {text:?} is not JSON: {e}"));
    (status, body)
}

/// Every id a filter lists, following the cursor to the end; fails on a repeat.
async fn list_all(ingest: &Ingest, query: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = format!("/v1/jobs?limit={limit}");
        if !query.is_empty() {
            q.push('&');
            q.push_str(query);
        }
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(ingest, &q).await;
        assert_eq!(status, StatusCode::OK, "{q}: {page}");
        for job in page["jobs"].as_array().unwrap() {
            let id = job["id"].as_str().unwrap().to_owned();
            assert!(seen.insert(id.clone()), "{id} listed twice ({query})");
            out.push(id);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// (app, tenant, batch, is cron) of a corpus job.
type Attrs = (usize, usize, usize, bool);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The request of job `i` of the listing corpus: 10 apps, 20 tenants, 100 batch labels, one
/// job in ten a cron, due from tomorrow on (nothing fires during the test). Several share a
/// due time, so the order's tie-break on ids is exercised.
/// A time field of a listed job, parsed; `None` when it is absent.
fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|t| {
        DateTime::parse_from_rfc3339(t)
            .unwrap_or_else(|e| panic!("{t:?} is not RFC 3339: {e}"))
            .with_timezone(&Utc)
    })
}

fn corpus_job(i: usize, base: DateTime<Utc>) -> String {
    let (app, tenant, batch) = (i % 10, i % 20, i % 100);
    let common = format!(
        r#""id":"job-{i:05}","app":"a{app}","tenant":"t{tenant}","labels":{{"batch":"b{batch}"}}"#
    );
    if i % 10 == 9 {
        format!(
            r#"{{{common},"cron":"0 {} 3 * * *","timezone":"UTC"}}"#,
            i % 60
        )
    } else {
        let at = base + chrono::Duration::seconds((i / 3) as i64);
        format!(r#"{{{common},"run_at":"{}"}}"#, rfc3339(at))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_filters_and_pages_without_skips_or_repeats_while_others_churn() {
    let ns = unique("list");
    let config = test_config(&ns, &["scheduler.poll_interval=200ms"]);
    create_topics(&config, 3).await;
    let store = Store::connect(&config.redis).await.unwrap();
    let now = Utc::now();
    let base = now + chrono::Duration::days(1);
    let mut ops = Vec::new();
    let mut expect: BTreeMap<String, Attrs> = BTreeMap::new();
    let limits = sked_core::request::Limits::default();
    for i in 0..10_000 {
        let json = corpus_job(i, base);
        let spec = sked_core::request::parse(
            json.as_bytes(),
            &limits,
            &sked_core::request::Origin::new(now),
        )
        .unwrap();
        expect.insert(spec.id.to_string(), (i % 10, i % 20, i % 100, i % 10 == 9));
        ops.push(Op::insert(spec, json.as_bytes()));
    }
    for chunk in ops.chunks(2000) {
        store.apply(chunk).await.unwrap();
    }
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;

    // Churn: 1,000 other jobs inserted (due at once: the scheduler fires them) and cancelled.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (api, stop) = (ingest.api(), stop.clone());
        tokio::spawn(async move {
            let client = http();
            let mut n = 0;
            while n < 1000 && !stop.load(Ordering::SeqCst) {
                let id = format!("churn-{n}");
                let body = if n % 2 == 0 {
                    format!(r#"{{"id":"{id}","app":"a3","tenant":"t3","delay":"50ms"}}"#)
                } else {
                    format!(
                        r#"{{"id":"{id}","app":"a3","tenant":"t3","labels":{{"batch":"b3"}},"delay":"1h"}}"#
                    )
                };
                let r = client
                    .post(format!("{api}/v1/jobs"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                if n % 2 == 1 {
                    let r = client
                        .delete(format!("{api}/v1/jobs/{id}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::OK);
                }
                n += 1;
            }
            n
        })
    };

    // Unfiltered, in small pages while the churn runs: every corpus job exactly once.
    let all = list_all(&ingest, "", 97).await;
    let corpus: BTreeSet<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|id| id.starts_with("job-"))
        .collect();
    assert_eq!(
        corpus.len(),
        10_000,
        "every job that existed throughout, once"
    );
    // In due order, ids breaking ties.
    let (status, page) = get(&ingest, "/v1/jobs?limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    // As times, not strings: a whole second is written without a fraction ("43Z"), which
    // sorts after "43.055Z" as text.
    let order: Vec<(Option<DateTime<Utc>>, String)> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                time_of(&j["next_due"]),
                j["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "ordered by next due, then id");

    // Each filter, and combinations, while the churn goes on.
    let count = |f: &dyn Fn(&Attrs) -> bool| expect.values().filter(|v| f(v)).count();
    let corpus_of = |ids: Vec<String>| ids.into_iter().filter(|i| i.starts_with("job-")).count();
    assert_eq!(
        corpus_of(list_all(&ingest, "app=a3", 250).await),
        count(&|v| v.0 == 3)
    );
    assert_eq!(
        corpus_of(list_all(&ingest, "tenant=t7", 100).await),
        count(&|v| v.1 == 7)
    );
    assert_eq!(
        corpus_of(list_all(&ingest, "label=batch%3Db42", 30).await),
        count(&|v| v.2 == 42)
    );
    assert_eq!(
        corpus_of(list_all(&ingest, "app=a3&tenant=t3&label=batch%3Db3", 7).await),
        count(&|v| v.0 == 3 && v.1 == 3 && v.2 == 3)
    );
    assert_eq!(
        corpus_of(list_all(&ingest, "kind=cron", 500).await),
        count(&|v| v.3)
    );
    assert_eq!(
        corpus_of(list_all(&ingest, "kind=once&app=a1", 500).await),
        count(&|v| !v.3 && v.0 == 1)
    );
    // A due range: the first 300 one-shots are due in its first 100 seconds.
    let range = format!(
        "due_after={}&due_before={}",
        urlencode(&rfc3339(base)),
        urlencode(&rfc3339(base + chrono::Duration::seconds(100)))
    );
    let in_range = list_all(&ingest, &range, 64).await;
    assert_eq!(
        in_range.len(),
        (0..300).filter(|i| i % 10 != 9).count(),
        "{in_range:?}"
    );

    // By creation, while the churn goes on: every corpus job once, in the order stored (the
    // corpus went in batch by batch before the churn began), each with its creation time.
    let by_created = list_all(&ingest, "order=created", 113).await;
    let corpus_created: Vec<&String> = by_created
        .iter()
        .filter(|i| i.starts_with("job-"))
        .collect();
    assert_eq!(corpus_created.len(), 10_000, "every job once by creation");
    let (status, page) = get(&ingest, "/v1/jobs?order=created&limit=1000").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let created: Vec<(Option<DateTime<Utc>>, String)> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let at = time_of(&j["created_at"]);
            assert!(at.is_some(), "a creation time: {j}");
            (at, j["id"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut sorted = created.clone();
    sorted.sort();
    assert_eq!(created, sorted, "ordered by creation, then id");
    assert!(
        page["jobs"][0]["next_due"].is_string(),
        "a pending job listed by creation shows its next due: {}",
        page["jobs"][0]
    );
    assert_eq!(
        corpus_of(list_all(&ingest, "order=created&app=a3&kind=cron", 50).await),
        count(&|v| v.0 == 3 && v.3)
    );

    let churned = churn.await.unwrap();
    assert_eq!(churned, 1000);
    stop.store(true, Ordering::SeqCst);

    // Paused and cancelled jobs are found by state.
    for i in 0..10 {
        let r = http()
            .post(format!("{}/v1/jobs/job-{i:05}/pause", ingest.api()))
            .body(r#"{"note":"maintenance"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let paused = list_all(&ingest, "state=paused", 4).await;
    assert_eq!(paused.len(), 10, "{paused:?}");
    let (_, page) = get(&ingest, "/v1/jobs?state=paused&limit=1").await;
    assert_eq!(page["jobs"][0]["paused"]["note"], "maintenance");
    assert_eq!(page["jobs"][0]["state"], "paused");
    let cancelled = list_all(&ingest, "state=cancelled&app=a3", 100).await;
    assert_eq!(
        cancelled.iter().filter(|i| i.starts_with("churn-")).count(),
        500
    );
    // Fired churn jobs are dispatched (no worker runs here) and leave the pending lists.
    sked_e2e::eventually(Duration::from_secs(20), "churn fired", || async {
        let left = list_all(&ingest, "app=a3", 1000).await;
        (left.iter().all(|i| i.starts_with("job-"))).then_some(())
    })
    .await;
    let dispatched = list_all(&ingest, "state=dispatched", 500).await;
    assert_eq!(
        dispatched
            .iter()
            .filter(|i| i.starts_with("churn-"))
            .count(),
        500
    );
    // Finished jobs are listed by creation too, in their finished states.
    let finished = list_all(
        &ingest,
        "order=created&state=cancelled,dispatched&app=a3",
        300,
    )
    .await;
    assert_eq!(
        finished.iter().filter(|i| i.starts_with("churn-")).count(),
        1000,
        "{finished:?}"
    );

    // An update that moves a job to another app and tenant moves its counts.
    let r = http()
        .post(format!("{}/v1/jobs", ingest.api()))
        .body(format!(
            r#"{{"id":"job-00013","app":"a4","tenant":"t14","run_at":"{}"}}"#,
            rfc3339(base + chrono::Duration::hours(2))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "an update");

    // Counts by state, app and tenant.
    let (status, stats) = get(&ingest, "/v1/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["pending"], 10_000, "{stats}");
    assert_eq!(stats["by_state"]["paused"], 10);
    assert_eq!(stats["by_app"]["a3"], 999, "{stats}");
    assert_eq!(stats["by_app"]["a4"], 1001, "{stats}");
    assert_eq!(stats["by_tenant"]["t13"], 499, "{stats}");
    assert_eq!(stats["by_tenant"]["t14"], 501, "{stats}");
    assert_eq!(stats["by_tenant"]["t7"], 500);
    assert_eq!(stats["by_state"]["finished"], 1000);
    let sum = |m: &Value| {
        m.as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum(&stats["by_app"]), 10_000, "{stats}");

    scheduler.stop().await;
    ingest.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_400_with_the_json_error_naming_the_parameter() {
    let ns = unique("badinput");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config).await;
    for (query, param) in [
        ("/v1/jobs?colour=red", "colour"),
        ("/v1/jobs?cursor=notacursor", "cursor"),
        ("/v1/jobs?label=noequals", "label"),
        ("/v1/jobs?limit=0", "limit"),
        ("/v1/jobs?limit=1001", "limit"),
        ("/v1/jobs?state=sleeping", "state"),
        ("/v1/jobs?kind=hourly", "kind"),
        ("/v1/jobs?due_after=tomorrow", "due_after"),
        (
            "/v1/jobs?order=created&due_after=2030-01-01T00:00:00Z",
            "order",
        ),
        ("/v1/jobs/x?next=1001", "next"),
    ] {
        let (status, body) = get(&ingest, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["param"], param, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 5,
            "{body}"
        );
    }
    // A cursor of another filter is refused, not misread.
    let (_, page) = get(&ingest, "/v1/jobs?limit=1").await;
    assert!(page["next_cursor"].is_null(), "empty installation: {page}");
    // 404, 405 and 413 are JSON too.
    let (status, body) = get(&ingest, "/v1/nothing").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let r = http()
        .patch(format!("{}/v1/jobs", ingest.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let big = format!(
        r#"{{"app":"a","delay":"1s","payload":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    let r = http()
        .post(format!("{}/v1/jobs", ingest.api()))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Verbs: bad bodies and unknown jobs.
    let r = http()
        .post(format!("{}/v1/jobs/none/pause", ingest.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http()
        .post(format!("{}/v1/jobs/none/backfill", ingest.api()))
        .body(r#"{"from":"yesterday"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json", "{body}");
    let r = http()
        .post(format!("{}/v1/tenants/not%20ok/pause", ingest.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The OpenAPI document is served.
    let (status, doc) = get(&ingest, "/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"]["/v1/jobs"].is_object());
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_whose_job_is_gone_neither_skips_nor_repeats() {
    let ns = unique("cursorgone");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config).await;
    // 60 jobs, many sharing a due time, so the read after a vanished cursor job starts inside
    // a run of equal scores.
    for i in 0..60 {
        let body = format!(
            r#"{{"id":"g-{i:02}","app":"sms","run_at":"2031-01-01T00:00:0{}Z"}}"#,
            i % 3
        );
        let r = http()
            .post(format!("{}/v1/jobs", ingest.api()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut cancelled = Vec::new();
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/jobs?app=sms&limit=7&cursor={c}"),
            None => "/v1/jobs?app=sms&limit=7".to_owned(),
        };
        let (status, page) = get(&ingest, &q).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let ids: Vec<String> = page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect();
        // The job the cursor points at goes away before the next page is read.
        if let Some(last) = ids.last() {
            let r = http()
                .delete(format!("{}/v1/jobs/{last}", ingest.api()))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            cancelled.push(last.clone());
        }
        seen.extend(ids);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut unique_ids = seen.clone();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!(unique_ids.len(), seen.len(), "a job listed twice: {seen:?}");
    assert_eq!(
        seen.len(),
        60,
        "every job once, none skipped: {seen:?} (cancelled {cancelled:?})"
    );
    ingest.stop().await;
}

/// Every id of `kind` the store lists (pages of 7), straight from the store.
async fn store_kind(store: &Store, kind: sked_core::store::list::Kind) -> BTreeSet<String> {
    let filter = sked_core::store::list::Filter {
        kind: Some(kind),
        ..Default::default()
    };
    let (mut out, mut cursor) = (BTreeSet::new(), None);
    loop {
        let page = store.list(&filter, cursor.as_ref(), 7).await.unwrap();
        for job in page.jobs {
            assert!(out.insert(job.record.spec.id.to_string()), "listed twice");
        }
        match page.next {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// Entries of the recurring index, all shards.
async fn recurring_entries(store: &Store) -> u64 {
    let mut conn = store.connection();
    let mut n = 0;
    for s in 0..store.keys().shards() {
        let key = store.keys().index(
            sked_core::job::Shard(s),
            &sked_core::store::Index::Recurring,
        );
        n += redis::cmd("ZCARD")
            .arg(key)
            .query_async::<u64>(&mut conn)
            .await
            .unwrap();
    }
    n
}

/// What a store written by a version without the recurring index looks like: no index, no
/// marker.
async fn forget_recurring_index(store: &Store) {
    let mut conn = store.connection();
    for s in 0..store.keys().shards() {
        let shard = sked_core::job::Shard(s);
        let () = redis::cmd("DEL")
            .arg(
                store
                    .keys()
                    .index(shard, &sked_core::store::Index::Recurring),
            )
            .arg(store.keys().recurring_ready(shard))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_jobs_outside_the_recurring_index_are_listed_by_kind_before_and_after_its_backfill()
 {
    use sked_core::store::list::Kind;
    let ns = unique("recur");
    let config = test_config(&ns, &[]);
    let store = Store::connect(&config.redis).await.unwrap();
    let now = Utc::now();
    let limits = sked_core::request::Limits::default();
    let origin = sked_core::request::Origin::new(now);
    let (mut ops, mut crons, mut everies) = (Vec::new(), BTreeSet::new(), BTreeSet::new());
    // 300 one-shots in two days, 60 crons on 1 January, 40 every-hour jobs (due first), 10
    // of them of an app that is paused.
    for i in 0..400 {
        let json = if i < 300 {
            let at = now + chrono::Duration::days(2) + chrono::Duration::seconds(i);
            format!(r#"{{"id":"o-{i}","app":"w","run_at":"{}"}}"#, rfc3339(at))
        } else if i < 360 {
            crons.insert(format!("c-{i}"));
            format!(r#"{{"id":"c-{i}","app":"w","cron":"0 0 3 1 1 *","timezone":"UTC"}}"#)
        } else {
            let app = if i < 370 { "h" } else { "w" };
            everies.insert(format!("e-{i}"));
            format!(r#"{{"id":"e-{i}","app":"{app}","every":"1h"}}"#)
        };
        let spec = sked_core::request::parse(json.as_bytes(), &limits, &origin).unwrap();
        ops.push(Op::insert(spec, json.as_bytes()));
    }
    store.apply(&ops).await.unwrap();
    assert_eq!(
        recurring_entries(&store).await,
        100,
        "new jobs are indexed as stored"
    );
    // Every state a recurring job waits in: paused one by one, held (its app paused),
    // firing (claimed), scheduled.
    for i in 300..305 {
        let id = sked_core::job::JobId::parse(&format!("c-{i}")).unwrap();
        store.pause_job(&id, Some("hold".into())).await.unwrap();
    }
    store
        .pause_scope(sked_core::store::pause::Scope::App, "h", None)
        .await
        .unwrap();
    let later = (now + chrono::Duration::hours(3)).timestamp_millis();
    let (mut held, mut firing) = (0, 0);
    for s in 0..store.keys().shards() {
        let batch = store
            .claim(
                sked_core::job::Shard(s),
                later,
                1000,
                Duration::from_secs(3600),
            )
            .await
            .unwrap();
        held += batch.held;
        firing += batch.jobs.len();
    }
    assert_eq!(
        (held, firing),
        (10, 30),
        "the every jobs are held or firing"
    );
    // One firing job whose claim is gone (a record left firing): indexed at now.
    let mut conn = store.connection();
    let mut lost = None;
    for s in 0..store.keys().shards() {
        let shard = sked_core::job::Shard(s);
        let claims: Vec<String> = redis::cmd("ZRANGE")
            .arg(store.keys().inflight(shard))
            .arg(0)
            .arg(0)
            .query_async(&mut conn)
            .await
            .unwrap();
        if let Some(member) = claims.first() {
            let () = redis::cmd("ZREM")
                .arg(store.keys().inflight(shard))
                .arg(member)
                .query_async(&mut conn)
                .await
                .unwrap();
            let id = member.split_once('|').unwrap().1.to_owned();
            lost = Some((shard, id));
            break;
        }
    }
    let (lost_shard, lost_id) = lost.expect("a claim");

    forget_recurring_index(&store).await;
    assert!(!store.recurring_ready().await.unwrap());
    assert_eq!(
        store_kind(&store, Kind::Cron).await,
        crons,
        "without the index"
    );
    // Without the index, a job is listed from the set it waits in: the one left firing, in
    // none, is not.
    let mut seen = everies.clone();
    assert!(seen.remove(&lost_id), "{lost_id} is an every job");
    assert_eq!(
        store_kind(&store, Kind::Every).await,
        seen,
        "without the index"
    );

    let before = Utc::now().timestamp_millis();
    assert_eq!(
        store.backfill_recurring(&Default::default()).await.unwrap(),
        100
    );
    let after = Utc::now().timestamp_millis();
    assert!(store.recurring_ready().await.unwrap());
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(
            store
                .keys()
                .index(lost_shard, &sked_core::store::Index::Recurring),
        )
        .arg(&lost_id)
        .query_async(&mut conn)
        .await
        .unwrap();
    let score = score.expect("the job left firing is indexed") as i64;
    assert!((before..=after).contains(&score), "{score} at now");
    assert_eq!(recurring_entries(&store).await, 100);
    assert_eq!(
        store_kind(&store, Kind::Cron).await,
        crons,
        "from the index"
    );
    assert_eq!(
        store_kind(&store, Kind::Every).await,
        everies,
        "from the index"
    );
    assert_eq!(
        store.backfill_recurring(&Default::default()).await.unwrap(),
        0,
        "a second walk adds nothing"
    );

    // Ingest backfills at start.
    forget_recurring_index(&store).await;
    let ingest = Ingest::start(config.clone()).await;
    let fresh = Store::connect(&config.redis).await.unwrap();
    sked_e2e::eventually(Duration::from_secs(20), "ingest's backfill", || async {
        (fresh.recurring_ready().await.unwrap() && recurring_entries(&fresh).await == 100)
            .then_some(())
    })
    .await;
    assert_eq!(list_all(&ingest, "kind=every", 9).await.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_search_finds_every_match_over_pages_of_bounded_work() {
    let ns = unique("psearch");
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let store = Store::connect(&config.redis).await.unwrap();
    let now = Utc::now();
    let base = now + chrono::Duration::days(1);
    let limits = sked_core::request::Limits::default();
    // 25,000 jobs due one a second from tomorrow; seven carry the text, spread so that more
    // than one page's budget of 10,000 examined jobs lies between some of them.
    let needles = [3usize, 9_999, 10_000, 10_001, 17_500, 24_998, 24_999];
    let mut ops = Vec::new();
    for i in 0..25_000usize {
        let note = if needles.contains(&i) {
            r#"ref \"né-42\", urgent"#
        } else {
            "ref 42"
        };
        let json = format!(
            r#"{{"id":"p-{i:05}","app":"a{}","run_at":"{}","payload":{{"order":{i},"note":"{note}"}}}}"#,
            i % 2,
            rfc3339(base + chrono::Duration::seconds(i as i64))
        );
        let spec = sked_core::request::parse(
            json.as_bytes(),
            &limits,
            &sked_core::request::Origin::new(now),
        )
        .unwrap();
        ops.push(Op::insert(spec, json.as_bytes()));
    }
    for chunk in ops.chunks(2000) {
        store.apply(chunk).await.unwrap();
    }
    let ingest = Ingest::start(config.clone()).await;

    // The stored JSON text is searched, escapes as written, case-sensitive.
    let text = urlencode(r#"\"né-42\""#);
    let found = list_all(&ingest, &format!("payload={text}"), 100).await;
    let want: Vec<String> = needles.iter().map(|i| format!("p-{i:05}")).collect();
    assert_eq!(found, want, "every match once, in due order");
    // A page examines at most 10,000 jobs: the first answers what lies in them, with a
    // cursor to go on from, though fewer than asked for were found.
    let (status, page) = get(&ingest, &format!("/v1/jobs?limit=100&payload={text}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2, "{page}");
    assert!(page["next_cursor"].is_string(), "{page}");
    // With the other filters.
    let odd = list_all(&ingest, &format!("payload={text}&app=a1"), 3).await;
    assert_eq!(odd, ["p-00003", "p-09999", "p-10001", "p-24999"]);
    assert!(
        list_all(&ingest, "payload=URGENT", 100).await.is_empty(),
        "case-sensitive"
    );
    // Too long, or twice: the JSON error names the parameter.
    for q in [
        format!("payload={}", "x".repeat(257)),
        "payload=a&payload=b".into(),
    ] {
        let (status, body) = get(&ingest, &format!("/v1/jobs?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["param"], "payload", "{body}");
    }
    ingest.stop().await;
}
