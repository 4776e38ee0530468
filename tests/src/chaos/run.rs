//! One chaos run: the stack, the job stream, the faults, the settle and the verdict.
//!
//! Timeline: every service is started and ready; jobs stream for `duration`; meanwhile a
//! random running service is killed (-9) every `kill_every` (randomised between half and one
//! and a half times it) and restarted, Redis is killed at 30 % of the run and restarted
//! `redis_down` later on the same port and append-only file, and the broker is paused
//! (SIGSTOP) at 60 % for `broker_pause` (or once every service is ready again after Redis,
//! if that is later; in a very short run, after the stream). No service is killed while an outage lasts or
//! before every service is ready again after it, so that each recovery time measures one
//! fault. Then every service is brought up and the run waits up to `settle` for every
//! expected fire to have run, plus a few quiet seconds for late duplicates, and judges.
//!
//! Three workarounds for tansu 0.6, the test broker (not needed on Apache Kafka; none can hide
//! a lost, early or wrong fire, which are judged on what the app saw):
//! - a fetch that starts at an offset inside a record batch returns nothing, so a consumer
//!   restarted at a committed mid-batch offset would stall: every service produces one record
//!   per batch (`kafka.rdkafka.batch.num.messages=1`), as the test producers do;
//! - tansu keeps a dead member in its group when the member's replacement joins before the
//!   dead one's session has expired, and the partitions it held stay unconsumed: a killed
//!   consumer (ingest, worker, replayer) is restarted only after its session timeout (30 s in
//!   the run) plus 1 to 3 s. The scheduler is in no group and comes back after 0.5-1.5 s;
//! - the broker pause does the same to every group at once when it outlasts the sessions:
//!   with the tests' 6 s session timeout, the members' sessions expired while tansu was
//!   stopped, librdkafka rejoined each as a new member as soon as tansu answered, and the
//!   single-member groups (ingest, replayer) never got an assignment again: the consumer
//!   logged the revoke and no assignment after it, its partitions built lag, and sked's
//!   stall watch (`kafka.stall_after=10s` in that experiment) left and rejoined the group
//!   every 10 s for 2 minutes without ever being given a partition, while the two-member
//!   worker group was reassigned at once. So the run's sessions last 30 s
//!   (`session.timeout.ms`, and `max.poll.interval.ms` 60 s, which librdkafka wants at
//!   least as long), longer than the pause, as Kafka's default of 45 s is: the pause then
//!   tests a broker that answers nothing for 20 s, not tansu's group rebalancing.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};

use super::{
    app::App,
    evidence,
    judge::{self, Job, Kill, Kind, Outage, Report},
    stack::{self, Broker, Service},
};

/// What a run does; [`Default`] is the suite's short run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long jobs are streamed (and faults injected).
    pub duration: Duration,
    /// Mean time between two kills (each gap is between half and 1.5 times it); zero: none.
    pub kill_every: Duration,
    /// How long the broker is paused (SIGSTOP), once.
    pub broker_pause: Duration,
    /// How long Redis is down (SIGKILL, then restart on its append-only file), once.
    pub redis_down: Duration,
    /// Jobs submitted per second, one of each kind in turn.
    pub rate: f64,
    /// Most time after the stream ends for every expected fire to run.
    pub settle: Duration,
    /// Seed of the random choices (kill gaps, victims, restart delays, lead times).
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(120),
            kill_every: Duration::from_secs(6),
            broker_pause: Duration::from_secs(20),
            redis_down: Duration::from_secs(5),
            rate: 9.0,
            settle: Duration::from_secs(120),
            seed: 1,
        }
    }
}

/// Session timeout of the services' consumers (`kafka.rdkafka.session.timeout.ms`), longer
/// than the broker pause (see the module doc).
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Partitions of every topic.
const PARTITIONS: i32 = 3;
/// How long a restarted process may take to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Interval of the recurring jobs, and their `max_runs`.
const EVERY_MS: i64 = 2000;
const EVERY_RUNS: i64 = 4;

/// splitmix64: reproducible choices from the seed without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        lo + (hi - lo).mul_f64(self.unit())
    }
}

