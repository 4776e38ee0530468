//! sked while Redis Cluster slots move between primaries under load, as in a resharding (a
//! platform team adds a node, or rebalances). On a private six-node cluster, 3,000 one-shot jobs
//! due 6–12 s ahead and 48 recurring jobs (every second, 8 runs) are stored through ingest;
//! then, while more one-shot jobs stream in (each due 3 s after it is sent) and earlier ones
//! fire from two scheduler replicas, the slots of three shards of one primary move to a second
//! primary and the slots of three shards of that second primary move to the third. Each slot
//! moves by hand, two keys per `MIGRATE` with a pause after each, so for seconds at a time some
//! keys of a shard (due index, in-flight set, run counters, job records) are on the source and
//! some on the target.
//!
//! Every one-shot job fires, for the time it was given, never before it; every recurring job
//! fires its 8 slots, no more and none lost; a fire id goes out again only after a reclaimed
//! lease (at most as many repeats as reclaims: at least once per fire id, as documented); and
//! the store ends consistent: nothing due or in flight, every job dispatched, one record per
//! job. A failure reports every lost, repeated,
//! early or stuck job with its shard, its slot, whether that slot moved, its state in Redis and
//! which primaries hold its record.
//!
//! `RUST_LOG=warn` (or finer) shows the services' logs in the test output.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use rdkafka::{Message, producer::FutureProducer};
use sked_core::{
    job::{JobId, Shard},
    store::{JobState, Store},
};
use sked_e2e::{
    admin_metrics,
    cluster::{MigratePace, PrivateCluster, SlotMigration},
    create_topics, eventually, header, header_ms,
    ingest::Ingest,
    produce, producer, read_topic,
    scheduler::{Scheduler, metric},
    stream_one_shots, unique,
};

/// One-shot jobs stored before the slots move, due [`SEED_FROM_MS`] to
/// [`SEED_FROM_MS`] + [`SEED_SPREAD_MS`] after the first is sent.
const SEED: usize = 3000;
const SEED_FROM_MS: i64 = 6000;
const SEED_SPREAD_MS: i64 = 6000;
/// One-shot jobs sent while the slots move, one every [`STREAM_PACE`], each due
/// [`STREAM_LEAD_MS`] after it is sent.
const STREAM: usize = 1500;
const STREAM_PACE: Duration = Duration::from_millis(6);
const STREAM_LEAD_MS: i64 = 3000;
/// Recurring jobs (`every` 1 s), each with `max_runs` [`TICK_RUNS`].
const TICKS: usize = 48;
const TICK_RUNS: usize = 8;
/// Shards whose slots move away from each of the two source primaries.
const SHARDS_PER_SOURCE: usize = 3;
/// Two keys per `MIGRATE`, 25 ms apart: a slot of ~200 keys stays half-migrated for ~3 s.
const PACE: MigratePace = MigratePace {
    keys_per_batch: 2,
    pause: Duration::from_millis(25),
};
/// How long the schedulers' producer holds each fire before sending it.
const SCHEDULER_PRODUCE_LATENCY: &str = "kafka.rdkafka.linger.ms=100";
/// Records produced concurrently while seeding.
const SEED_CONCURRENCY: usize = 256;

