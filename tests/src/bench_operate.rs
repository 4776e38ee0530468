//! `sked-bench operate [--requests N]`: the operating API at scale. Stores N pending jobs
//! (default 1,000,000; 100 apps, 1,000 tenants, a `batch` label of 100 values, so each value
//! matches 1 %; a 94-byte payload like the ingest benchmark) straight into a private Redis,
//! then reports Redis bytes per pending job (indexes included), the latency of `GET /v1/jobs`
//! (first page unfiltered and filtered by app, tenant and label, and a later page through a
//! cursor), of `GET /v1/stats`, and the rate of a bulk cancel of one label value.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use sked_core::{
    request::{Limits, Origin, parse},
    store::{Op, Store},
};

use crate::{PrivateRedis, create_topics, http, ingest::Ingest, test_config, unique};

const PAYLOAD: &str = r#"{"phone":"+8801712345678","text":"Your order 1234567 has shipped and arrives tomorrow","n":42}"#;

/// Redis `used_memory` (bytes) of the server at `url`.
pub async fn used_memory(url: &str) -> u64 {
    let mut conn = crate::redis(url).await;
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

/// The `q` quantile of sorted samples.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// Times `n` calls of `GET {path}`; prints p50 / p99 / max in ms.
pub async fn time_get(api: &str, name: &str, path: &str, n: usize) {
    time_get_with(&http(), api, name, path, n).await;
}

/// [`time_get`] with `client`.
pub async fn time_get_with(client: &reqwest::Client, api: &str, name: &str, path: &str, n: usize) {
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let resp = client
            .get(format!("{api}{path}"))
            .send()
            .await
            .expect("get");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        let _ = resp.bytes().await.expect("body");
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "{name:<34} p50 {:6.2} ms   p99 {:6.2} ms   max {:6.2} ms   ({n} calls)",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    );
}

/// `&cursor=…` after `pages` pages of 100 of the listing filtered by `filter`.
async fn cursor_after(api: &str, filter: &str, pages: usize) -> String {
    let mut cursor = String::new();
    for _ in 0..pages {
        let page: Value = http()
            .get(format!("{api}/v1/jobs?limit=100{filter}{cursor}"))
            .send()
            .await
            .expect("page")
            .json()
            .await
            .expect("json");
        cursor = format!("&cursor={}", page["next_cursor"].as_str().expect("cursor"));
    }
    cursor
}

/// A private Redis holding the benchmark's pending jobs, and the configuration that reads it.
pub struct Loaded {
    /// The Redis (stopped on drop).
    pub redis: PrivateRedis,
    /// Test configuration on it (key prefix `sked`).
    pub config: sked_core::config::Config,
}

/// Runs the benchmark with `jobs` pending jobs.
pub async fn run(jobs: usize) {
    let Loaded {
        redis: _redis,
        config,
    } = load(jobs).await;
    let ingest = Ingest::start(config.clone()).await;
    run_api(&ingest).await;
    ingest.stop().await;
}

/// Stores `jobs` pending jobs into a new private Redis; prints the time and bytes per job.
pub async fn load(jobs: usize) -> Loaded {
    load_with(jobs, 0).await
}

