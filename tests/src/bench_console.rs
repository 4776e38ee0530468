//! `sked-bench console [--requests N]`: the console's server time per page at N pending jobs
//! (the jobs of `sked-bench operate`: 100 apps, 1,000 tenants, a `batch` label of 100
//! values; every `--cron-every`-th job a daily cron, which `/schedules` lists). Starts ingest, the replayer and the console in-process, signs in with a token,
//! then times each page's first render (the console's calls to the API included), as a
//! browser without cache would fetch it: p50 / p99 / max over 100 loads.

use std::time::Instant;

use crate::{
    TEST_TOKEN,
    bench_operate::{Loaded, load_with, percentile},
    console::Console,
    ingest::Ingest,
    replayer::Replayer,
};

async fn time_page(client: &reqwest::Client, console: &Console, cookie: &str, path: &str) {
    let n = 100;
    let mut ms = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let start = Instant::now();
        let resp = client
            .get(console.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .expect("page");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        bytes = resp.bytes().await.expect("body").len();
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "{path:<34} p50 {:6.2} ms   p99 {:6.2} ms   max {:6.2} ms   ({n} loads, {bytes} bytes)",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    );
}

/// Runs the benchmark with `jobs` pending jobs, every `cron_every`-th a cron (what
/// `/schedules` lists; 0: none), the rest one-shots.
pub async fn run(jobs: usize, cron_every: usize) {
    let Loaded {
        redis: _redis,
        mut config,
    } = load_with(jobs, cron_every).await;
    let ingest = Ingest::start(config.clone()).await;
    // These jobs were stored before any ingest ran, as by a version without the recurring
    // index: ingest walks them into it at its start. Time that walk, and time the pages
    // after it (until then `kind` listings read the state sets).
    let started = Instant::now();
    let store = sked_core::store::Store::connect(&config.redis)
        .await
        .expect("redis");
    while !store.recurring_ready().await.expect("redis") {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    println!(
        "recurring index backfilled         {jobs} jobs walked in {:.1} s (ingest's start)",
        started.elapsed().as_secs_f64()
    );
    config.replayer.listen_addr = ([127, 0, 0, 1], 0).into();
    let replayer = Replayer::start(config.clone()).await;
    config.console.api_url = ingest.api();
    config.console.dlq_api_url = replayer.api();
    config.console.listen_addr = ([127, 0, 0, 1], 0).into();
    let console = Console::start(config).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let signed = client
        .post(console.url("/login"))
        .form(&[("token", TEST_TOKEN), ("next", "/")])
        .send()
        .await
        .expect("sign in");
    let cookie = signed.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("cookie pair")
        .to_owned();
    for path in [
        "/",
        "/jobs",
        "/jobs?app=app7",
        "/jobs?tenant=tenant77",
        "/jobs?label=batch%3Db7",
        "/schedules",
        "/jobs/bench-0000007",
        "/ops",
        "/dlq",
        "/preview?cron=0+30+2+*+*+*&timezone=America%2FNew_York&n=100",
    ] {
        time_page(&client, &console, &cookie, path).await;
    }
    console.stop().await;
    replayer.stop().await;
    ingest.stop().await;
}
