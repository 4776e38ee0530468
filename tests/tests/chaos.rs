//! The short chaos run (about 2 minutes of faults, then the settle): nothing lost, nothing
//! early, no wrong fire id, no recurring job past `max_runs`, every killed service back, while
//! services are killed -9 every few seconds, Redis restarts once and the broker pauses once.
//! The longer runs are `scripts/chaos.sh --seconds 1800` (docs/reliability.md).

use std::time::Duration;

use sked_e2e::chaos::{Options, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_minutes_of_kills_a_redis_restart_and_a_broker_pause_lose_nothing_and_fire_nothing_early()
 {
    let seed = std::env::var("SKED_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis() as u64);
    let options = Options {
        duration: Duration::from_secs(120),
        settle: Duration::from_secs(90),
        seed,
        ..Options::default()
    };
    let report = run(options).await.expect("the chaos stack starts");
    let text = report.render();
    println!("{text}");
    assert!(!report.failed(), "{text}");
    for kind in ["o", "e", "f"] {
        let n = report.jobs.get(kind).copied().unwrap_or(0);
        assert!(n > 100, "only {n} jobs of kind {kind}\n{text}");
    }
    // One-shots 1 fire each, recurring 4, fail-once 1 (two executions): with > 100 of each,
    // more than 600 fires, and more than 700 executions.
    assert!(report.fires > 600, "{text}");
    assert!(report.executions > 700, "{text}");
    assert!(
        report.retries_seen > 100,
        "fail-once jobs were retried\n{text}"
    );
    assert!(report.kills.len() >= 5, "{text}");
    let outages: Vec<&str> = report.outages.iter().map(|o| o.what).collect();
    assert_eq!(outages, ["redis down", "broker paused"], "{text}");
}
