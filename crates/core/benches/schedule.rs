//! Throughput of the schedule math, printed as figures (not a timed test):
//!
//! ```text
//! CARGO_TARGET_DIR=target cargo bench -p sked-core --bench schedule
//! ```
//!
//! - next-slot computations per second on one core, cron expressions with a zone;
//! - time to preview 1,000 slots.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use sked_core::schedule::{CronExpr, DstPolicy, Gap, Limit, Overlap, PreviewRule, preview};

const CASES: &[(&str, Tz)] = &[
    ("0 9 * * 1-5", chrono_tz::Asia::Dhaka),
    ("*/15 * * * *", chrono_tz::America::New_York),
    ("30 2 * * *", chrono_tz::America::New_York),
    ("0 0 * * 5L", chrono_tz::Europe::London),
    ("0 12 15W * *", chrono_tz::Australia::Lord_Howe),
    ("0 0 9 ? * MON#2", chrono_tz::Pacific::Chatham),
];

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default() // 2026-01-01
}

/// Chained `next_after` calls for about `budget`; returns calls per second.
fn next_slots_per_second(expr: &CronExpr, tz: Tz, budget: Duration) -> f64 {
    let limit = start() + TimeDelta::days(365 * 50);
    let mut calls = 0u64;
    let began = Instant::now();
    let mut t = start();
    while began.elapsed() < budget {
        for _ in 0..10_000 {
            t = match expr.next_after(black_box(t), tz) {
                Some(next) if next < limit => next,
                _ => start(),
            };
            calls += 1;
        }
    }
    calls as f64 / began.elapsed().as_secs_f64()
}

fn main() {
    let budget = Duration::from_millis(700);
    println!("next-slot computations per second (one core, chained next_after):");
    for (text, tz) in CASES {
        let expr = CronExpr::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        let rate = next_slots_per_second(&expr, *tz, budget);
        println!("  {text:<18} {:<20} {:>12.0}/s", tz.name(), rate);
        let both = expr.clone().with_dst(DstPolicy {
            gap: Gap::Skip,
            overlap: Overlap::Both,
        });
        let rate = next_slots_per_second(&both, *tz, budget);
        println!(
            "  {text:<18} {:<20} {:>12.0}/s  (dst skip/both)",
            tz.name(),
            rate
        );
    }

    println!("preview of 1,000 slots (best and median of 200 runs):");
    for (text, tz) in CASES {
        let expr = CronExpr::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        let mut runs: Vec<Duration> = (0..200)
            .map(|_| {
                let began = Instant::now();
                let slots = preview(PreviewRule::Cron(&expr), *tz, start(), Limit::Count(1000));
                black_box(slots);
                began.elapsed()
            })
            .collect();
        runs.sort();
        println!(
            "  {text:<18} {:<20} best {:>7.3} ms  median {:>7.3} ms",
            tz.name(),
            runs[0].as_secs_f64() * 1e3,
            runs[runs.len() / 2].as_secs_f64() * 1e3
        );
    }
}
