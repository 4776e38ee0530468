//! `sked-bench failover [--herd N] [--kill-after-ms MS] [--set key=value]`: scheduler failover
//! (issue 10, item 5). Two scheduler replicas run as child processes of the benchmark itself
//! (`sked-bench scheduler-process`), against a private Redis and the local broker. A herd of
//! N one-shot jobs is due in one millisecond; `MS` after that instant one replica is killed
//! -9, in the middle of the herd. Reported: jobs fired (distinct fire ids), the lateness of
//! each job's first fire (its `sked-fired-at` minus its due time) as p50, p99 and max,
//! duplicate records (a fire id produced more than once) and their share of the herd, early
//! fires, and what the survivor reclaimed. Target: every job fired, p99 ≤ 3 s, duplicates ≤
//! 1 % of the herd.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chrono::Utc;
use sked_core::config::{Layers, load};
use tokio_util::sync::CancellationToken;

use crate::{
    PrivateRedis, admin_metrics, create_topics, replayer::free_port, scheduler::metric,
    test_config, unique,
};

/// The hidden `sked-bench scheduler-process --set ...` mode: one scheduler, until killed.
pub async fn scheduler_process(sets: &[String]) {
    let config = match load(&Layers {
        sets: sets.to_vec(),
        ..Default::default()
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sked-bench scheduler-process: {e}");
            std::process::exit(64);
        }
    };
    let cancel = CancellationToken::new();
    let running = match sked_scheduler::start(config, cancel.clone()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sked-bench scheduler-process: {e:#}");
            std::process::exit(1);
        }
    };
    if let Err(e) = running.wait().await {
        eprintln!("sked-bench scheduler-process: {e:#}");
        std::process::exit(1);
    }
}

/// First fire of each fire id, and how many records each had.
struct Seen {
    first_late_ms: HashMap<String, i64>,
    records: HashMap<String, u32>,
    early: usize,
}

/// Reads `topic` from the start until `herd` distinct fire ids of `prefix` jobs are in, then
/// `linger` longer (duplicates after a reclaim come late), within `timeout`.
fn read_herd(
    topic: &str,
    partitions: i32,
    herd: usize,
    prefix: &str,
    linger: Duration,
    timeout: Duration,
) -> Seen {
    let consumer = crate::reader_from_start(topic, partitions);
    let mut seen = Seen {
        first_late_ms: HashMap::with_capacity(herd),
        records: HashMap::with_capacity(herd),
        early: 0,
    };
    let deadline = Instant::now() + timeout;
    let mut complete: Option<Instant> = None;
    while Instant::now() < deadline && complete.is_none_or(|at| at.elapsed() < linger) {
        let Some(Ok(msg)) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let msg = msg.detach();
        let h = |name: &str| crate::header(&msg, name);
        if !h("sked-job-id").is_some_and(|id| id.starts_with(prefix)) {
            continue;
        }
        let num = |name: &str| h(name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let (due, fired) = (num("sked-due-at"), num("sked-fired-at"));
        if fired < due {
            seen.early += 1;
        }
        let fire_id = h("sked-fire-id").unwrap_or_default();
        *seen.records.entry(fire_id.clone()).or_insert(0) += 1;
        seen.first_late_ms.entry(fire_id).or_insert(fired - due);
        if complete.is_none() && seen.first_late_ms.len() >= herd {
            complete = Some(Instant::now());
        }
    }
    seen
}

fn pct(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// A scheduler replica as a child process, with its admin address.
struct Replica {
    child: Child,
    admin: std::net::SocketAddr,
}

impl Replica {
    fn start(sets: &[String]) -> Self {
        let port = free_port();
        let exe = std::env::current_exe().expect("current exe");
        let mut cmd = Command::new(exe);
        cmd.arg("scheduler-process");
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        cmd.arg("--set")
            .arg(format!("admin.listen_addr=127.0.0.1:{port}"));
        let child = cmd
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn scheduler replica");
        Self {
            child,
            admin: ([127, 0, 0, 1], port).into(),
        }
    }

    async fn ready(&self) {
        let url = format!("http://{}/readyz", self.admin);
        for _ in 0..600 {
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("scheduler replica at {} not ready in 30 s", self.admin);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The benchmark (see the module docs).
pub async fn run(herd: usize, kill_after_ms: u64, extra: &[String]) {
    let redis = PrivateRedis::start_with(false);
    let ns = unique("failover");
    let mut sets = vec![
        format!("redis.url={}", redis.url()),
        "redis.key_prefix=sked".to_owned(),
    ];
    sets.extend(extra.iter().cloned());
    let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
    let config = test_config(&ns, &refs);
    let partitions = 6;
    create_topics(&config, partitions).await;
    let mut all = crate::test_sets(&ns);
    all.extend(sets.iter().cloned());
    println!(
        "failover benchmark: 2 scheduler replicas (child processes), herd of {herd}, one replica killed -9 {kill_after_ms} ms after the due time; lease {:?}, claim_batch {}, loops {}",
        config.scheduler.lease.get(),
        config.scheduler.claim_batch,
        config.scheduler.loops
    );
    let replicas = [Replica::start(&all), Replica::start(&all)];
    for r in &replicas {
        r.ready().await;
    }
    let [mut doomed, survivor] = replicas;

    // Due far enough ahead for the insert to finish first.
    let due = Utc::now() + chrono::Duration::seconds(10 + (herd / 20_000) as i64);
    let jobs: Vec<(String, Option<chrono::DateTime<Utc>>)> = (0..herd)
        .map(|i| {
            (
                format!(
                    r#"{{"id":"herd-{i}","app":"bench","delay":"1d","payload":{{"n":{i},"text":"failover benchmark payload of about a hundred bytes........"}}}}"#
                ),
                Some(due),
            )
        })
        .collect();
    crate::scheduler::put_jobs(&config, &jobs, Utc::now()).await;
    let margin = (due - Utc::now()).num_milliseconds();
    if margin < 1_000 {
        eprintln!(
            "sked-bench failover: storing the herd ended {margin} ms before its due time; use a smaller --herd"
        );
        std::process::exit(1);
    }
    let topic = config.topics.due.clone();
    let reader = tokio::task::spawn_blocking(move || {
        read_herd(
            &topic,
            partitions,
            herd,
            "herd-",
            Duration::from_secs(5),
            Duration::from_secs(180),
        )
    });
    let kill_at = due + chrono::Duration::milliseconds(kill_after_ms as i64);
    if let Ok(wait) = (kill_at - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let _ = doomed.child.kill();
    let killed = Utc::now();
    let _ = doomed.child.wait();
    let seen = reader.await.expect("reader");
    let text = admin_metrics(survivor.admin).await;

    let mut late: Vec<i64> = seen.first_late_ms.values().copied().collect();
    late.sort_unstable();
    let records: u64 = seen.records.values().map(|n| u64::from(*n)).sum();
    let duplicates = records - seen.records.len() as u64;
    println!(
        "failover: killed at due + {} ms; {} of {herd} jobs fired; first-fire lateness ms p50 {} p99 {} max {}; duplicate records {duplicates} ({:.2} % of the herd); early {}; survivor reclaimed {} leases, fired {}",
        (killed - due).num_milliseconds(),
        seen.first_late_ms.len(),
        pct(&late, 0.5),
        pct(&late, 0.99),
        late.last().copied().unwrap_or(-1),
        duplicates as f64 * 100.0 / herd.max(1) as f64,
        seen.early,
        metric(&text, "sked_scheduler_reclaimed_total"),
        metric(&text, "sked_scheduler_fired_total"),
    );
    drop(survivor);
    drop(redis);
}
