//! `sked-bench`: sked's benchmarks, printed as figures. Run through `scripts/bench.sh`, which
//! builds in release mode and starts the broker.
//!
//! `sked-bench ingest [--requests N] [--rate R]`: publishes N schedule requests (payload about
//! 100 bytes, due in a day) to the ingest topic of an in-process ingest service backed by a
//! private Redis, and reports requests/s from the first publish to the last durable write,
//! ingest latency percentiles (Kafka timestamp → durable write, from the service's
//! histogram), and Redis bytes per pending job. `--encrypt on` seals every payload in Redis
//! (`encryption.enabled`, AES-256-GCM with a random key written to a temporary file).
//!
//! `sked-bench operate [--requests N]`: the operating API at N pending jobs (default for this
//! mode: pass `--requests 1000000`); see `sked_e2e::bench_operate`.
//!
//! `sked-bench console [--requests N] [--cron-every K]`: the console's server time per page at
//! N pending jobs, every K-th a cron (default 100; 0: none); see `sked_e2e::bench_console`.
//!
//! `sked-bench dlq [--requests N]`: the DLQ index and API at N dead letters (pass
//! `--requests 1000000`); see `sked_e2e::bench_dlq`.
//!
//! `sked-bench failover [--herd N] [--kill-after-ms MS]`: two scheduler replicas, a herd due at
//! once, one replica killed -9 mid-herd; see `sked_e2e::bench_failover`.
//!
//! `sked-bench chaos [--seconds S] [--rate R] [--seed N] [--kill-every S]`: S seconds (default 120) of jobs at
//! R per second (default 9) through ingest, two schedulers, two workers and a replayer run as
//! processes, while services are killed -9, Redis restarts and the broker pauses; prints the
//! report and exits 1 if anything was lost, early or misidentified; see `sked_e2e::chaos`.

use std::time::{Duration, Instant};

use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};
use sked_e2e::{
    PrivateRedis, brokers, create_topics, due_count, eventually, ingest::Ingest, test_config,
    unique,
};

struct Args {
    requests: usize,
    rate: Option<u64>,
    partitions: i32,
    /// `--seconds`; each mode has its own default (10 s; chaos: 120 s).
    seconds: Option<u64>,
    /// `--seed` (chaos).
    seed: Option<u64>,
    /// `--kill-every S` (chaos; 0: no kills).
    kill_every: Option<u64>,
    herd: usize,
    drain: usize,
    /// `once` (one-shots) or `cron` (recurring: every fire computes the next slot in a zone).
    drain_kind: String,
    sets: Vec<String>,
    phases: String,
    /// `--encrypt on`: payload encryption at rest (ingest).
    encrypt: bool,
    /// `--limits on`: a global start rate and a concurrency key on every job (worker), set so
    /// that they never bind: what they cost.
    limits: bool,
    /// `failover`: when the replica is killed, in ms after the herd's due time.
    kill_after_ms: u64,
    /// `console`: every K-th job is a cron (0: none).
    cron_every: usize,
}

