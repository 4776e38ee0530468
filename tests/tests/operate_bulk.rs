//! Bulk operations: a dry run, then a cancel of 50,000 jobs matching a label with the ingest
//! process killed -9 halfway and restarted; a bulk pause and resume; bad operation requests.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sked_core::{
    request::{Limits, Origin, parse},
    store::{
        Op, Store,
        list::{Filter, ListState},
    },
};
use sked_e2e::{Proc, create_topics, eventually, http, test_config, test_sets, unique};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn op(api: &str, id: &str) -> Value {
    http()
        .get(format!("{api}/v1/operations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn create(api: &str, body: Value) -> (StatusCode, Value) {
    let r = http()
        .post(format!("{api}/v1/operations"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

async fn count(store: &Store, filter: &Filter) -> usize {
    let mut n = 0;
    let mut cursor = None;
    loop {
        let page = store.list(filter, cursor.as_ref(), 1000).await.unwrap();
        n += page.jobs.len();
        match page.next {
            Some(c) => cursor = Some(c),
            None => return n,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulk_cancel_of_50k_jobs_survives_a_kill_9_and_acts_once_on_each() {
    let ns = unique("bulk");
    let port = free_port();
    let mut sets = test_sets(&ns);
    sets.push(format!("http.listen_addr=127.0.0.1:{port}"));
    let config = test_config(&ns, &[]);
    create_topics(&config, 1).await;
    let store = Store::connect(&config.redis).await.unwrap();
    let now = Utc::now();
    let mut ops = Vec::new();
    for i in 0..55_000 {
        let group = if i < 50_000 { "purge" } else { "keep" };
        let json = format!(
            r#"{{"id":"b-{i}","app":"sms","tenant":"acme","labels":{{"group":"{group}"}},"run_at":"2031-01-01T00:00:{:02}Z"}}"#,
            i % 60
        );
        let spec = parse(json.as_bytes(), &Limits::default(), &Origin::new(now)).unwrap();
        ops.push(Op::insert(spec, json.as_bytes()));
    }
    for chunk in ops.chunks(5000) {
        store.apply(chunk).await.unwrap();
    }
    let api = format!("http://127.0.0.1:{port}");
    let mut first = Proc::start("sked-ingest", &sets);
    eventually(Duration::from_secs(30), "ingest up", || async {
        http()
            .get(format!("{api}/v1/stats"))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    let selector = json!({"label": ["group=purge"]});
    let (status, dry) = create(
        &api,
        json!({"action": "cancel", "selector": selector, "dry_run": true}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{dry}");
    let dry_id = dry["id"].as_str().unwrap().to_owned();
    let done = eventually(Duration::from_secs(30), "dry run done", || async {
        let o = op(&api, &dry_id).await;
        (o["state"] == "succeeded").then_some(o)
    })
    .await;
    assert_eq!(done["estimate"], 50_000, "{done}");
    assert_eq!(done["processed"], 0, "a dry run acts on nothing");

    let (status, created) = create(
        &api,
        json!({"action": "cancel", "selector": selector, "rate": 10000}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(60), "halfway", || async {
        let o = op(&api, &id).await;
        (o["processed"].as_u64().unwrap_or(0) >= 20_000).then_some(())
    })
    .await;
    first.kill9();
    let halfway = count(
        &store,
        &Filter {
            states: [ListState::Cancelled].into_iter().collect(),
            ..Filter::default()
        },
    )
    .await;
    assert!(
        halfway < 50_000,
        "killed before the end ({halfway} cancelled)"
    );

    let _second = Proc::start("sked-ingest", &sets);
    let finished = eventually(Duration::from_secs(90), "operation finished", || async {
        let o = http()
            .get(format!("{api}/v1/operations/{id}"))
            .send()
            .await
            .ok()?;
        let o: Value = o.json().await.ok()?;
        (o["state"] == "succeeded").then_some(o)
    })
    .await;
    assert_eq!(finished["estimate"], 50_000, "{finished}");
    assert_eq!(finished["processed"], 50_000, "{finished}");
    assert_eq!(
        finished["outcomes"],
        json!({"cancelled": 50_000}),
        "{finished}"
    );
    let history: Vec<&str> = finished["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        history.contains(&"resumed by another runner"),
        "{history:?}"
    );
    assert_eq!(history.last(), Some(&"done"));

    let purge = Filter {
        labels: vec![("group".into(), "purge".into())],
        ..Filter::default()
    };
    // Read before any listing, which would clean stale entries: the cancels took the jobs
    // out of their indexes themselves, and the counts moved with them.
    assert_eq!(
        store.estimate(&purge).await.unwrap(),
        0,
        "label index emptied"
    );
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.by_app.get("sms"), Some(&5_000), "{stats:?}");
    assert_eq!(stats.by_tenant.get("acme"), Some(&5_000), "{stats:?}");
    assert_eq!(
        count(&store, &purge).await,
        0,
        "no matching job left pending"
    );
    let keep = Filter {
        labels: vec![("group".into(), "keep".into())],
        ..Filter::default()
    };
    assert_eq!(count(&store, &keep).await, 5_000, "no other job touched");
    let cancelled = Filter {
        states: [ListState::Cancelled].into_iter().collect(),
        ..Filter::default()
    };
    assert_eq!(count(&store, &cancelled).await, 50_000);

    // The list of operations, newest first.
    let list: Value = http()
        .get(format!("{api}/v1/operations?limit=10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["operations"][0]["id"], id.as_str());
    assert_eq!(list["operations"][1]["id"], dry_id.as_str());

    // Pause every kept job, then resume them; both once per job.
    let sel = json!({"label": ["group=keep"]});
    for (action, outcome) in [("pause", "paused"), ("resume", "resumed")] {
        let (_, o) = create(
            &api,
            json!({"action": action, "selector": sel, "note": "bulk"}),
        )
        .await;
        let oid = o["id"].as_str().unwrap().to_owned();
        let o = eventually(Duration::from_secs(30), action, || async {
            let o = op(&api, &oid).await;
            (o["state"] == "succeeded").then_some(o)
        })
        .await;
        assert_eq!(o["outcomes"], json!({outcome: 5000}), "{o}");
    }
    assert_eq!(count(&store, &keep).await, 5_000);

    // Bad requests name the parameter.
    for (body, param) in [
        (json!({"action": "explode", "selector": {}}), None),
        (
            json!({"action": "cancel", "selector": {"label": ["nope"]}}),
            Some("label"),
        ),
        (
            json!({"action": "cancel", "selector": {"colour": "red"}}),
            None,
        ),
        (
            json!({"action": "reschedule", "selector": {}}),
            Some("offset"),
        ),
        (
            json!({"action": "cancel", "selector": {}, "rate": 0}),
            Some("rate"),
        ),
        (
            json!({"action": "purge_finished", "selector": {"state": "scheduled"}}),
            Some("selector"),
        ),
    ] {
        let (status, err) = create(&api, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        if let Some(p) = param {
            assert_eq!(err["error"]["param"], p, "{body}: {err}");
        }
    }
    let r = http()
        .get(format!("{api}/v1/operations/none"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A cancel of listed jobs leaves the indexes the caller read in its own script, and a job
/// that changed since it was read still leaves the indexes the caller did not know of.
#[tokio::test]
async fn a_listed_cancel_leaves_every_index_even_of_a_job_changed_since() {
    use sked_core::store::Index;
    let ns = unique("cancellisted");
    let config = test_config(&ns, &[]);
    let store = Store::connect(&config.redis).await.unwrap();
    let now = Utc::now();
    let insert = |json: String| {
        let spec = parse(json.as_bytes(), &Limits::default(), &Origin::new(now)).unwrap();
        Op::insert(spec, json.as_bytes())
    };
    let mut ops = Vec::new();
    for i in 0..40 {
        ops.push(insert(format!(
            r#"{{"id":"l-{i}","app":"sms","tenant":"acme","labels":{{"g":"x"}},"run_at":"2031-01-01T00:00:00Z"}}"#
        )));
    }
    store.apply(&ops).await.unwrap();
    // Job l-0 moves to another app and label after the caller read it.
    store
        .apply(&[insert(
            r#"{"id":"l-0","app":"mail","tenant":"acme","labels":{"g":"y"},"run_at":"2031-01-01T00:00:00Z"}"#.to_owned(),
        )])
        .await
        .unwrap();
    // Counted as stored: 39 in sms (l-0 moved to mail), 40 in acme.
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.by_app.get("sms"), Some(&39), "{stats:?}");
    assert_eq!(stats.by_app.get("mail"), Some(&1), "{stats:?}");
    assert_eq!(stats.by_tenant.get("acme"), Some(&40), "{stats:?}");
    let as_read = vec![
        Index::App("sms".into()),
        Index::Tenant("acme".into()),
        Index::Label("g".into(), "x".into()),
    ];
    let cancels: Vec<Op> = (0..40)
        .map(|i| Op::CancelListed {
            id: sked_core::job::JobId::parse(&format!("l-{i}")).unwrap(),
            indexes: as_read.clone(),
        })
        .collect();
    let applied = store.apply(&cancels).await.unwrap();
    assert!(
        applied.iter().all(|a| matches!(
            a,
            sked_core::store::Applied::Cancel(sked_core::store::Cancelled::Cancelled)
        )),
        "{applied:?}"
    );
    for (filter, what) in [
        (
            Filter {
                app: Some("sms".into()),
                ..Filter::default()
            },
            "app sms",
        ),
        (
            Filter {
                app: Some("mail".into()),
                ..Filter::default()
            },
            "app mail (the changed job's own)",
        ),
        (
            Filter {
                labels: vec![("g".into(), "y".into())],
                ..Filter::default()
            },
            "label g=y (the changed job's own)",
        ),
        (
            Filter {
                tenant: Some("acme".into()),
                ..Filter::default()
            },
            "tenant acme",
        ),
    ] {
        assert_eq!(store.estimate(&filter).await.unwrap(), 0, "{what}");
    }
    let stats = store.stats().await.unwrap();
    assert!(stats.by_app.is_empty(), "{stats:?}");
    assert!(stats.by_tenant.is_empty(), "{stats:?}");
}