fn one_shot(id: &str, run_at: DateTime<Utc>) -> String {
    let at = run_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    format!(r#"{{"id":"{id}","app":"sms","run_at":"{at}"}}"#)
}

/// Produces `(id, body)` records to `topic`, `concurrency` at a time, and waits for every ack.
async fn produce_all(kafka: &FutureProducer, topic: &str, records: Vec<(String, String)>) {
    futures::stream::iter(records)
        .map(|(id, body)| async move {
            produce(
                kafka,
                topic,
                None,
                Some(id.as_bytes()),
                Some(body.as_bytes()),
                &[],
            )
            .await
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
}

/// Sends [`SEED`] one-shot jobs at once; returns each job's due instant (epoch ms).
async fn seed(topic: &str) -> BTreeMap<String, i64> {
    let kafka = producer();
    let base = Utc::now() + chrono::Duration::milliseconds(SEED_FROM_MS);
    let mut due = BTreeMap::new();
    let mut records = Vec::with_capacity(SEED);
    for i in 0..SEED {
        let id = format!("seed-{i}");
        let offset = SEED_SPREAD_MS * i as i64 / SEED as i64;
        let run_at = base + chrono::Duration::milliseconds(offset);
        due.insert(id.clone(), run_at.timestamp_millis());
        records.push((id.clone(), one_shot(&id, run_at)));
    }
    produce_all(&kafka, topic, records).await;
    due
}

/// Sends the [`TICKS`] recurring jobs at once.
async fn ticks(topic: &str) -> Vec<String> {
    let kafka = producer();
    let ids: Vec<String> = (0..TICKS).map(|i| format!("tick-{i}")).collect();
    let records = ids
        .iter()
        .map(|id| {
            let body =
                format!(r#"{{"id":"{id}","app":"sms","every":"1s","max_runs":{TICK_RUNS}}}"#);
            (id.clone(), body)
        })
        .collect();
    produce_all(&kafka, topic, records).await;
    ids
}

/// Where each shard lives: shard → (slot, primary port).
async fn shard_map(cluster: &PrivateCluster, shards: u16) -> BTreeMap<u16, (u16, u16)> {
    let mut map = BTreeMap::new();
    for s in 0..shards {
        let slot = cluster.keyslot(&format!("{{s{s}}}")).await;
        map.insert(s, (slot, cluster.slot_owners(slot).await.primary));
    }
    map
}

/// `p50/p99/max` of `values` (sorts them).
fn percentiles(values: &mut [i64]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    values.sort_unstable();
    let at = |q: usize| values[(values.len() - 1) * q / 100];
    format!("{}/{}/{}", at(50), at(99), at(100))
}

/// What the store and the cluster say about one job, for failure reports: its shard and slot,
/// whether that slot moved (and when, relative to the test start), its state and next due
/// time, whether it is in flight, and which primaries hold its record.
struct Inspector<'a> {
    store: &'a Store,
    cluster: &'a PrivateCluster,
    shard_slots: &'a BTreeMap<u16, (u16, u16)>,
    moved: &'a BTreeMap<u16, SlotMigration>,
    origin: Instant,
}

impl Inspector<'_> {
    async fn describe(&self, id: &str) -> String {
        let job = JobId::parse(id).unwrap();
        let keys = self.store.keys();
        let shard = keys.shard_of(&job);
        let (slot, _) = self.shard_slots[&shard.index()];
        let moved = self
            .moved
            .get(&slot)
            .map_or("slot not moved".to_owned(), |m| {
                let from = m.started.saturating_duration_since(self.origin);
                format!(
                    "slot moved {} -> {} during {:.1}-{:.1}s",
                    m.from,
                    m.to,
                    from.as_secs_f64(),
                    (from + m.took).as_secs_f64()
                )
            });
        let record = match self.store.get(&job).await {
            Ok(Some(r)) => format!("state {:?}, next due {:?}", r.state, r.next_due),
            Ok(None) => "no record".to_owned(),
            Err(e) => format!("record unreadable: {e}"),
        };
        let mut conn = self.store.connection();
        let inflight: Vec<String> = redis::cmd("ZRANGE")
            .arg(keys.inflight(shard))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let leased: Vec<&String> = inflight
            .iter()
            .filter(|m| m.split_once('|').is_some_and(|(_, j)| j == id))
            .collect();
        let key = keys.job(shard, &job);
        let holders: Vec<u16> = self
            .cluster
            .slot_keys(slot)
            .await
            .into_iter()
            .filter(|(_, ks)| ks.contains(&key))
            .map(|(port, _)| port)
            .collect();
        format!(
            "{id}: shard {} slot {slot} ({moved}); {record}; in flight {leased:?}; record on primaries {holders:?}",
            shard.index()
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resharding_under_load_loses_nothing_fires_nothing_early_repeats_only_reclaimed_fires() {
    let cluster = PrivateCluster::start().await;
    let ns = unique("cresh");
    let config = cluster.config(&ns, &["scheduler.lease=3s"]);
    let _logs = std::env::var_os("RUST_LOG")
        .map(|_| sked_core::telemetry::init("cluster_reshard", &config.log));
    create_topics(&config, 3).await;
    let ingest = Ingest::start(config.clone()).await;
    // Two scheduler replicas, as in production, producing with the latency of a loaded Kafka
    // (acks=all, ~100 ms): each claim's leases stay out that long, so the in-flight set of a
    // busy shard is rarely empty and one replica claims while the other's leases are out.
    //
    // The misfire threshold is above every stall here (30 s): a known gap, not yet mended, is
    // a scheduler that fired several slots of a recurring job in one claim and lost its lease
    // before the ack; the reclaimer re-fires only the claimed slot, and a later one it finds
    // past the threshold counts as missed, so one slot too many can fire (max_runs + 1). That
    // is a lease-expiry case, not a resharding one; see the issue note.
    let firing = cluster.config(
        &ns,
        &[
            "scheduler.lease=3s",
            "scheduler.misfire_threshold=30s",
            SCHEDULER_PRODUCE_LATENCY,
        ],
    );
    let schedulers = [
        Scheduler::start(firing.clone()).await,
        Scheduler::start(firing).await,
    ];
    let prefix = config.redis.key_prefix.clone();
    let topic = config.topics.ingest.clone();
    let (origin, origin_ms) = (Instant::now(), Utc::now().timestamp_millis());

    // Which shards move: SHARDS_PER_SOURCE of the primary serving the most shards go to the
    // primary serving the next most, and as many of that one's go to the third (a rotation, so
    // one primary imports and migrates at the same time).
    let shard_slots = shard_map(&cluster, config.redis.shards).await;
    let mut by_primary: BTreeMap<u16, Vec<u16>> = cluster
        .primaries()
        .await
        .into_iter()
        .map(|p| (p, Vec::new()))
        .collect();
    for (slot, primary) in shard_slots.values() {
        by_primary.get_mut(primary).unwrap().push(*slot);
    }
    let mut ranked: Vec<(u16, Vec<u16>)> = by_primary.into_iter().collect();
    ranked.sort_by_key(|(_, slots)| std::cmp::Reverse(slots.len()));
    assert_eq!(ranked.len(), 3, "three primaries: {ranked:?}");
    let (p_a, p_b, p_c) = (ranked[0].0, ranked[1].0, ranked[2].0);
    let slots_a: Vec<u16> = ranked[0]
        .1
        .iter()
        .take(SHARDS_PER_SOURCE)
        .copied()
        .collect();
    let slots_b: Vec<u16> = ranked[1]
        .1
        .iter()
        .take(SHARDS_PER_SOURCE)
        .copied()
        .collect();
    assert!(
        slots_a.len() + slots_b.len() >= 4 && !slots_a.is_empty() && !slots_b.is_empty(),
        "at least four shards from two primaries move: {ranked:?}"
    );
    let shards_of = |slots: &[u16]| -> Vec<u16> {
        shard_slots
            .iter()
            .filter(|(_, (slot, _))| slots.contains(slot))
            .map(|(s, _)| *s)
            .collect()
    };
    eprintln!(
        "moving shards {:?} (slots {slots_a:?}) {p_a} -> {p_b} and shards {:?} (slots {slots_b:?}) {p_b} -> {p_c}",
        shards_of(&slots_a),
        shards_of(&slots_b)
    );

    // Seed: SEED one-shot jobs due 6–12 s ahead, all stored before any slot moves.
    let seed_due = seed(&topic).await;
    eprintln!(
        "{SEED} seed jobs acked by kafka after {:?}",
        origin.elapsed()
    );
    let pattern = format!("{prefix}:*:j:seed-*");
    eventually(Duration::from_secs(30), "every seed job stored", || async {
        (cluster.count_keys(&pattern).await >= SEED).then_some(())
    })
    .await;
    eprintln!("{SEED} seed jobs stored after {:?}", origin.elapsed());

    // Load: recurring jobs and a stream of one-shot jobs, while the slots move.
    let tick_ids = ticks(&topic).await;
    let streaming = tokio::spawn(stream_one_shots(
        topic.clone(),
        "live-",
        STREAM,
        STREAM_PACE,
        Duration::from_millis(STREAM_LEAD_MS as u64),
        std::sync::Arc::default(),
    ));
    let moves_started = origin.elapsed();
    let (moved_a, moved_b) = tokio::join!(
        cluster.migrate_slots(&slots_a, p_a, p_b, PACE),
        cluster.migrate_slots(&slots_b, p_b, p_c, PACE),
    );
    eprintln!(
        "slots moved from {moves_started:?} to {:?}",
        origin.elapsed()
    );
    let moved: BTreeMap<u16, SlotMigration> = moved_a
        .into_iter()
        .chain(moved_b)
        .map(|m| (m.slot, m))
        .collect();
    for m in moved.values() {
        let from = m.started.saturating_duration_since(origin);
        eprintln!(
            "  slot {} {} -> {}: {} keys in {} MIGRATEs, {:.1}s-{:.1}s",
            m.slot,
            m.from,
            m.to,
            m.keys,
            m.batches,
            from.as_secs_f64(),
            (from + m.took).as_secs_f64()
        );
    }
    let stream_due = streaming.await.unwrap();
    eprintln!(
        "{STREAM} streamed jobs acked by kafka after {:?}",
        origin.elapsed()
    );

    let expected = SEED + STREAM + TICKS * TICK_RUNS;
    let due_topic = config.topics.due.clone();
    let fired = tokio::task::spawn_blocking(move || {
        read_topic(
            &due_topic,
            3,
            expected,
            Duration::from_secs(20),
            Duration::from_secs(2),
        )
    })
    .await
    .unwrap();
    eprintln!(
        "{} fires read (expected {expected}) after {:?}",
        fired.len(),
        origin.elapsed()
    );

    // Every request was valid: nothing may be dead-lettered (a store error ingest took for
    // permanent would reject the job as `internal`).
    let dlq_topic = config.topics.dlq.clone();
    let dead = tokio::task::spawn_blocking(move || {
        read_topic(
            &dlq_topic,
            3,
            0,
            Duration::from_secs(5),
            Duration::from_secs(3),
        )
    })
    .await
    .unwrap();

    let store = Store::connect(&config.redis).await.unwrap();
    let inspector = Inspector {
        store: &store,
        cluster: &cluster,
        shard_slots: &shard_slots,
        moved: &moved,
        origin,
    };
    let mut problems: Vec<String> = Vec::new();

    // The due topic: every one-shot once, for its time; every tick TICK_RUNS times; nothing
    // early; no fire id twice.
    let one_shots: BTreeMap<String, i64> = seed_due.into_iter().chain(stream_due).collect();
    let mut fires_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut jobs_fired: BTreeMap<String, usize> = BTreeMap::new();
    let mut early = Vec::new();
    let mut wrong_time = Vec::new();
    for m in &fired {
        let job = header(m, "sked-job-id").unwrap();
        let fire = header(m, "sked-fire-id").unwrap();
        let (due, fired_at) = (header_ms(m, "sked-due-at"), header_ms(m, "sked-fired-at"));
        *fires_of.entry(fire.clone()).or_default() += 1;
        *jobs_fired.entry(job.clone()).or_default() += 1;
        if fired_at < due {
            early.push(format!(
                "{fire} fired {} ms early at {:.1}s",
                due - fired_at,
                (fired_at - origin_ms) as f64 / 1e3
            ));
        }
        if let Some(given) = one_shots.get(&job)
            && *given != due
        {
            wrong_time.push(format!("{job}: due {due}, given {given}"));
        }
    }
    if !dead.is_empty() {
        let letters: Vec<String> = dead
            .iter()
            .map(|m| {
                format!(
                    "{:?}: {:?} {:?}",
                    m.key().map(String::from_utf8_lossy),
                    header(m, "sked-reason"),
                    header(m, "error-message")
                )
            })
            .collect();
        problems.push(format!(
            "{} requests dead-lettered: {:?}",
            dead.len(),
            &letters[..letters.len().min(20)]
        ));
    }
    // A fire goes out again, under the same fire id, only after its lease expired and a
    // scheduler reclaimed it (at least once per fire id; the worker runs a fire id once). A
    // one-shot repeats at most once per reclaim: more one-shot repeats than reclaims would be
    // a fire sent twice without cause. A reclaimed recurring job re-fires every slot the
    // stalled scheduler may have sent, so its repeats are not bounded this way; its slots
    // are checked below (exactly TICK_RUNS distinct fire ids).
    let twice: Vec<(&String, &usize)> = fires_of.iter().filter(|(_, n)| **n > 1).collect();
    let extra_records: usize = twice
        .iter()
        .filter(|(fire, _)| {
            fire.rsplit_once('@')
                .is_some_and(|(job, _)| one_shots.contains_key(job))
        })
        .map(|(_, n)| **n - 1)
        .sum();
    let mut repeats = None;
    if !twice.is_empty() {
        let mut lines = Vec::new();
        for (fire, n) in twice.iter().take(20) {
            let job = fire.rsplit_once('@').map_or(fire.as_str(), |(j, _)| j);
            let at: Vec<String> = fired
                .iter()
                .filter(|m| header(m, "sked-fire-id").as_deref() == Some(fire.as_str()))
                .map(|m| {
                    format!(
                        "{:.1}s",
                        (header_ms(m, "sked-fired-at") - origin_ms) as f64 / 1e3
                    )
                })
                .collect();
            lines.push(format!(
                "{fire} x{n} (fired at {at:?}) -- {}",
                inspector.describe(job).await
            ));
        }
        repeats = Some(format!(
            "{} fire ids went out more than once:\n    {}",
            twice.len(),
            lines.join("\n    ")
        ));
    }
    if !early.is_empty() {
        problems.push(format!("{} fires early: {early:?}", early.len()));
    }
    if !wrong_time.is_empty() {
        problems.push(format!(
            "{} one-shots fired for another time: {:?}",
            wrong_time.len(),
            &wrong_time[..wrong_time.len().min(20)]
        ));
    }
    let never: Vec<&String> = one_shots
        .keys()
        .filter(|id| !jobs_fired.contains_key(*id))
        .collect();
    if !never.is_empty() {
        let mut lines = Vec::new();
        for id in never.iter().take(30) {
            lines.push(inspector.describe(id).await);
        }
        problems.push(format!(
            "{} of {} one-shot jobs never fired:\n    {}",
            never.len(),
            one_shots.len(),
            lines.join("\n    ")
        ));
    }
    let mut bad_ticks = Vec::new();
    for id in &tick_ids {
        let fires = fires_of
            .keys()
            .filter(|f| f.rsplit_once('@').is_some_and(|(j, _)| j == id))
            .count();
        if fires != TICK_RUNS {
            bad_ticks.push(format!(
                "{fires} fire ids in {} records -- {}",
                jobs_fired.get(id).copied().unwrap_or(0),
                inspector.describe(id).await
            ));
        }
    }
    if !bad_ticks.is_empty() {
        problems.push(format!(
            "{} of {TICKS} recurring jobs did not fire exactly {TICK_RUNS} times:\n    {}",
            bad_ticks.len(),
            bad_ticks.join("\n    ")
        ));
    }
    // How late fires were, on the shards that moved and on the others (not asserted: a shard
    // whose slot is migrating may wait for it).
    let moved_shards: Vec<u16> = shard_slots
        .iter()
        .filter(|(_, (slot, _))| moved.contains_key(slot))
        .map(|(s, _)| *s)
        .collect();
    let (mut late_moved, mut late_other) = (Vec::new(), Vec::new());
    for m in &fired {
        let job = JobId::parse(&header(m, "sked-job-id").unwrap()).unwrap();
        let late = header_ms(m, "sked-fired-at") - header_ms(m, "sked-due-at");
        if moved_shards.contains(&store.keys().shard_of(&job).index()) {
            late_moved.push(late);
        } else {
            late_other.push(late);
        }
    }
    eprintln!(
        "lateness (ms, p50/p99/max): moved shards {}, other shards {}",
        percentiles(&mut late_moved),
        percentiles(&mut late_other)
    );
    let mut redirects: BTreeMap<String, u64> = BTreeMap::new();
    for stats in cluster.error_stats().await.values() {
        for (error, n) in stats {
            if matches!(error.as_str(), "ASK" | "TRYAGAIN" | "MOVED" | "CLUSTERDOWN") {
                *redirects.entry(error.clone()).or_default() += n;
            }
        }
    }
    eprintln!("redirects and retries the nodes answered: {redirects:?}");
    let distinct_jobs = one_shots
        .keys()
        .filter(|id| jobs_fired.contains_key(*id))
        .count();
    eprintln!(
        "{} fires, {} distinct fire ids, {distinct_jobs} of {} one-shots fired",
        fired.len(),
        fires_of.len(),
        one_shots.len()
    );

    // The store: nothing left due or in flight, every job dispatched, one record per job.
    let shards: Vec<Shard> = (0..config.redis.shards).map(Shard).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let backlog = loop {
        let backlog = store.backlog(&shards).await.unwrap();
        if backlog.iter().all(|(d, f)| *d == 0 && *f == 0) || Instant::now() > deadline {
            break backlog;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let left: Vec<String> = backlog
        .iter()
        .enumerate()
        .filter(|(_, (d, f))| *d != 0 || *f != 0)
        .map(|(s, (d, f))| format!("shard {s}: {d} due, {f} in flight"))
        .collect();
    if !left.is_empty() {
        problems.push(format!("left in the store after 10 s: {left:?}"));
    }
    let all_ids: Vec<String> = one_shots.keys().cloned().chain(tick_ids.clone()).collect();
    let states: Vec<(String, Option<JobState>)> = futures::stream::iter(all_ids)
        .map(|id| {
            let store = store.clone();
            async move {
                let record = store.get(&JobId::parse(&id).unwrap()).await.unwrap();
                (id, record.map(|r| r.state))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for (_, state) in &states {
        *by_state.entry(format!("{state:?}")).or_default() += 1;
    }
    let not_dispatched: Vec<&String> = states
        .iter()
        .filter(|(_, s)| *s != Some(JobState::Dispatched))
        .map(|(id, _)| id)
        .collect();
    if !not_dispatched.is_empty() {
        let mut lines = Vec::new();
        for id in not_dispatched.iter().take(30) {
            lines.push(inspector.describe(id).await);
        }
        problems.push(format!(
            "{} jobs not dispatched in redis (states {by_state:?}):\n    {}",
            not_dispatched.len(),
            lines.join("\n    ")
        ));
    }
    let records = cluster.count_keys(&format!("{prefix}:*:j:*")).await;
    if records != SEED + STREAM + TICKS {
        problems.push(format!(
            "{records} job records on the primaries, expected {}",
            SEED + STREAM + TICKS
        ));
    }

    let ingest_text = admin_metrics(ingest.admin).await;
    eprintln!(
        "ingest store errors {}",
        metric(&ingest_text, "sked_ingest_store_errors_total")
    );
    let mut reclaimed = 0.0;
    for (i, scheduler) in schedulers.iter().enumerate() {
        let text = scheduler.metrics().await;
        reclaimed += metric(&text, "sked_scheduler_reclaimed_total");
        let early = metric(&text, "sked_scheduler_early_fires_total");
        if early != 0.0 {
            problems.push(format!(
                "scheduler {i}: sked_scheduler_early_fires_total {early}"
            ));
        }
        eprintln!(
            "scheduler {i}: fired {}, store errors {}, produce errors {}, reclaimed {}, stale acks {}, early {early}",
            metric(&text, "sked_scheduler_fired_total"),
            metric(&text, "sked_scheduler_store_errors_total"),
            metric(&text, "sked_scheduler_produce_errors_total"),
            metric(&text, "sked_scheduler_reclaimed_total"),
            metric(&text, "sked_scheduler_stale_acks_total"),
        );
    }
    if let Some(repeats) = repeats {
        if extra_records as f64 > reclaimed {
            problems.push(format!(
                "{extra_records} repeated one-shot records but only {reclaimed} leases reclaimed: {repeats}"
            ));
        } else {
            eprintln!(
                "{extra_records} records repeated after {reclaimed} reclaimed leases: {repeats}"
            );
        }
    }
    eprintln!("done after {:?}", origin.elapsed());
    assert!(
        problems.is_empty(),
        "while slots moved between primaries:\n  {}",
        problems.join("\n  ")
    );
    for scheduler in schedulers {
        scheduler.stop().await;
    }
    ingest.stop().await;
}