/// [`load`], with every `cron_every`-th job a daily cron (`m h * * *`, spread over the day)
/// instead of a one-shot; 0: none.
pub async fn load_with(jobs: usize, cron_every: usize) -> Loaded {
    let redis = PrivateRedis::start_with(false);
    let url = redis.url();
    let ns = unique("bench-op");
    let config = test_config(&ns, &[&format!("redis.url={url}"), "redis.key_prefix=sked"]);
    create_topics(&config, 1).await;
    let store = Store::connect(&config.redis).await.expect("redis");
    let before = used_memory(&url).await;
    let now = Utc::now();
    let limits = Limits::default();
    let origin = Origin::new(now);
    let started = Instant::now();
    let mut ops = Vec::with_capacity(5000);
    for i in 0..jobs {
        let at = now + chrono::Duration::seconds(3600 + (i as i64 * 2_592_000 / jobs as i64));
        let when = if cron_every > 0 && i % cron_every == 0 {
            format!(r#""cron":"{} {} * * *""#, i % 60, (i / 60) % 24)
        } else {
            format!(
                r#""run_at":"{}""#,
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            )
        };
        let json = format!(
            r#"{{"id":"bench-{i:07}","app":"app{}","tenant":"tenant{}","labels":{{"batch":"b{}"}},{when},"payload":{PAYLOAD}}}"#,
            i % 100,
            i % 1000,
            (i / 7) % 100,
        );
        let spec = parse(json.as_bytes(), &limits, &origin).expect("request");
        ops.push(Op::insert(spec, json.as_bytes()));
        if ops.len() == 5000 {
            store.apply(&ops).await.expect("store");
            ops.clear();
        }
    }
    store.apply(&ops).await.expect("store");
    let after = used_memory(&url).await;
    println!(
        "stored                             {jobs} jobs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "redis memory                       {:.0} bytes per pending job, indexes included (used_memory delta / jobs)",
        (after - before) as f64 / jobs as f64
    );
    Loaded { redis, config }
}

/// Bench body of [`run`], after the load.
async fn run_api(ingest: &Ingest) {
    let api = ingest.api();
    let n = 200;
    time_get(&api, "first page, unfiltered", "/v1/jobs?limit=100", n).await;
    time_get(
        &api,
        "first page, app (1 %)",
        "/v1/jobs?limit=100&app=app7",
        n,
    )
    .await;
    time_get(
        &api,
        "first page, tenant (0.1 %)",
        "/v1/jobs?limit=100&tenant=tenant77",
        n,
    )
    .await;
    time_get(
        &api,
        "first page, label (1 %)",
        "/v1/jobs?limit=100&label=batch%3Db7",
        n,
    )
    .await;
    // Later pages: the cursor after 50 unfiltered pages, and after 20 of one label.
    let cursor = cursor_after(&api, "", 50).await;
    time_get(
        &api,
        "page 51 through a cursor",
        &format!("/v1/jobs?limit=100{cursor}"),
        n,
    )
    .await;
    let label = "&label=batch%3Db9";
    let cursor = cursor_after(&api, label, 20).await;
    time_get(
        &api,
        "label page 21 through a cursor",
        &format!("/v1/jobs?limit=100{label}{cursor}"),
        n,
    )
    .await;
    time_get(
        &api,
        "first page, order=created",
        "/v1/jobs?limit=100&order=created",
        n,
    )
    .await;
    let cursor = cursor_after(&api, "&order=created", 50).await;
    time_get(
        &api,
        "order=created page 51",
        &format!("/v1/jobs?limit=100&order=created{cursor}"),
        n,
    )
    .await;
    time_get(&api, "GET /v1/stats", "/v1/stats", 50).await;

    let start = Instant::now();
    let op: Value = http()
        .post(format!("{api}/v1/operations"))
        .json(&json!({"action": "cancel", "selector": {"label": ["batch=b3"]}, "rate": 100000}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = op["id"].as_str().expect("id").to_owned();
    let done = crate::operation_succeeded(&api, &id, Duration::from_secs(600)).await;
    let secs = start.elapsed().as_secs_f64();
    let n = done["processed"].as_u64().unwrap_or(0);
    // The operation's own span, created to finished (the poll above adds up to 50 ms).
    let span = |k: &str| {
        done[k]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let own = match (span("created_at"), span("finished_at")) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => f64::NAN,
    };
    println!(
        "bulk cancel (1 % by label)         {n} jobs: created → finished {own:.2} s = {:.0} jobs/s; POST → seen succeeded {secs:.2} s = {:.0} jobs/s",
        n as f64 / own,
        n as f64 / secs
    );
}