enum Phase {
    Up,
    Down { restart_at: Instant, kill: usize },
    Starting { kill: usize },
}

struct Slot {
    service: Service,
    phase: Phase,
}

type Jobs = Arc<Mutex<BTreeMap<String, Job>>>;

/// Runs it; `Err` only when the stack itself could not be set up.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let dir = std::env::temp_dir().join(crate::unique("sked-chaos"));
    std::fs::create_dir_all(&dir)?;
    let mut broker = Broker::start(&dir)?;
    let mut redis = crate::PrivateRedis::start_on(stack::stable_port()?, true);
    let app = App::start().await?;
    let ns = crate::unique("chaos");

    let mut sets = crate::test_sets(&ns);
    sets.extend(crate::worker::worker_sets(&ns));
    sets.extend([
        format!("kafka.brokers={}", broker.brokers()),
        format!("redis.url={}", redis.url()),
        format!("replayer.group_id={ns}-replayer"),
        "replayer.listen_addr=127.0.0.1:0".into(),
        format!("apps.web.url={}", app.url()),
        // tansu: one record per batch (see the module doc).
        "kafka.rdkafka.batch.num.messages=1".into(),
        // tansu: sessions that outlast the broker pause (see the module doc).
        format!(
            "kafka.rdkafka.session.timeout.ms={}",
            SESSION_TIMEOUT.as_millis()
        ),
        "kafka.rdkafka.max.poll.interval.ms=60000".into(),
    ]);
    let config = sked_core::config::load(&sked_core::config::Layers {
        sets: sets.clone(),
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!("chaos configuration: {e}"))?;
    let topics = sked_core::kafka::topics::needed(&config);
    sked_core::kafka::topics::ensure(&config.kafka, &topics, PARTITIONS, 1)
        .await
        .context("create topics on the private broker")?;

    let mut slots = Vec::new();
    for (name, binary) in [
        ("ingest", "sked-ingest"),
        ("scheduler-1", "sked-scheduler"),
        ("scheduler-2", "sked-scheduler"),
        ("worker-1", "sked-worker"),
        ("worker-2", "sked-worker"),
        ("replayer", "sked-replayer"),
    ] {
        let mut service = Service::new(name, binary, sets.clone(), &dir)?;
        service.start()?;
        slots.push(Slot {
            service,
            phase: Phase::Up,
        });
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()?;
    let started = Instant::now();
    loop {
        let mut all = true;
        for s in &slots {
            all &= s.service.ready(&http).await;
        }
        if all {
            break;
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("the services were not ready within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut rng = Rng(options.seed);
    let mut report = Report {
        seed: options.seed,
        log_dir: dir.display().to_string(),
        ..Default::default()
    };
    let jobs: Jobs = Arc::default();
    let start = Instant::now();
    let start_ms = Utc::now().timestamp_millis();
    let stream = tokio::spawn(stream(
        producer(&broker.brokers())?,
        config.topics.ingest.clone(),
        jobs.clone(),
        options.clone(),
        Rng(options.seed ^ 0x5eed),
    ));

    let redis_at = options.duration.mul_f64(0.3);
    let broker_at = options.duration.mul_f64(0.6);
    // (index into report.outages, when it ended) of an outage whose recovery is not seen yet.
    let mut recovering: Option<(usize, Instant)> = None;
    let mut redis_state = 0; // 0 before, 1 down, 2 done
    let mut broker_state = 0;
    let mut outage_began = start;
    let mut next_kill = start + rng.between(options.kill_every / 2, options.kill_every * 3 / 2);
    loop {
        let now = Instant::now();
        let t = now - start;
        let streaming = t < options.duration;
        // Outages.
        if redis_state == 0 && t >= redis_at {
            redis.stop();
            redis_state = 1;
            outage_began = now;
        } else if redis_state == 1 && now - outage_began >= options.redis_down {
            redis.resume();
            redis_state = 2;
            report.outages.push(Outage {
                what: "redis down",
                at_s: (outage_began - start).as_secs_f64(),
                lasted_s: (now - outage_began).as_secs_f64(),
                all_ready_after_s: None,
            });
            recovering = Some((report.outages.len() - 1, now));
        }
        if broker_state == 0 && t >= broker_at && redis_state != 1 && recovering.is_none() {
            broker.pause()?;
            broker_state = 1;
            outage_began = now;
        } else if broker_state == 1 && now - outage_began >= options.broker_pause {
            broker.resume()?;
            broker_state = 2;
            report.outages.push(Outage {
                what: "broker paused",
                at_s: (outage_began - start).as_secs_f64(),
                lasted_s: (now - outage_began).as_secs_f64(),
                all_ready_after_s: None,
            });
            recovering = Some((report.outages.len() - 1, now));
        }
        let in_outage = redis_state == 1 || broker_state == 1;

        // Restarts, readiness, processes that ended by themselves.
        let mut all_ready = true;
        for s in &mut slots {
            match s.phase {
                Phase::Up => {
                    if let Some(status) = s.service.exited() {
                        report.exits.push(format!(
                            "{} at {:.0} s ({status})",
                            s.service.name,
                            t.as_secs_f64()
                        ));
                        s.service.start()?;
                    }
                    if recovering.is_some() {
                        all_ready &= s.service.ready(&http).await;
                    }
                }
                Phase::Down { restart_at, kill } if now >= restart_at => {
                    s.service.start()?;
                    report.kills[kill].restart_after_s =
                        (t.as_secs_f64() - report.kills[kill].at_s).max(0.0);
                    s.phase = Phase::Starting { kill };
                }
                // A service killed before an outage has its own recovery time; the outage's
                // is that of the services it hit.
                Phase::Down { .. } => {}
                Phase::Starting { kill } => {
                    let k = &mut report.kills[kill];
                    let since = t.as_secs_f64() - k.at_s;
                    k.overlapped_outage |= in_outage || recovering.is_some();
                    if s.service.ready(&http).await {
                        k.ready_after_s = Some(since);
                        s.phase = Phase::Up;
                    } else if since > READY_TIMEOUT.as_secs_f64() {
                        s.phase = Phase::Up;
                    }
                }
            }
        }
        if let Some((i, ended)) = recovering {
            if all_ready {
                report.outages[i].all_ready_after_s = Some((now - ended).as_secs_f64());
                recovering = None;
            } else if now - ended > READY_TIMEOUT {
                recovering = None;
            }
        }

        // Kills.
        if streaming && !options.kill_every.is_zero() && now >= next_kill {
            next_kill = now + rng.between(options.kill_every / 2, options.kill_every * 3 / 2);
            let up: Vec<usize> = (0..slots.len())
                .filter(|i| matches!(slots[*i].phase, Phase::Up))
                .collect();
            if !in_outage && recovering.is_none() && !up.is_empty() {
                let victim = up[(rng.next() % up.len() as u64) as usize];
                let s = &mut slots[victim];
                s.service.kill9();
                let delay = if s.service.in_group() {
                    SESSION_TIMEOUT + rng.between(Duration::from_secs(1), Duration::from_secs(3))
                } else {
                    rng.between(Duration::from_millis(500), Duration::from_millis(1500))
                };
                report.kills.push(Kill {
                    service: s.service.name.clone(),
                    at_s: t.as_secs_f64(),
                    restart_after_s: delay.as_secs_f64(),
                    ready_after_s: None,
                    overlapped_outage: false,
                });
                s.phase = Phase::Down {
                    restart_at: now + delay,
                    kill: report.kills.len() - 1,
                };
            }
        }

        // Both outages happen even when a short run ends first (they wait for each other).
        let quiet = slots.iter().all(|s| matches!(s.phase, Phase::Up))
            && redis_state == 2
            && broker_state == 2
            && recovering.is_none();
        if !streaming && quiet {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stream.await.context("the job stream")?;
    report.streamed_s = options.duration.as_secs_f64();

    // Settle: until every expected fire ran, then a few quiet seconds for late duplicates.
    let settle_from = Instant::now();
    loop {
        let missing = {
            let jobs = lock(&jobs).clone();
            judge::missing(&jobs, &app.executions()).len()
        };
        if missing == 0 || settle_from.elapsed() > options.settle {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    for s in &mut slots {
        if let Some(status) = s.service.exited() {
            report
                .exits
                .push(format!("{} during the settle ({status})", s.service.name));
        }
    }
    report.settled_s = settle_from.elapsed().as_secs_f64();

    let jobs = lock(&jobs).clone();
    let execs = app.executions();
    judge::judge(&mut report, &jobs, &execs);
    if !report.lost.is_empty() {
        let brokers = broker.brokers();
        let topics = config.topics.clone();
        let group = config.worker.group_id.clone();
        let lost = report.lost.clone();
        report.evidence = tokio::task::spawn_blocking(move || {
            evidence::gather(
                &brokers,
                [&topics.due, &topics.retry, &topics.dlq],
                &group,
                PARTITIONS,
                &lost,
                &execs,
                start_ms,
            )
        })
        .await
        .context("evidence")?;
    }
    drop(slots);
    if !report.failed() && std::env::var_os("SKED_CHAOS_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
        report.log_dir = format!(
            "{} (removed: the run passed; SKED_CHAOS_KEEP=1 keeps it)",
            dir.display()
        );
    }
    Ok(report)
}

fn lock(jobs: &Jobs) -> std::sync::MutexGuard<'_, BTreeMap<String, Job>> {
    jobs.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The producer of schedule requests: one record per batch (tansu, see the module doc), and
/// patient enough to outlast the broker pause.
fn producer(brokers: &str) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "1")
        .set("batch.num.messages", "1")
        .set("message.timeout.ms", "120000")
        .create()?)
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Submits `o-N`, `e-N` and `f-N` in turn at `options.rate` for `options.duration`, recording
/// each job's expected fires, and waits for every acknowledgement.
async fn stream(
    producer: FutureProducer,
    topic: String,
    jobs: Jobs,
    options: Options,
    mut rng: Rng,
) {
    let pace = Duration::from_secs_f64(1.0 / options.rate.max(0.1));
    let mut tick = tokio::time::interval(pace);
    let mut acks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0usize.. {
        tick.tick().await;
        if start.elapsed() >= options.duration {
            break;
        }
        let kind = [Kind::Once, Kind::Every, Kind::FailOnce][i % 3];
        let id = format!("{}-{}", kind.prefix(), i / 3);
        let now = Utc::now().timestamp_millis();
        let (body, dues) = match kind {
            Kind::Once => {
                let at = now + 2000 + (rng.unit() * 4000.0) as i64;
                (
                    format!(r#"{{"id":"{id}","app":"web","run_at":"{}"}}"#, rfc3339(at)),
                    vec![at],
                )
            }
            Kind::Every => {
                let at = now + 3000;
                (
                    format!(
                        r#"{{"id":"{id}","app":"web","every":{EVERY_MS},"start_at":"{}","max_runs":{EVERY_RUNS},"misfire":"fire_all"}}"#,
                        rfc3339(at)
                    ),
                    (0..EVERY_RUNS).map(|k| at + k * EVERY_MS).collect(),
                )
            }
            Kind::FailOnce => {
                let at = now + 3000;
                (
                    format!(
                        r#"{{"id":"{id}","app":"web","run_at":"{}","retry":{{"max_attempts":5,"initial":"1s","max":"4s","jitter":0.0}}}}"#,
                        rfc3339(at)
                    ),
                    vec![at],
                )
            }
        };
        lock(&jobs).insert(
            id.clone(),
            Job {
                kind,
                dues,
                acked: None,
            },
        );
        let (producer, topic, jobs) = (producer.clone(), topic.clone(), jobs.clone());
        acks.spawn(async move {
            let record = FutureRecord::to(&topic).key(&id).payload(&body);
            let acked = producer.send(record, Duration::from_secs(60)).await.is_ok();
            if let Some(j) = lock(&jobs).get_mut(&id) {
                j.acked = Some(acked);
            }
        });
    }
    while acks.join_next().await.is_some() {}
}
