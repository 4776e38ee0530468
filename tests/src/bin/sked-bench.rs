//! `sked-bench`: sked's benchmarks, printed as figures. Run through `scripts/bench.sh`, which
//! builds in release mode and starts the broker.
//!
//! `sked-bench ingest [--requests N] [--rate R]`: publishes N schedule requests (payload about
//! 100 bytes, due in a day) to the ingest topic of an in-process ingest service backed by a
//! private Redis, and reports requests/s from the first publish to the last durable write,
//! ingest latency percentiles (Kafka timestamp → durable write, from the service's
//! histogram), and Redis bytes per pending job.

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
}

fn parse_args() -> Result<(String, Args), String> {
    let mut it = std::env::args().skip(1);
    let cmd = it
        .next()
        .ok_or("usage: sked-bench ingest [--requests N] [--rate PER_SEC] [--partitions P]")?;
    let mut args = Args {
        requests: 200_000,
        rate: None,
        partitions: 6,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("{flag}: `{value}` is not a number");
        match flag.as_str() {
            "--requests" => args.requests = value.parse().map_err(bad)?,
            "--rate" => args.rate = Some(value.parse().map_err(bad)?),
            "--partitions" => args.partitions = value.parse().map_err(bad)?,
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
        other => {
            eprintln!("sked-bench: unknown benchmark {other}");
            std::process::exit(2);
        }
    }
}

async fn redis_used_memory(url: &str) -> u64 {
    let mut conn = sked_e2e::redis(url).await;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

async fn ingest(args: Args) {
    let redis = PrivateRedis::start_with(false);
    let url = redis.url();
    let ns = unique("bench");
    let config = test_config(
        &ns,
        &[
            &format!("redis.url={url}"),
            "redis.key_prefix=sked",
            "ingest.batch_max=5000",
            "ingest.batch_linger=5ms",
        ],
    );
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
        "ingest benchmark: {} requests, payload {} bytes, {} partitions",
        args.requests,
        payload.len(),
        args.partitions
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
