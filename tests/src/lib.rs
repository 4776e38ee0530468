//! Test harness for sked's end-to-end scenarios. Every test gets its own topics, consumer
//! groups and Redis key prefix, so tests run in parallel against one broker and one Redis.
//!
//! The broker and Redis must be up (`scripts/dev-stack.sh up`, which `scripts/test.sh` runs).
//! A missing service fails the test: nothing here skips.

pub mod bench_console;
pub mod bench_dlq;
pub mod bench_failover;
pub mod bench_operate;
pub mod chaos;
pub mod cluster;
pub mod console;
pub mod ingest;
pub mod oidc;
pub mod replayer;
pub mod scheduler;
pub mod worker;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord, Producer},
};
use sked_core::config::{Config, Layers, load};

/// Kafka bootstrap servers of the test broker (`SKED_TEST_KAFKA`, default 127.0.0.1:9092).
pub fn brokers() -> String {
    std::env::var("SKED_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Redis URL of the test Redis (`SKED_TEST_REDIS`, default redis://127.0.0.1:6379).
pub fn redis_url() -> String {
    std::env::var("SKED_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Seed URLs of the test Redis Cluster (`SKED_TEST_REDIS_CLUSTER`, default the three nodes
/// `scripts/dev-stack.sh` starts on 127.0.0.1:7001-7003), comma separated.
pub fn redis_cluster_url() -> String {
    std::env::var("SKED_TEST_REDIS_CLUSTER").unwrap_or_else(|_| {
        "redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003".into()
    })
}

/// The `--set` overrides that move a test onto the test Redis Cluster.
pub fn cluster_sets() -> Vec<String> {
    vec![
        "redis.cluster=true".into(),
        format!("redis.url={}", redis_cluster_url()),
    ]
}

/// Keys under `prefix` on each node of the test cluster (a `SCAN` of every node): proof that
/// an installation's keys really are spread over the cluster.
pub async fn keys_per_cluster_node(prefix: &str) -> Vec<usize> {
    use futures::StreamExt;
    let mut counts = Vec::new();
    for url in redis_cluster_url().split(',') {
        let mut conn = redis(url.trim()).await;
        let keys: Vec<String> = redis::AsyncCommands::scan_match(&mut conn, format!("{prefix}:*"))
            .await
            .expect("scan a cluster node")
            .collect()
            .await;
        counts.push(keys.len());
    }
    counts
}

/// A unique name for one test's resources.
pub fn unique(name: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{name}-{}", &id[id.len() - 10..])
}

/// The `--set` overrides of one test: unique topics, group and key prefix, ports chosen by
/// the OS, and librdkafka timeouts short enough for tests.
pub fn test_sets(ns: &str) -> Vec<String> {
    vec![
        format!("kafka.brokers={}", brokers()),
        format!("redis.url={}", redis_url()),
        format!("redis.key_prefix=t:{ns}"),
        format!("topics.ingest={ns}.ingest"),
        format!("topics.due={ns}.due"),
        format!("topics.retry={ns}.retry"),
        format!("topics.dlq={ns}.dlq"),
        format!("topics.audit={ns}.audit"),
        // Auth is on, as by default: every test's API calls carry TEST_TOKEN (admin).
        format!(
            "auth.tokens.test.hash={}",
            sked_core::config::token_hash(TEST_TOKEN)
        ),
        r#"auth.tokens.test.scopes=["admin"]"#.into(),
        "topics.partitions=3".into(),
        format!("ingest.group_id={ns}-ingest"),
        "ingest.drain_timeout=10s".into(),
        "http.listen_addr=127.0.0.1:0".into(),
        "admin.listen_addr=127.0.0.1:0".into(),
        "kafka.rdkafka.session.timeout.ms=6000".into(),
        "kafka.rdkafka.heartbeat.interval.ms=500".into(),
        "kafka.rdkafka.max.poll.interval.ms=10000".into(),
        "kafka.rdkafka.topic.metadata.refresh.interval.ms=1000".into(),
    ]
}

/// A configuration for one test, with `extra` overrides on top of [`test_sets`].
pub fn test_config(ns: &str, extra: &[&str]) -> Config {
    let mut sets = test_sets(ns);
    sets.extend(extra.iter().map(|s| s.to_string()));
    load(&Layers {
        sets,
        ..Default::default()
    })
    .expect("test configuration is valid")
}

/// Creates the configured topics with `partitions` partitions.
pub async fn create_topics(config: &Config, partitions: i32) {
    let topics = sked_core::kafka::topics::needed(config);
    sked_core::kafka::topics::ensure(&config.kafka, &topics, partitions, 1)
        .await
        .expect("create test topics (is the broker up? scripts/dev-stack.sh up)");
}

/// A plain producer, as any client of sked would use.
///
/// One record per batch: tansu 0.6 (the test broker) answers a fetch that starts at an offset
/// inside a record batch with nothing, so a consumer that restarts from a committed offset in
/// the middle of a batch (every kill -9 and restart scenario) would stall. Apache Kafka returns
/// the whole batch and the client skips to the offset; sked's consumers commit mid-batch
/// offsets, as every Kafka consumer does.
pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "1")
        .set("batch.num.messages", "1")
        .create()
        .expect("create producer")
}

/// [`producer`] for records of up to 10 MB (librdkafka's default `message.max.bytes` is
/// 1,000,000): poison-pill tests publish requests over sked's own limit.
pub fn large_producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "1")
        .set("batch.num.messages", "1")
        .set("message.max.bytes", "10000000")
        .create()
        .expect("create producer")
}