fn parse_args() -> Result<(String, Args), String> {
    let mut it = std::env::args().skip(1);
    let cmd = it
        .next()
        .ok_or("usage: sked-bench ingest [--requests N] [--rate PER_SEC] [--partitions P] [--encrypt on|off] | scheduler [--seconds S] [--herd N] [--drain N] [--drain-kind once|cron] | worker [--requests N] [--seconds S] [--limits on|off] | replay [--requests N] | failover [--herd N] [--kill-after-ms MS] [--set k=v] | operate [--requests N] | console [--requests N] [--cron-every K] | dlq [--requests N] | rest [--requests N] [--set auth.enabled=false] | chaos [--seconds S] [--rate R] [--seed N] [--kill-every S]")?;
    let mut args = Args {
        requests: 200_000,
        rate: None,
        partitions: 6,
        seconds: None,
        seed: None,
        kill_every: None,
        herd: 100_000,
        drain: 1_000_000,
        drain_kind: "once".to_owned(),
        sets: Vec::new(),
        phases: "steady,herd,drain".to_owned(),
        encrypt: false,
        limits: false,
        kill_after_ms: 250,
        cron_every: 100,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("{flag}: `{value}` is not a number");
        match flag.as_str() {
            "--requests" => args.requests = value.parse().map_err(bad)?,
            "--rate" => args.rate = Some(value.parse().map_err(bad)?),
            "--partitions" => args.partitions = value.parse().map_err(bad)?,
            "--seconds" => args.seconds = Some(value.parse().map_err(bad)?),
            "--seed" => args.seed = Some(value.parse().map_err(bad)?),
            "--kill-every" => args.kill_every = Some(value.parse().map_err(bad)?),
            "--herd" => args.herd = value.parse().map_err(bad)?,
            "--drain" => args.drain = value.parse().map_err(bad)?,
            "--drain-kind" if ["once", "cron"].contains(&value.as_str()) => {
                args.drain_kind = value.clone()
            }
            "--drain-kind" => return Err(format!("--drain-kind: `{value}`: once or cron")),
            "--set" => args.sets.push(value.clone()),
            "--encrypt" if ["on", "off"].contains(&value.as_str()) => args.encrypt = value == "on",
            "--encrypt" => return Err(format!("--encrypt: `{value}`: on or off")),
            "--limits" if ["on", "off"].contains(&value.as_str()) => args.limits = value == "on",
            "--limits" => return Err(format!("--limits: `{value}`: on or off")),
            "--phases" => args.phases = value.clone(),
            "--kill-after-ms" => args.kill_after_ms = value.parse().map_err(bad)?,
            "--cron-every" => args.cron_every = value.parse().map_err(bad)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((cmd, args))
}

#[tokio::main]
async fn main() {
    let (cmd, args) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("sked-bench: {e}");
            std::process::exit(2);
        }
    };
    match cmd.as_str() {
        "ingest" => ingest(args).await,
        "scheduler" => scheduler(args).await,
        "worker" => worker(args).await,
        "replay" => replay(args).await,
        "operate" => sked_e2e::bench_operate::run(args.requests).await,
        "console" => sked_e2e::bench_console::run(args.requests, args.cron_every).await,
        "dlq" => sked_e2e::bench_dlq::run(args.requests).await,
        "rest" => rest(args).await,
        "failover" => {
            sked_e2e::bench_failover::run(args.herd, args.kill_after_ms, &args.sets).await
        }
        "scheduler-process" => sked_e2e::bench_failover::scheduler_process(&args.sets).await,
        "chaos" => chaos(args).await,
        other => {
            eprintln!("sked-bench: unknown benchmark {other}");
            std::process::exit(2);
        }
    }
}

use sked_e2e::bench_operate::used_memory as redis_used_memory;

/// `POST /v1/jobs` throughput: 64 concurrent clients with the test token, against an
/// in-process ingest on a private Redis (auth on, as by default; `--set auth.enabled=false`
/// for the figure without auth).
async fn rest(args: Args) {
    let redis = PrivateRedis::start_with(false);
    let url = redis.url();
    let ns = unique("rbench");
    let mut sets = vec![
        format!("redis.url={url}"),
        "redis.key_prefix=sked".to_owned(),
    ];
    sets.extend(args.sets.iter().cloned());
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let config = test_config(&ns, &sets);
    create_topics(&config, 1).await;
    let ingest = Ingest::start(config.clone()).await;
    let api = ingest.api();
    let client = sked_e2e::http();
    let n = args.requests;
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let run = |from_warmup: bool| {
        let (api, client, next) = (api.clone(), client.clone(), next.clone());
        async move {
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let (api, client, next) = (api.clone(), client.clone(), next.clone());
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= if from_warmup { 2_000 } else { 2_000 + n } {
                                break;
                            }
                            let body = format!(
                                r#"{{"id":"r-{i}","app":"bench","delay":"1d","payload":{{"n":{i},"text":"rest benchmark payload"}}}}"#
                            );
                            let resp = client
                                .post(format!("{api}/v1/jobs"))
                                .header("content-type", "application/json")
                                .body(body)
                                .send()
                                .await
                                .expect("POST");
                            assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("client task");
            }
        }
    };
    run(true).await;
    let started = Instant::now();
    run(false).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "rest benchmark: {n} POST /v1/jobs, 64 concurrent clients, auth {}",
        if config.auth.enabled {
            "on (static token, audit to Kafka)"
        } else {
            "off"
        }
    );
    println!("  {:.0} requests/s ({secs:.2} s)", n as f64 / secs);
    ingest.stop().await;
}

