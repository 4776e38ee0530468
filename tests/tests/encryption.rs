//! Payload encryption at rest, against the real broker and Redis: with `encryption.enabled`
//! no payload byte reaches Redis (every key of the installation read back by type, and every
//! command Redis saw captured with `MONITOR`), while handlers get the exact payload bytes and
//! describe still shows the payload; a key rotation keeps old records readable and seals new
//! ones with the new key; a job sealed with a key that is later removed is held, counted and
//! reported by describe, and fires once the key is configured again.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::Value;
use sked_core::{config::Config, job::JobId, store::Store};
use sked_e2e::{
    create_topics, eventually, http,
    ingest::Ingest,
    redis_url,
    scheduler::{Scheduler, metric},
    test_sets, unique,
    worker::{Endpoint, Worker, worker_sets},
};

/// Writes keys `k1`, `k2`, `k3` (32 random bytes each) in three encodings into a fresh
/// directory: raw bytes, hex, base64.
fn key_files(ns: &str) -> PathBuf {
    use base64::Engine as _;
    let dir = std::env::temp_dir().join(format!("sked-keys-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let random = || {
        use std::io::Read as _;
        let mut k = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut k))
            .unwrap();
        k
    };
    std::fs::write(dir.join("k1"), random()).unwrap();
    let hex: String = random().iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("k2"), format!("{hex}\n")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(random());
    std::fs::write(dir.join("k3"), format!("{b64}\n")).unwrap();
    dir
}

/// The configuration of one phase: sealing with `current` (none: off), `keys` listed.
fn config(
    ns: &str,
    keys: &Path,
    current: Option<&str>,
    listed: &[&str],
    extra: &[String],
) -> Config {
    let mut sets = test_sets(ns);
    sets.extend(worker_sets(ns));
    sets.push("scheduler.unknown_key_hold=1s".into());
    if let Some(current) = current {
        sets.push("encryption.enabled=true".into());
        sets.push(format!("encryption.current_key={current}"));
    }
    for id in listed {
        sets.push(format!(
            "encryption.keys.{id}.file={}",
            keys.join(id).display()
        ));
    }
    sets.extend(extra.iter().cloned());
    sked_core::config::load(&sked_core::config::Layers {
        sets,
        ..Default::default()
    })
    .unwrap()
}

async fn submit(ingest: &Ingest, body: &Value) {
    let resp = http()
        .post(format!("{}/v1/jobs", ingest.api()))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{:?}",
        resp.text().await
    );
}

/// Everything one `MONITOR` connection sees until [`Monitor::stop`].
struct Monitor {
    seen: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Monitor {
    fn start() -> Self {
        let addr = redis_url()
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert_eq!(first.trim(), "+OK", "MONITOR started");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut line = Vec::new();
            while !st.load(Ordering::SeqCst) {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => s.lock().unwrap().extend_from_slice(&line),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        s.lock().unwrap().extend_from_slice(&line);
                    }
                    Err(e) => panic!("monitor: {e}"),
                }
            }
        });
        Self { seen, stop, thread }
    }

    fn stop(self) -> Vec<u8> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every key under `prefix` with every value in it, whatever its type, as bytes.
async fn dump_prefix(prefix: &str) -> Vec<(String, String, Vec<u8>)> {
    use futures::StreamExt;
    let mut conn = sked_e2e::redis(&redis_url()).await;
    let keys: Vec<String> = {
        let mut scan = conn.clone();
        scan.scan_match::<_, String>(format!("{prefix}:*"))
            .await
            .unwrap()
            .collect()
            .await
    };
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut bytes = Vec::new();
        match kind.as_str() {
            "string" => bytes = conn.get::<_, Vec<u8>>(&key).await.unwrap(),
            "hash" => {
                let all: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&key).await.unwrap();
                for (f, v) in all {
                    bytes.extend(f);
                    bytes.push(b' ');
                    bytes.extend(v);
                    bytes.push(b'\n');
                }
            }
            "zset" => {
                let all: Vec<(Vec<u8>, f64)> = conn.zrange_withscores(&key, 0, -1).await.unwrap();
                for (m, _) in all {
                    bytes.extend(m);
                    bytes.push(b'\n');
                }
            }
            "set" => {
                let all: Vec<Vec<u8>> = conn.smembers(&key).await.unwrap();
                for m in all {
                    bytes.extend(m);
                    bytes.push(b'\n');
                }
            }
            "list" => {
                let all: Vec<Vec<u8>> = conn.lrange(&key, 0, -1).await.unwrap();
                for m in all {
                    bytes.extend(m);
                    bytes.push(b'\n');
                }
            }
            "stream" => {
                let all: redis::Value = redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                bytes = format!("{all:?}").into_bytes();
            }
            "none" => continue, // expired meanwhile
            other => panic!("key {key} of unexpected type {other}"),
        }
        out.push((key, kind, bytes));
    }
    out
}