/// Produces one record and waits for the ack. `value = None` is a tombstone.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> (i32, i64) {
    let mut h = OwnedHeaders::new();
    for (k, v) in headers {
        h = h.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(h);
    if let Some(p) = partition {
        record = record.partition(p);
    }
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(v) = value {
        record = record.payload(v);
    }
    let d = producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
    (d.partition, d.offset)
}

/// Produces `count` one-shot jobs `<prefix><i>` (app `sms`) to `topic`, one every `pace`, each
/// due `lead` after it is sent, adding 1 to `sent` per job sent; returns each job's due
/// instant (epoch ms) once Kafka acknowledged them all.
pub async fn stream_one_shots(
    topic: String,
    prefix: &str,
    count: usize,
    pace: Duration,
    lead: Duration,
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> std::collections::BTreeMap<String, i64> {
    let kafka = producer();
    let mut tick = tokio::time::interval(pace);
    let mut acks = tokio::task::JoinSet::new();
    let mut due = std::collections::BTreeMap::new();
    let lead = chrono::Duration::from_std(lead).expect("lead fits");
    for i in 0..count {
        tick.tick().await;
        let id = format!("{prefix}{i}");
        let run_at = chrono::Utc::now() + lead;
        let at = run_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = format!(r#"{{"id":"{id}","app":"sms","run_at":"{at}"}}"#);
        due.insert(id.clone(), run_at.timestamp_millis());
        let (kafka, topic) = (kafka.clone(), topic.clone());
        acks.spawn(async move {
            produce(
                &kafka,
                &topic,
                None,
                Some(id.as_bytes()),
                Some(body.as_bytes()),
                &[],
            )
            .await
        });
        sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    while let Some(ack) = acks.join_next().await {
        ack.expect("produce task");
    }
    due
}

/// The `/metrics` text of the admin server on `addr`.
pub async fn admin_metrics(addr: std::net::SocketAddr) -> String {
    http()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

/// Flushes a producer.
pub fn flush(producer: &FutureProducer) {
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Reads every record of `topic` (all partitions, from the beginning) until `expected` records
/// arrived or `timeout` passed, then keeps reading for `settle` to catch extra records.
pub fn read_topic(
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
    settle: Duration,
) -> Vec<OwnedMessage> {
    let consumer = reader_from_start(topic, partitions);
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    let mut settle_until: Option<std::time::Instant> = None;
    loop {
        let now = std::time::Instant::now();
        if now > deadline || settle_until.is_some_and(|s| now > s) {
            break;
        }
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(100)) {
            out.push(msg.detach());
        }
        if out.len() >= expected && settle_until.is_none() {
            settle_until = Some(std::time::Instant::now() + settle);
        }
    }
    out
}

/// A consumer outside any group's commits, assigned every partition of `topic` from the start.
pub fn reader_from_start(topic: &str, partitions: i32) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("create reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// The value of header `name` of `msg`, as UTF-8.
pub fn header(msg: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let headers = msg.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The value of header `name` of `msg` as an integer (epoch ms headers like `sked-due-at`).
pub fn header_ms(msg: &OwnedMessage, name: &str) -> i64 {
    header(msg, name)
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|_| panic!("header {name} is not an integer"))
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Redis connection to the test Redis.
pub async fn redis(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis (is it up? scripts/dev-stack.sh up)")
}

/// Number of jobs in the due index of an installation (sum over shards).
pub async fn due_count(url: &str, prefix: &str, shards: u16) -> u64 {
    let mut conn = redis(url).await;
    let mut pipe = redis::pipe();
    for s in 0..shards {
        pipe.zcard(format!("{prefix}:{{s{s}}}:due"));
    }
    let counts: Vec<u64> = pipe.query_async(&mut conn).await.expect("zcard");
    counts.into_iter().sum()
}

/// Path of a binary of this workspace, next to the test executable's `deps/` folder (or
/// next to the executable itself, for `sked-bench`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("target dir");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target dir");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A service binary running as a child process; killed (SIGKILL) on drop.
pub struct Proc {
    /// The child.
    pub child: Child,
}

impl Proc {
    /// Starts `binary(name)` with `--set` flags.
    pub fn start(name: &str, sets: &[String]) -> Self {
        Self::start_with_env(name, sets, &[])
    }

    /// Starts `binary(name)` with `--set` flags and extra environment variables.
    pub fn start_with_env(name: &str, sets: &[String], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(binary(name));
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        cmd.envs(env.iter().copied());
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn service");
        Self { child }
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A private redis-server on a free port, for tests that stop and start Redis. Append-only
/// with fsync on every write, so a restart keeps every acknowledged write.
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    persist: bool,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port, append-only with fsync on every write.
    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// Starts one on a free port; `persist = false` keeps everything in memory only.
    pub fn start_with(persist: bool) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        Self::start_on(port, persist)
    }

    /// Starts one on `port` (free); `persist` as for [`PrivateRedis::start_with`].
    pub fn start_on(port: u16, persist: bool) -> Self {
        let dir = std::env::temp_dir().join(unique("sked-redis"));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut r = Self {
            port,
            dir,
            persist,
            child: None,
        };
        r.resume();
        r
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(if self.persist {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "no"]
            })
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (install it: scripts/dev-stack.sh up)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private redis-server did not start on port {}", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The admin token every test configuration accepts (`auth.tokens.test`).
pub const TEST_TOKEN: &str = "sked-test-admin-token-0f4c1e";

/// HTTP client for the REST and admin APIs, sending [`TEST_TOKEN`].
pub fn http() -> reqwest::Client {
    http_as(Some(TEST_TOKEN))
}

/// HTTP client sending `token` (none: no `Authorization` header).
pub fn http_as(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("token header"),
        );
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .default_headers(headers)
        .build()
        .expect("http client")
}

/// `GET url` answered as JSON (panics on a transport error or a body that is not JSON).
pub async fn get_json(url: &str) -> serde_json::Value {
    http()
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("a JSON body")
}

/// `GET url` as the test client, its body as JSON; `None` on any failure, for a caller that
/// asks again ([`eventually`]).
pub async fn try_json(url: &str) -> Option<serde_json::Value> {
    http().get(url).send().await.ok()?.json().await.ok()
}

/// Waits until bulk operation `id` of the REST API at `api` has succeeded; its resource.
pub async fn operation_succeeded(api: &str, id: &str, timeout: Duration) -> serde_json::Value {
    eventually(timeout, "bulk operation succeeded", || async {
        let o = try_json(&format!("{api}/v1/operations/{id}")).await?;
        (o["state"] == "succeeded").then_some(o)
    })
    .await
}

/// A service started in-process: the token that stops it and the task that runs its drain.
pub struct InProcess {
    name: &'static str,
    cancel: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// Runs `wait` (the service's `Running::wait`) until `cancel`.
    pub fn spawn<F>(
        name: &'static str,
        cancel: tokio_util::sync::CancellationToken,
        wait: F,
    ) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self {
            name,
            cancel,
            task: tokio::spawn(wait),
        }
    }

    /// SIGTERM-equivalent: cancels, waits for the drain, and fails the test unless it was clean.
    pub async fn stop(self) {
        self.cancel.cancel();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => panic!("{} did not drain cleanly: {err:#}", self.name),
            Err(join) => panic!("{} task failed: {join}", self.name),
        }
    }
}