async fn ingest(args: Args) {
    let redis = PrivateRedis::start_with(false);
    let url = redis.url();
    let ns = unique("bench");
    let mut sets = vec![
        format!("redis.url={url}"),
        "redis.key_prefix=sked".to_owned(),
        "ingest.batch_max=5000".to_owned(),
        "ingest.batch_linger=5ms".to_owned(),
    ];
    let key_dir = std::env::temp_dir().join(&ns);
    if args.encrypt {
        use std::io::Read as _;
        let mut key = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .expect("random key");
        std::fs::create_dir_all(&key_dir).expect("key dir");
        std::fs::write(key_dir.join("bench"), key).expect("key file");
        sets.push("encryption.enabled=true".to_owned());
        sets.push("encryption.current_key=bench".to_owned());
        sets.push(format!(
            "encryption.keys.bench.file={}",
            key_dir.join("bench").display()
        ));
    }
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let config = test_config(&ns, &sets);
    let mut topic_config = config.clone();
    topic_config.topics.partitions = args.partitions;
    create_topics(&topic_config, args.partitions).await;
    let ingest = Ingest::start(config.clone()).await;
    let (prefix, shards) = (config.redis.key_prefix.clone(), config.redis.shards);

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let topic = config.topics.ingest.clone();

    // Warm-up: the consumer has joined its group once this one is stored.
    let warm = r#"{"id":"warmup","app":"bench","delay":"1d"}"#;
    producer
        .send(
            FutureRecord::to(&topic).key("warmup").payload(warm),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("warm-up");
    eventually(Duration::from_secs(60), "warm-up stored", || async {
        (due_count(&url, &prefix, shards).await == 1).then_some(())
    })
    .await;
    let before = redis_used_memory(&url).await;

    let payload = r#"{"phone":"+8801712345678","text":"Your order 1234567 has shipped and arrives tomorrow","n":42}"#;
    println!(
        "ingest benchmark: {} requests, payload {} bytes, {} partitions, payload encryption {}",
        args.requests,
        payload.len(),
        args.partitions,
        if args.encrypt { "on" } else { "off" }
    );
    let started = Instant::now();
    let mut acks = Vec::with_capacity(args.requests);
    for i in 0..args.requests {
        let body =
            format!(r#"{{"id":"bench-{i}","app":"bench","delay":"1d","payload":{payload}}}"#);
        let key = format!("bench-{i}");
        loop {
            match producer.send_result(FutureRecord::to(&topic).key(&key).payload(&body)) {
                Ok(f) => {
                    acks.push(f);
                    break;
                }
                Err((_, _)) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64((i + 1) as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    let published = started.elapsed();
    for a in acks {
        let _ = a.await;
    }
    let target = args.requests as u64 + 1;
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while last < target && Instant::now() < deadline {
        last = due_count(&url, &prefix, shards).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let after = redis_used_memory(&url).await;
    let metrics = sked_e2e::http()
        .get(format!("http://{}/metrics", ingest.admin))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    ingest.stop().await;
    let _ = std::fs::remove_dir_all(&key_dir);

    assert_eq!(last, target, "every request stored");
    let rate = args.requests as f64 / elapsed.as_secs_f64();
    println!("published in           {:.2} s", published.as_secs_f64());
    println!(
        "first publish → last durable write: {:.2} s",
        elapsed.as_secs_f64()
    );
    println!("throughput             {rate:.0} requests/s");
    for q in [0.5, 0.99] {
        match histogram_quantile(&metrics, "sked_ingest_latency_seconds", q) {
            Some(v) => println!(
                "ingest latency p{:<4}   <= {:.0} ms (histogram bucket bound)",
                q * 100.0,
                v * 1000.0
            ),
            None => println!("ingest latency p{}: no data", q * 100.0),
        }
    }
    let per_job = (after.saturating_sub(before)) as f64 / args.requests as f64;
    println!(
        "redis memory           {per_job:.0} bytes per pending job (used_memory delta / jobs)"
    );
}

/// The upper bound of the bucket holding quantile `q` of a Prometheus histogram.
fn histogram_quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}_bucket{{le=\"")))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets
        .into_iter()
        .find(|(_, c)| *c >= q * total)
        .map(|(le, _)| le)
}

/// Lateness figures of a set of fires, from their `sked-due-at` and `sked-fired-at` headers
/// (and the time this consumer received them).
struct Fires {
    lateness_ms: Vec<i64>,
    received_late_ms: Vec<i64>,
    early: usize,
    last_fired_ms: i64,
}

/// Reads `expected` fires from `topic`, keeping those whose job id starts with `prefix`.
fn collect_fires(
    topic: &str,
    partitions: i32,
    expected: usize,
    prefix: &str,
    timeout: Duration,
) -> Fires {
    use rdkafka::Message;
    let consumer = sked_e2e::reader_from_start(topic, partitions);
    let mut fires = Fires {
        lateness_ms: Vec::new(),
        received_late_ms: Vec::new(),
        early: 0,
        last_fired_ms: 0,
    };
    let deadline = Instant::now() + timeout;
    while fires.lateness_ms.len() < expected && Instant::now() < deadline {
        let Some(Ok(msg)) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let received = chrono::Utc::now().timestamp_millis();
        let h = |name: &str| sked_e2e::header(&msg.detach(), name);
        if !h("sked-job-id").is_some_and(|id| id.starts_with(prefix)) {
            continue;
        }
        let due: i64 = h("sked-due-at")
            .and_then(|v| v.parse().ok())
            .expect("sked-due-at");
        let fired: i64 = h("sked-fired-at")
            .and_then(|v| v.parse().ok())
            .expect("sked-fired-at");
        if fired < due || received < due {
            fires.early += 1;
        }
        fires.lateness_ms.push(fired - due);
        fires.received_late_ms.push(received - due);
        fires.last_fired_ms = fires.last_fired_ms.max(fired);
        let _ = msg.offset();
    }
    fires
}

fn pct(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn report(name: &str, fires: &mut Fires, expected: usize) {
    fires.lateness_ms.sort_unstable();
    fires.received_late_ms.sort_unstable();
    let l = &fires.lateness_ms;
    let r = &fires.received_late_ms;
    println!(
        "{name}: {} of {expected} fired; fired_at-due_at ms p50 {} p99 {} p99.9 {} max {}; consumer-received-due ms p50 {} p99 {} max {}; early {}",
        l.len(),
        pct(l, 0.5),
        pct(l, 0.99),
        pct(l, 0.999),
        l.last().copied().unwrap_or(-1),
        pct(r, 0.5),
        pct(r, 0.99),
        r.last().copied().unwrap_or(-1),
        fires.early
    );
}

async fn put_due(
    config: &sked_core::config::Config,
    prefix: &str,
    dues: &[chrono::DateTime<chrono::Utc>],
) {
    put_due_as(config, prefix, dues, r#""delay":"1d""#).await;
}

/// Like [`put_due`], with `when` as the schedule fields of each request (e.g. a cron).
async fn put_due_as(
    config: &sked_core::config::Config,
    prefix: &str,
    dues: &[chrono::DateTime<chrono::Utc>],
    when: &str,
) {
    let jobs: Vec<(String, Option<chrono::DateTime<chrono::Utc>>)> = dues
        .iter()
        .enumerate()
        .map(|(i, due)| {
            (
                format!(r#"{{"id":"{prefix}-{i}","app":"bench",{when},"payload":{{"n":{i},"text":"scheduler benchmark payload of about a hundred bytes......"}}}}"#),
                Some(*due),
            )
        })
        .collect();
    sked_e2e::scheduler::put_jobs(config, &jobs, chrono::Utc::now()).await;
}

async fn scheduler(args: Args) {
    use sked_e2e::scheduler::{Scheduler, metric};
    let redis = PrivateRedis::start_with(false);
    let url = redis.url();
    let ns = unique("sbench");
    let mut sets = vec![
        format!("redis.url={url}"),
        "redis.key_prefix=sked".to_owned(),
    ];
    sets.extend(args.sets.iter().cloned());
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let config = test_config(&ns, &sets);
    let mut topic_config = config.clone();
    topic_config.topics.partitions = args.partitions;
    create_topics(&topic_config, args.partitions).await;
    let topic = config.topics.due.clone();
    println!(
        "scheduler benchmark: {} partitions on {topic}, scheduler in-process, private Redis",
        args.partitions
    );

    let scheduler = Scheduler::start(config.clone()).await;
    let mut fired_before = 0.0;
    // Steady load: fires spread evenly at each rate.
    let steady: &[u64] = if args.phases.contains("steady") {
        &[2_000, 10_000]
    } else {
        &[]
    };
    for &rate in steady {
        let n = (rate * args.seconds.unwrap_or(10)) as usize;
        let start = chrono::Utc::now() + chrono::Duration::seconds(3);
        let prefix = format!("steady{rate}");
        let dues: Vec<_> = (0..n)
            .map(|i| start + chrono::Duration::microseconds((i as f64 * 1e6 / rate as f64) as i64))
            .collect();
        put_due(&config, &prefix, &dues).await;
        let topic2 = topic.clone();
        let parts = args.partitions;
        let mut fires = tokio::task::spawn_blocking(move || {
            collect_fires(
                &topic2,
                parts,
                n,
                &format!("{prefix}-"),
                Duration::from_secs(args.seconds.unwrap_or(10) + 60),
            )
        })
        .await
        .expect("reader");
        report(
            &format!("steady {rate}/s for {}s", args.seconds.unwrap_or(10)),
            &mut fires,
            n,
        );
        fired_before += n as f64;
    }

    // Herd: every job due in the same millisecond.
    if args.phases.contains("herd") {
        let herd_due = chrono::Utc::now() + chrono::Duration::seconds(5);
        let dues = vec![herd_due; args.herd];
        put_due(&config, "herd", &dues).await;
        let topic2 = topic.clone();
        let (parts, herd) = (args.partitions, args.herd);
        let mut fires = tokio::task::spawn_blocking(move || {
            collect_fires(&topic2, parts, herd, "herd-", Duration::from_secs(120))
        })
        .await
        .expect("reader");
        let span = fires.last_fired_ms - herd_due.timestamp_millis();
        report(&format!("herd of {}", args.herd), &mut fires, args.herd);
        println!("herd: last fire produced {span} ms after the due time");
        fired_before += args.herd as f64;
    }
    let text = scheduler.metrics().await;
    println!(
        "scheduler early_fires_total {}",
        metric(&text, "sked_scheduler_early_fires_total")
    );
    scheduler.stop().await;

    // Drain: jobs already due while no scheduler runs, then one starts. With `--drain-kind
    // cron` they are recurring (hourly in a zone with DST), so every fire also computes the
    // job's next slot and puts it back in the due index, in the same ack.
    if !args.phases.contains("drain") {
        return;
    }
    let due = chrono::Utc::now() - chrono::Duration::seconds(1);
    let dues = vec![due; args.drain];
    let inserted = Instant::now();
    let when = match args.drain_kind.as_str() {
        "cron" => r#""cron":"0 0 * * * *","timezone":"America/New_York""#,
        _ => r#""delay":"1d""#,
    };
    put_due_as(&config, "drain", &dues, when).await;
    println!(
        "drain: {} {} jobs stored in {:.1} s",
        args.drain,
        args.drain_kind,
        inserted.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let scheduler = Scheduler::start(config.clone()).await;
    let target = args.drain as f64;
    let mut last = 0.0;
    while last < target && started.elapsed() < Duration::from_secs(600) {
        last = metric(&scheduler.metrics().await, "sked_scheduler_fired_total");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "drain ({}): {last} of {target} fired in {secs:.2} s = {:.0} fires/s",
        args.drain_kind,
        last / secs
    );
    if args.drain_kind == "cron" {
        // Every drained job must be back in the due index, at its next slot. The fired
        // counter counts sends; the acks that put the jobs back may still be landing, so
        // look again for up to 10 s before reporting.
        let mut left = due_count(&url, "sked", config.redis.shards).await;
        let since = Instant::now();
        while (left as f64) < target && since.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = due_count(&url, "sked", config.redis.shards).await;
        }
        println!(
            "drain (cron): {left} jobs due again at their next slot ({:.1} s after the last send)",
            since.elapsed().as_secs_f64()
        );
    }
    let _ = fired_before;
    scheduler.stop().await;
}

/// Worker: executed jobs/s with a no-op handler, and due → handler start latency at a paced
/// 5,000 fires/s through a real scheduler.
async fn worker(args: Args) {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    };

    use sked_e2e::{scheduler::Scheduler, worker::Worker};
    use sked_worker::{Handlers, Job};

    let redis = PrivateRedis::start_with(false);
    let url = redis.url();
    let ns = unique("wbench");
    let mut sets = vec![
        format!("redis.url={url}"),
        "redis.key_prefix=sked".to_owned(),
        format!("worker.group_id={ns}-worker"),
        "worker.max_in_flight=1024".to_owned(),
    ];
    if args.limits {
        // Active on every job, never binding: 1,000,000 starts/s for the app, and a
        // concurrency key of 1,000 per value over 1,000 values (the payload's `n`).
        sets.push("global_limits.apps.bench={ per_second = 1000000.0, burst = 1000 }".to_owned());
        sets.push(r#"global_limits.concurrency.customer={ field = "n", max = 1000 }"#.to_owned());
    }
    sets.extend(args.sets.iter().cloned());
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let config = test_config(&ns, &sets);
    let mut topic_config = config.clone();
    topic_config.topics.partitions = args.partitions;
    create_topics(&topic_config, args.partitions).await;
    println!(
        "worker benchmark: {} partitions, worker in-process (max_in_flight 1024), no-op custom handler, global limits {}",
        args.partitions,
        if args.limits {
            "on (a start rate and a concurrency key per job, never binding)"
        } else {
            "off"
        }
    );

    // Phase 1: a backlog of fires already on the due topic, executed as fast as possible.
    let n = args.requests;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let now = chrono::Utc::now();
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("w-{i}");
        let payload = format!(r#"{{"n":{}}}"#, i % 1000);
        let (value, headers) = sked_e2e::worker::fire(&id, "bench", now, &payload, 1);
        let mut h = rdkafka::message::OwnedHeaders::new();
        for (k, v) in &headers {
            h = h.insert(rdkafka::message::Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        loop {
            let record = FutureRecord::to(&config.topics.due)
                .key(&id)
                .payload(&value)
                .headers(h.clone());
            match producer.send_result(record) {
                Ok(f) => {
                    acks.push(f);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    for a in acks {
        let _ = a.await;
    }
    let count = Arc::new(AtomicU64::new(0));
    let first = Arc::new(Mutex::new(None::<Instant>));
    let last = Arc::new(Mutex::new(None::<Instant>));
    let (c, f, l) = (count.clone(), first.clone(), last.clone());
    let handlers = Handlers::new().with("bench", move |_job: Job| {
        let (c, f, l) = (c.clone(), f.clone(), l.clone());
        async move {
            let now = Instant::now();
            f.lock().expect("lock").get_or_insert(now);
            *l.lock().expect("lock") = Some(now);
            c.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    });
    let worker = Worker::start_with(config.clone(), handlers).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while count.load(Ordering::Relaxed) < n as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = count.load(Ordering::Relaxed);
    let span = match (*first.lock().expect("lock"), *last.lock().expect("lock")) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    println!(
        "backlog: {done} of {n} executed in {span:.2} s (first to last handler call) = {:.0} jobs/s",
        done as f64 / span.max(1e-9)
    );
    worker.stop().await;

    // Phase 2: 5,000 fires/s due through the scheduler; latency = handler start - due_at.
    let rate = 5_000u64;
    let total = (rate * args.seconds.unwrap_or(10)) as usize;
    let lat = Arc::new(Mutex::new(Vec::<i64>::with_capacity(total)));
    let l2 = lat.clone();
    let handlers = Handlers::new().with("bench", move |job: Job| {
        let l2 = l2.clone();
        async move {
            let ms = (chrono::Utc::now() - job.due_at)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0;
            l2.lock().expect("lock").push(ms.round() as i64);
            Ok(())
        }
    });
    let worker = Worker::start_with(config.clone(), handlers).await;
    let scheduler = Scheduler::start(config.clone()).await;
    let start = chrono::Utc::now() + chrono::Duration::seconds(3);
    let dues: Vec<_> = (0..total)
        .map(|i| start + chrono::Duration::microseconds((i as f64 * 1e6 / rate as f64) as i64))
        .collect();
    put_due(&config, "paced", &dues).await;
    let deadline = Instant::now() + Duration::from_secs(args.seconds.unwrap_or(10) + 60);
    while lat.lock().expect("lock").len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut v = lat.lock().expect("lock").clone();
    v.sort_unstable();
    let early = v.iter().filter(|x| **x < 0).count();
    println!(
        "paced {rate}/s for {}s: {} of {total} started; due -> handler start ms p50 {} p99 {} max {}; started before due {early}",
        args.seconds.unwrap_or(10),
        v.len(),
        pct(&v, 0.5),
        pct(&v, 0.99),
        v.last().copied().unwrap_or(-1)
    );
    scheduler.stop().await;
    worker.stop().await;
}

/// DLQ replay: N dead letters (stage execute, full header set) replayed with no rate limit by an
/// in-process replayer; records/s from the replay request to its end (selection included).
async fn replay(args: Args) {
    use sked_e2e::replayer::{
        Failure, Record, Replayer, dlq_headers, post, produce_all, replayer_config, wait_replay,
    };

    let ns = unique("rbench");
    let mut sets = vec!["redis.key_prefix=sked".to_owned()];
    sets.extend(args.sets.iter().cloned());
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let config = replayer_config(&ns, &sets);
    let mut topic_config = config.clone();
    topic_config.topics.partitions = args.partitions;
    create_topics(&topic_config, args.partitions).await;
    let n = args.requests;
    let now = chrono::Utc::now();
    let target = config.topics.due.clone();
    let ids: Vec<String> = (0..n).map(|i| format!("r-{i}")).collect();
    let records: Vec<Record> = ids
        .iter()
        .map(|id| Record {
            key: Some(id.as_bytes().to_vec()),
            value: Some(br#"{"payload":"a dead letter of about a hundred bytes, as a fired envelope would be......"}"#.to_vec()),
            headers: dlq_headers(&Failure {
                original_topic: &target,
                stage: "execute",
                reason: "handler_failed",
                message: "http status 500",
                at: now,
                app: "bench",
                job_id: id,
                attempts: 3,
                replay_count: None,
            }),
            partition: None,
        })
        .collect();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    produce_all(&producer, &config.topics.dlq, &records).await;
    println!(
        "replay benchmark: {n} dead letters on {} partitions, replayer in-process, rate unlimited",
        args.partitions
    );
    let replayer = Replayer::start(config.clone()).await;
    let api = replayer.api();
    let started = Instant::now();
    let (status, body) = post(
        &format!("{api}/v1/dlq/replays"),
        &serde_json::json!({"rate": 0}),
    )
    .await;
    assert!(status.is_success(), "replay refused: {body}");
    let selected = started.elapsed();
    let id = body["id"].as_str().expect("replay id").to_owned();
    let done = wait_replay(&api, &id, Duration::from_secs(600)).await;
    let total = started.elapsed();
    println!(
        "replayed {} of {n} in {:.2} s (selection {:.2} s) = {:.0} records/s end to end, {:.0} records/s publishing",
        done["published"],
        total.as_secs_f64(),
        selected.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        n as f64 / (total - selected).as_secs_f64().max(1e-9)
    );
    replayer.stop().await;
}

/// `sked-bench chaos`: one chaos run; exit 1 when its report failed.
async fn chaos(args: Args) {
    let defaults = sked_e2e::chaos::Options::default();
    let options = sked_e2e::chaos::Options {
        duration: args.seconds.map_or(defaults.duration, Duration::from_secs),
        rate: args.rate.map_or(defaults.rate, |r| r as f64),
        kill_every: args
            .kill_every
            .map_or(defaults.kill_every, Duration::from_secs),
        seed: args
            .seed
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis() as u64),
        ..defaults
    };
    println!(
        "chaos: {} s of jobs at {}/s, seed {}",
        options.duration.as_secs(),
        options.rate,
        options.seed
    );
    match sked_e2e::chaos::run(options).await {
        Ok(report) => {
            println!("{}", report.render());
            if report.failed() {
                std::process::exit(1);
            }
        }
        Err(err) => {
            eprintln!("sked-bench chaos: {err:#}");
            std::process::exit(2);
        }
    }
}