/// The raw record of job `id`.
async fn raw_record(config: &Config, id: &str) -> Vec<u8> {
    let store = Store::connect(&config.redis).await.unwrap();
    let id = JobId::parse(id).unwrap();
    let key = store.keys().job(store.keys().shard_of(&id), &id);
    let mut conn = sked_e2e::redis(&redis_url()).await;
    conn.get::<_, Vec<u8>>(&key).await.unwrap()
}

/// The key id a record's payload is sealed with (layout 4), `None` in clear (layout 3): the
/// layout of crates/core/src/store/record.rs and seal.rs, read by hand.
fn sealed_with(raw: &[u8]) -> Option<String> {
    fn varint(raw: &[u8], at: &mut usize) -> usize {
        let (mut n, mut shift) = (0usize, 0);
        loop {
            let b = raw[*at];
            *at += 1;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return n;
            }
            shift += 7;
        }
    }
    match raw[9] {
        b'3' => return None,
        b'4' => {}
        other => panic!("unexpected layout {}", other as char),
    }
    let mut at = 18;
    varint(raw, &mut at); // sub-ms nanos
    for _ in 0..2 {
        let len = varint(raw, &mut at); // app, tenant
        at += len;
    }
    varint(raw, &mut at); // payload field length
    let id_len = usize::from(raw[at]);
    Some(String::from_utf8(raw[at + 1..at + 1 + id_len].to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sealed_payloads_never_reach_redis_in_clear_and_handlers_get_them_exactly() {
    let marker = unique("PLAINTEXT-MARKER");
    let endpoint = Endpoint::start(|_, _| (200, Duration::ZERO)).await;
    let ns = unique("crypt");
    let keys = key_files(&ns);
    let config = config(
        &ns,
        &keys,
        Some("k1"),
        &["k1"],
        &[format!("apps.sink.url={}", endpoint.url("/sink"))],
    );
    create_topics(&config, 3).await;
    let monitor = Monitor::start();
    let ingest = Ingest::start(config.clone()).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let worker = Worker::start(config.clone()).await;

    // Numbers as written, unicode, the marker: exactly these bytes reach the handler.
    let payload = format!(r#"{{"secret":"{marker}","n":12345678901234567890,"f":1.50,"s":"é ✓"}}"#);
    // serde_json::Value would rewrite the payload; the requests are sent as text.
    for (id, when) in [
        ("soon", r#""delay":"300ms""#),
        ("later", r#""delay":"1h","idempotency_key":"later-key""#),
        ("every", r#""every":"1s","max_runs":2"#),
    ] {
        let body = format!(
            r#"{{"id":"{id}","app":"sink","payload":{payload},"labels":{{"team":"pay"}},{when}}}"#
        );
        let resp = http()
            .post(format!("{}/v1/jobs", ingest.api()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    for (id, runs) in [("soon", 1), ("every", 2)] {
        eventually(Duration::from_secs(30), &format!("{id} runs"), || async {
            (endpoint.calls_for(id).len() >= runs).then_some(())
        })
        .await;
        for call in endpoint.calls_for(id) {
            assert_eq!(
                std::str::from_utf8(&call.body).unwrap(),
                payload,
                "the handler gets the payload bytes exactly"
            );
        }
    }

    // Describe opens the payload.
    let text = ingest.get_job_text("later").await.unwrap();
    assert!(
        text.contains(&payload),
        "describe shows the payload: {text}"
    );
    // A listing still lists the sealed jobs.
    let list: Value = http()
        .get(format!("{}/v1/jobs?app=sink", ingest.api()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&"later"), "{list}");
    // A payload search never opens a sealed payload: neither its text nor the `null` it
    // reads as in a listing matches.
    for text in [marker.as_str(), "null"] {
        let resp = http()
            .get(format!("{}/v1/jobs", ingest.api()))
            .query(&[("app", "sink"), ("payload", text)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page["jobs"], serde_json::json!([]), "{text}: {page}");
    }

    // Every record is sealed with k1.
    for id in ["soon", "later", "every"] {
        let raw = raw_record(&config, id).await;
        assert_eq!(sealed_with(&raw).as_deref(), Some("k1"), "{id}");
    }
    worker.stop().await;
    scheduler.stop().await;
    ingest.stop().await;

    // Every value of every key of this installation, whatever its type.
    let prefix = config.redis.key_prefix.clone();
    let all = dump_prefix(&prefix).await;
    assert!(all.len() >= 8, "keys of the installation: {all:?}");
    let kinds: std::collections::BTreeSet<&str> = all.iter().map(|(_, k, _)| k.as_str()).collect();
    for kind in ["string", "hash", "zset", "list"] {
        assert!(kinds.contains(kind), "{kind} among {kinds:?}");
    }
    for (key, kind, bytes) in &all {
        assert!(
            !contains(bytes, marker.as_bytes()),
            "{kind} {key} holds the payload"
        );
        assert!(
            !contains(bytes, "é ✓".as_bytes()),
            "{kind} {key} holds the payload"
        );
    }
    // And no command Redis ran carried it, while the capture did see this test's commands.
    let seen = monitor.stop();
    assert!(
        contains(&seen, prefix.as_bytes()),
        "MONITOR saw the test's commands"
    );
    assert!(contains(&seen, b"EVALSHA"), "MONITOR saw the scripts");
    assert!(
        !contains(&seen, marker.as_bytes()),
        "a command sent to Redis carried the payload in clear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_rotation_old_records_still_run_and_new_ones_use_the_new_key() {
    let endpoint = Endpoint::start(|_, _| (200, Duration::ZERO)).await;
    let ns = unique("rotate");
    let keys = key_files(&ns);
    let sink = format!("apps.sink.url={}", endpoint.url("/sink"));
    let before = config(&ns, &keys, Some("k1"), &["k1"], std::slice::from_ref(&sink));
    create_topics(&before, 3).await;

    // Before: a record in clear (encryption off) and one sealed with k1, due in a few seconds.
    let clear = config(&ns, &keys, None, &[], std::slice::from_ref(&sink));
    let ingest = Ingest::start(clear).await;
    submit(&ingest, &serde_json::json!({"id": "plain", "app": "sink", "delay": "4s", "payload": {"v": "plain"}})).await;
    ingest.stop().await;
    let ingest = Ingest::start(before.clone()).await;
    submit(
        &ingest,
        &serde_json::json!({"id": "old", "app": "sink", "delay": "4s", "payload": {"v": "old"}}),
    )
    .await;
    ingest.stop().await;
    assert_eq!(sealed_with(&raw_record(&before, "plain").await), None);
    assert_eq!(
        sealed_with(&raw_record(&before, "old").await).as_deref(),
        Some("k1")
    );

    // Rotation: restart everything with k2 current and k1 still listed.
    let after = config(
        &ns,
        &keys,
        Some("k2"),
        &["k1", "k2"],
        std::slice::from_ref(&sink),
    );
    let ingest = Ingest::start(after.clone()).await;
    let scheduler = Scheduler::start(after.clone()).await;
    let worker = Worker::start(after.clone()).await;
    submit(
        &ingest,
        &serde_json::json!({"id": "new", "app": "sink", "delay": "200ms", "payload": {"v": "new"}}),
    )
    .await;
    let (status, old) = ingest.get_job("old").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        old["job"]["payload"],
        serde_json::json!({"v": "old"}),
        "{old}"
    );
    for id in ["plain", "old", "new"] {
        eventually(Duration::from_secs(30), &format!("{id} runs"), || async {
            endpoint.calls_for(id).into_iter().next()
        })
        .await;
        let body = endpoint.calls_for(id)[0].body.clone();
        assert_eq!(
            body.as_ref(),
            format!(r#"{{"v":"{id}"}}"#).as_bytes(),
            "{id}"
        );
    }
    assert_eq!(
        sealed_with(&raw_record(&after, "new").await).as_deref(),
        Some("k2")
    );
    assert_eq!(
        sealed_with(&raw_record(&after, "old").await).as_deref(),
        Some("k1")
    );
    worker.stop().await;
    scheduler.stop().await;
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_sealed_with_a_removed_key_is_held_and_reported_then_fires_when_the_key_returns() {
    let endpoint = Endpoint::start(|_, _| (200, Duration::ZERO)).await;
    let ns = unique("lostkey");
    let keys = key_files(&ns);
    let sink = format!("apps.sink.url={}", endpoint.url("/sink"));
    let with_k1 = config(&ns, &keys, Some("k1"), &["k1"], std::slice::from_ref(&sink));
    create_topics(&with_k1, 3).await;
    let ingest = Ingest::start(with_k1.clone()).await;
    submit(
        &ingest,
        &serde_json::json!({"id": "orphan", "app": "sink", "delay": "500ms", "payload": {"v": 1}}),
    )
    .await;
    submit(&ingest, &serde_json::json!({"id": "orphan-cron", "app": "sink", "every": "1s", "payload": {"v": 2}})).await;
    ingest.stop().await;

    // k1 removed from the configuration (a mistake): only k3 is there.
    let without = config(&ns, &keys, Some("k3"), &["k3"], std::slice::from_ref(&sink));
    let ingest = Ingest::start(without.clone()).await;
    let scheduler = Scheduler::start(without.clone()).await;
    let worker = Worker::start(without.clone()).await;
    // Held, counted on every hold (1 s), never fired and never dropped.
    eventually(Duration::from_secs(30), "held twice each", || async {
        let m = scheduler.metrics().await;
        (metric(&m, "sked_scheduler_unknown_key_holds_total") >= 4.0).then_some(())
    })
    .await;
    assert!(endpoint.calls().is_empty(), "nothing fired without its key");
    assert_eq!(
        metric(
            &scheduler.metrics().await,
            "sked_scheduler_corrupt_records_total"
        ),
        0.0
    );
    // Describe names the missing key; the listing still shows the job.
    let (status, body) = ingest.get_job("orphan").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "unknown_encryption_key", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("`k1`"),
        "{body}"
    );
    let list: Value = http()
        .get(format!("{}/v1/jobs?app=sink", ingest.api()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 2, "{list}");
    worker.stop().await;
    scheduler.stop().await;
    ingest.stop().await;

    // The key is back (k3 stays current): both jobs fire, with their payloads.
    let back = config(
        &ns,
        &keys,
        Some("k3"),
        &["k1", "k3"],
        std::slice::from_ref(&sink),
    );
    // Test broker workaround (tansu's group coordinator; docs/operations.md "Stalled
    // partitions" is what sked does about it in production, after `kafka.stall_after`): a worker
    // that joins before the previous member's session (6 s) has expired can be left without
    // one of the due topic's partitions. Seen here once in a loaded full run: the scheduler
    // fired `orphan-cron` every second (38 fires in its counters) and no worker ran any.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let scheduler = Scheduler::start(back.clone()).await;
    let worker = Worker::start(back.clone()).await;
    for (id, v) in [("orphan", 1), ("orphan-cron", 2)] {
        eventually(Duration::from_secs(30), &format!("{id} fires"), || async {
            endpoint.calls_for(id).into_iter().next()
        })
        .await;
        assert_eq!(
            endpoint.calls_for(id)[0].body.as_ref(),
            format!(r#"{{"v":{v}}}"#).as_bytes()
        );
    }
    assert_eq!(
        endpoint.calls_for("orphan").len(),
        1,
        "the one-shot fires once"
    );
    worker.stop().await;
    scheduler.stop().await;
}
