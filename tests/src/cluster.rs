//! A private Redis Cluster, for tests that fail over its primaries or move slots between them:
//! six `redis-server` processes on free ports (three primaries with one replica each), each
//! append-only with fsync on every write in a temporary directory of its own. Dropping it kills
//! them (SIGKILL) and removes the directories.
//!
//! Whatever does not come up, or does not settle in time, panics with the tail of every node's
//! log: a test that needs the cluster fails, it never skips.

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use redis::FromRedisValue;

/// Nodes in the cluster: three primaries, one replica each.
const NODES: usize = 6;
/// A node's cluster bus listens on its port plus this.
const BUS_OFFSET: u16 = 10_000;
/// How long forming the cluster, a failover, or the cluster's return to `ok` may take.
const SETTLE: Duration = Duration::from_secs(30);
/// Connect and reply timeout of one command to one node.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of one `MIGRATE` (ms).
const MIGRATE_TIMEOUT_MS: u64 = 5000;

/// One node of a [`PrivateCluster`].
struct Node {
    port: u16,
    dir: PathBuf,
    child: Child,
}

/// The nodes serving one hash slot, by port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotOwners {
    /// The slot.
    pub slot: u16,
    /// The primary that serves it.
    pub primary: u16,
    /// The primary's replicas.
    pub replicas: Vec<u16>,
}

/// How [`PrivateCluster::migrate_slots`] moves the keys of a slot: a few at a time, with a
/// pause after each `MIGRATE`, so the slot stays half-migrated (some keys on the source, some
/// on the target) for a while under traffic.
#[derive(Debug, Clone, Copy)]
pub struct MigratePace {
    /// Keys per `MIGRATE` (at least 1).
    pub keys_per_batch: usize,
    /// Pause after each `MIGRATE`.
    pub pause: Duration,
}

/// What [`PrivateCluster::migrate_slots`] did for one slot.
#[derive(Debug, Clone)]
pub struct SlotMigration {
    /// The slot.
    pub slot: u16,
    /// The primary it left, by port.
    pub from: u16,
    /// The primary that serves it now, by port.
    pub to: u16,
    /// Keys moved by `MIGRATE`.
    pub keys: usize,
    /// `MIGRATE` calls.
    pub batches: usize,
    /// When it began (`SETSLOT IMPORTING`).
    pub started: std::time::Instant,
    /// From `SETSLOT IMPORTING` to `SETSLOT NODE` on every primary.
    pub took: Duration,
}

/// What a node does, as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// A primary serving these slot ranges.
    Serves(Vec<(u16, u16)>),
    /// A replica of the node on this port.
    Follows(u16),
    /// A primary without slots, or a replica of an unknown node.
    Idle,
}

/// Each node's role, by port.
type Topology = BTreeMap<u16, Role>;

/// A node as one line of `CLUSTER NODES` describes it.
#[derive(Debug, Clone)]
struct NodeLine {
    id: String,
    port: u16,
    primary: bool,
    failing: bool,
    primary_id: Option<String>,
    slots: Vec<(u16, u16)>,
}

/// Six `redis-server`s formed into a cluster; killed and removed on drop.
pub struct PrivateCluster {
    nodes: Vec<Node>,
}

impl PrivateCluster {
    /// Starts six nodes, forms them into a cluster of three primaries with one replica each,
    /// and waits until every node reports `cluster_state:ok`, every replica is in sync with its
    /// primary and all nodes agree on who serves which slots.
    pub async fn start() -> Self {
        let mut cluster = Self { nodes: Vec::new() };
        for port in free_ports(NODES) {
            cluster.nodes.push(start_node(port));
        }
        for node in &cluster.nodes {
            cluster.wait_pong(node.port).await;
        }
        cluster.create().await;
        cluster.wait_settled("the new cluster").await;
        cluster
    }

    /// The value of `redis.url` (with `redis.cluster = true`) for this cluster: every node.
    pub fn url(&self) -> String {
        self.ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A test configuration ([`crate::test_sets`] + `extra`) on this cluster.
    pub fn config(&self, ns: &str, extra: &[&str]) -> sked_core::config::Config {
        let mut sets = crate::test_sets(ns);
        sets.push("redis.cluster=true".into());
        sets.push(format!("redis.url={}", self.url()));
        sets.extend(extra.iter().map(|s| s.to_string()));
        sked_core::config::load(&sked_core::config::Layers {
            sets,
            ..Default::default()
        })
        .expect("test configuration is valid")
    }

    /// The nodes' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The primary and replicas that serve `key`'s hash slot (`CLUSTER KEYSLOT`), as the first
    /// node sees them.
    pub async fn owners(&self, key: &str) -> SlotOwners {
        let port = self.nodes[0].port;
        let slot: u16 = self
            .query(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await
            .unwrap_or_else(|e| self.fail(&format!("CLUSTER KEYSLOT {key} on {port}: {e}")));
        let lines = self
            .cluster_nodes(port)
            .await
            .unwrap_or_else(|e| self.fail(&e));
        owners_of(&lines, slot).unwrap_or_else(|| {
            self.fail(&format!(
                "no primary serves slot {slot} (key {key}): {lines:?}"
            ))
        })
    }

    /// The ports of the primaries that serve slots now.
    pub async fn primaries(&self) -> Vec<u16> {
        let lines = self
            .cluster_nodes(self.nodes[0].port)
            .await
            .unwrap_or_else(|e| self.fail(&e));
        lines
            .iter()
            .filter(|l| l.primary && !l.slots.is_empty())
            .map(|l| l.port)
            .collect()
    }

    /// Number of keys matching `pattern` (a `SCAN` of every primary).
    pub async fn count_keys(&self, pattern: &str) -> usize {
        let mut total = 0;
        for port in self.primaries().await {
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = self
                    .query(
                        port,
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(1000),
                    )
                    .await
                    .unwrap_or_else(|e| self.fail(&format!("SCAN on {port}: {e}")));
                total += keys.len();
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        total
    }

    /// A graceful manual failover: `CLUSTER FAILOVER` to the replica on `replica_port`, then
    /// waits until it reports `role:master`, every node reports `cluster_state:ok` and agrees
    /// that it serves its former primary's slots, and every replica (the former primary among
    /// them) is in sync again.
    pub async fn failover(&self, replica_port: u16) {
        let role = self.role(replica_port).await;
        if role != "slave" {
            self.fail(&format!(
                "failover: node {replica_port} is a {role}, not a replica"
            ));
        }
        let reply: String = self
            .query(replica_port, redis::cmd("CLUSTER").arg("FAILOVER"))
            .await
            .unwrap_or_else(|e| self.fail(&format!("CLUSTER FAILOVER on {replica_port}: {e}")));
        if reply != "OK" {
            self.fail(&format!("CLUSTER FAILOVER on {replica_port}: {reply}"));
        }
        let deadline = tokio::time::Instant::now() + SETTLE;
        while self.role(replica_port).await != "master" {
            if tokio::time::Instant::now() > deadline {
                self.fail(&format!(
                    "node {replica_port} did not become a primary within {SETTLE:?} of CLUSTER FAILOVER"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wait_settled(&format!("the failover to {replica_port}"))
            .await;
        let serves = self
            .cluster_nodes(self.nodes[0].port)
            .await
            .unwrap_or_else(|e| self.fail(&e))
            .iter()
            .any(|l| l.port == replica_port && l.primary && !l.slots.is_empty());
        if !serves {
            self.fail(&format!(
                "after the failover node {replica_port} serves no slots"
            ));
        }
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub async fn keyslot(&self, key: &str) -> u16 {
        let port = self.nodes[0].port;
        self.query(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await
            .unwrap_or_else(|e| self.fail(&format!("CLUSTER KEYSLOT {key} on {port}: {e}")))
    }

    /// The primary and replicas that serve `slot`, as the first node sees them.
    pub async fn slot_owners(&self, slot: u16) -> SlotOwners {
        let lines = self
            .cluster_nodes(self.nodes[0].port)
            .await
            .unwrap_or_else(|e| self.fail(&e));
        owners_of(&lines, slot)
            .unwrap_or_else(|| self.fail(&format!("no primary serves slot {slot}: {lines:?}")))
    }

    /// Moves `slots` from the primary on port `from` to the primary on port `to`, one slot
    /// after the other, by hand, as `redis-cli --cluster reshard` does, while clients keep
    /// using them: per slot `CLUSTER SETSLOT <slot> IMPORTING <from id>` on the target,
    /// `CLUSTER SETSLOT <slot> MIGRATING <to id>` on the source, then `CLUSTER GETKEYSINSLOT` +
    /// `MIGRATE ... KEYS` of `pace.keys_per_batch` keys at a time with `pace.pause` after each,
    /// until the source holds none of the slot's keys, then `CLUSTER SETSLOT <slot> NODE <to id>`
    /// on the target, the source and every other primary. Waits until the cluster has settled
    /// (every node agrees on the new slot map) before it returns.
    ///
    /// A `MIGRATE` refused because the key exists on the target too (`BUSYKEY`: a client
    /// created it there while the slot migrated), a key left on the source at the end, or a
    /// slot that `from` does not serve fails the test.
    pub async fn migrate_slots(
        &self,
        slots: &[u16],
        from: u16,
        to: u16,
        pace: MigratePace,
    ) -> Vec<SlotMigration> {
        let lines = self
            .cluster_nodes(from)
            .await
            .unwrap_or_else(|e| self.fail(&e));
        let id_of = |port: u16| {
            lines
                .iter()
                .find(|l| l.port == port && l.primary)
                .map(|l| l.id.clone())
                .unwrap_or_else(|| {
                    self.fail(&format!("migrate: node {port} is not a primary: {lines:?}"))
                })
        };
        let (from_id, to_id) = (id_of(from), id_of(to));
        let others: Vec<u16> = lines
            .iter()
            .filter(|l| l.primary && l.port != from && l.port != to)
            .map(|l| l.port)
            .collect();
        let mut source = self.connection(from).await;
        let batch = pace.keys_per_batch.max(1);
        let mut done = Vec::with_capacity(slots.len());
        for &slot in slots {
            let owner = self.slot_owners(slot).await;
            if owner.primary != from {
                self.fail(&format!(
                    "migrate slot {slot}: served by {}, not by {from}",
                    owner.primary
                ));
            }
            let started = std::time::Instant::now();
            self.setslot(to, slot, "IMPORTING", &from_id).await;
            self.setslot(from, slot, "MIGRATING", &to_id).await;
            let (mut keys_moved, mut batches) = (0, 0);
            loop {
                let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(batch)
                    .query_async(&mut source)
                    .await
                    .unwrap_or_else(|e| {
                        self.fail(&format!("CLUSTER GETKEYSINSLOT {slot} on {from}: {e}"))
                    });
                if keys.is_empty() {
                    break;
                }
                let reply: redis::RedisResult<String> = redis::cmd("MIGRATE")
                    .arg("127.0.0.1")
                    .arg(to)
                    .arg("")
                    .arg(0)
                    .arg(MIGRATE_TIMEOUT_MS)
                    .arg("KEYS")
                    .arg(&keys)
                    .query_async(&mut source)
                    .await;
                if let Err(e) = reply {
                    let names: Vec<_> = keys.iter().map(|k| String::from_utf8_lossy(k)).collect();
                    self.fail(&format!(
                        "MIGRATE of slot {slot} keys {names:?} from {from} to {to}: {e}"
                    ));
                }
                keys_moved += keys.len();
                batches += 1;
                tokio::time::sleep(pace.pause).await;
            }
            // The target first, so the slot is never served by nobody; then the source, which
            // from now on redirects with MOVED; then everybody else.
            self.setslot(to, slot, "NODE", &to_id).await;
            self.setslot(from, slot, "NODE", &to_id).await;
            for &other in &others {
                self.setslot(other, slot, "NODE", &to_id).await;
            }
            let left: u64 = self
                .query(from, redis::cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot))
                .await
                .unwrap_or_else(|e| self.fail(&format!("COUNTKEYSINSLOT {slot} on {from}: {e}")));
            if left != 0 {
                self.fail(&format!(
                    "slot {slot} moved from {from} to {to} but {left} of its keys stayed on {from}"
                ));
            }
            done.push(SlotMigration {
                slot,
                from,
                to,
                keys: keys_moved,
                batches,
                started,
                took: started.elapsed(),
            });
        }
        self.wait_settled(&format!("moving slots {slots:?} from {from} to {to}"))
            .await;
        for &slot in slots {
            let owner = self.slot_owners(slot).await;
            if owner.primary != to {
                self.fail(&format!(
                    "slot {slot} was moved to {to} but {} serves it",
                    owner.primary
                ));
            }
        }
        done
    }

    /// The keys of `slot` that each primary holds (`CLUSTER GETKEYSINSLOT` on each, whether
    /// it serves the slot or not), by port: where a key physically is, for failure reports.
    pub async fn slot_keys(&self, slot: u16) -> BTreeMap<u16, Vec<String>> {
        let mut out = BTreeMap::new();
        for port in self.primaries().await {
            let keys: Vec<String> = self
                .query(
                    port,
                    redis::cmd("CLUSTER")
                        .arg("GETKEYSINSLOT")
                        .arg(slot)
                        .arg(1_000_000),
                )
                .await
                .unwrap_or_else(|e| self.fail(&format!("GETKEYSINSLOT {slot} on {port}: {e}")));
            out.insert(port, keys);
        }
        out
    }

    /// `INFO errorstats` of every node, by port: how many of each error reply (`ASK`,
    /// `TRYAGAIN`, `MOVED`, ...) it sent since it started.
    pub async fn error_stats(&self) -> BTreeMap<u16, BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for port in self.ports() {
            let info: String = self
                .query(port, redis::cmd("INFO").arg("errorstats"))
                .await
                .unwrap_or_else(|e| self.fail(&format!("INFO errorstats on {port}: {e}")));
            let stats = info
                .lines()
                .filter_map(|l| {
                    let (name, rest) = l.strip_prefix("errorstat_")?.split_once(':')?;
                    let count = rest.strip_prefix("count=")?.trim().parse().ok()?;
                    Some((name.to_owned(), count))
                })
                .collect();
            out.insert(port, stats);
        }
        out
    }

    /// `CLUSTER SETSLOT <slot> <how> <node id>` on the node on `port`.
    async fn setslot(&self, port: u16, slot: u16, how: &str, id: &str) {
        let reply: String = self
            .query(
                port,
                redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg(how)
                    .arg(id),
            )
            .await
            .unwrap_or_else(|e| {
                self.fail(&format!("CLUSTER SETSLOT {slot} {how} {id} on {port}: {e}"))
            });
        if reply != "OK" {
            self.fail(&format!(
                "CLUSTER SETSLOT {slot} {how} {id} on {port}: {reply}"
            ));
        }
    }

    /// `redis-cli --cluster create` over all nodes, one replica per primary.
    async fn create(&self) {
        let addrs: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let out = tokio::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| {
                self.fail(&format!(
                    "run redis-cli (install it: scripts/dev-stack.sh up): {e}"
                ))
            });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || !text.contains("All 16384 slots covered") {
            self.fail(&format!(
                "redis-cli --cluster create {} failed ({}):\n{text}",
                addrs.join(" "),
                out.status
            ));
        }
    }

    /// Waits until [`Self::settled`] holds, or fails with its last complaint.
    async fn wait_settled(&self, what: &str) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let why = match self.settled().await {
                Ok(()) => return,
                Err(why) => why,
            };
            if tokio::time::Instant::now() > deadline {
                self.fail(&format!("{what}: not settled after {SETTLE:?}: {why}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every node reports `cluster_state:ok`, knows all nodes and sees none failing; all nodes
    /// see the same topology, in which three primaries serve all 16384 slots and every other
    /// node replicates one of them (a former primary too); every replica's link is up. `Err`
    /// says what is not there yet.
    async fn settled(&self) -> Result<(), String> {
        let mut views: Vec<(u16, Topology)> = Vec::new();
        for node in &self.nodes {
            let port = node.port;
            let info: String = self
                .query(port, redis::cmd("CLUSTER").arg("INFO"))
                .await
                .map_err(|e| format!("CLUSTER INFO on {port}: {e}"))?;
            let state = field(&info, "cluster_state").unwrap_or_default();
            if state != "ok" {
                return Err(format!("node {port}: cluster_state:{state}"));
            }
            let known = field(&info, "cluster_known_nodes").unwrap_or_default();
            if known != NODES.to_string() {
                return Err(format!("node {port}: cluster_known_nodes:{known}"));
            }
            let lines = self.cluster_nodes(port).await?;
            if let Some(bad) = lines.iter().find(|l| l.failing) {
                return Err(format!("node {port} sees node {} failing", bad.port));
            }
            let view = topology(&lines);
            let primaries = view
                .values()
                .filter(|r| matches!(r, Role::Serves(_)))
                .count();
            let slots: u32 = view
                .values()
                .filter_map(|r| match r {
                    Role::Serves(slots) => Some(slots),
                    _ => None,
                })
                .flatten()
                .map(|(a, b)| u32::from(b - a) + 1)
                .sum();
            if primaries != NODES / 2 || slots != 16384 {
                return Err(format!(
                    "node {port} sees {primaries} primaries serving {slots} slots: {view:?}"
                ));
            }
            if let Some((other, role)) = view.iter().find(|(_, r)| match r {
                Role::Serves(_) => false,
                Role::Follows(p) => !matches!(view.get(p), Some(Role::Serves(_))),
                Role::Idle => true,
            }) {
                return Err(format!(
                    "node {port} sees node {other} as {role:?}, neither serving slots nor replicating a primary that does"
                ));
            }
            let replication: String = self
                .query(port, redis::cmd("INFO").arg("replication"))
                .await
                .map_err(|e| format!("INFO replication on {port}: {e}"))?;
            if field(&replication, "role").as_deref() == Some("slave") {
                let link = field(&replication, "master_link_status").unwrap_or_default();
                if link != "up" {
                    return Err(format!("replica {port}: master_link_status:{link}"));
                }
            }
            views.push((port, view));
        }
        if let Some((port, view)) = views.iter().find(|(_, v)| *v != views[0].1) {
            return Err(format!(
                "nodes disagree: {} sees {:?}, {port} sees {view:?}",
                views[0].0, views[0].1
            ));
        }
        Ok(())
    }

    /// `role` of `INFO replication` on `port` (`master` or `slave`).
    async fn role(&self, port: u16) -> String {
        let info: String = self
            .query(port, redis::cmd("INFO").arg("replication"))
            .await
            .unwrap_or_else(|e| self.fail(&format!("INFO replication on {port}: {e}")));
        field(&info, "role").unwrap_or_default()
    }

    /// `CLUSTER NODES` as `port` sees it.
    async fn cluster_nodes(&self, port: u16) -> Result<Vec<NodeLine>, String> {
        let text: String = self
            .query(port, redis::cmd("CLUSTER").arg("NODES"))
            .await
            .map_err(|e| format!("CLUSTER NODES on {port}: {e}"))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                parse_node_line(l).ok_or_else(|| format!("unreadable CLUSTER NODES line {l:?}"))
            })
            .collect()
    }

    /// Waits until the node on `port` answers `PING`.
    async fn wait_pong(&self, port: u16) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            match self.query::<String>(port, &redis::cmd("PING")).await {
                Ok(pong) if pong == "PONG" => return,
                Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(other) => self.fail(&format!("node {port} answered PING with {other}")),
                Err(e) => self.fail(&format!("node {port} does not answer: {e}")),
            }
        }
    }

    /// Runs one command on the node on `port`, over a connection of its own.
    async fn query<T: FromRedisValue>(&self, port: u16, cmd: &redis::Cmd) -> Result<T, String> {
        let mut conn = self
            .try_connection(port, COMMAND_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        cmd.query_async(&mut conn).await.map_err(|e| e.to_string())
    }

    /// A connection to the node on `port` (not cluster-aware) for many commands in a row; a
    /// reply may take up to the `MIGRATE` timeout.
    async fn connection(&self, port: u16) -> redis::aio::MultiplexedConnection {
        let reply_within = Duration::from_millis(MIGRATE_TIMEOUT_MS) + COMMAND_TIMEOUT;
        self.try_connection(port, reply_within)
            .await
            .unwrap_or_else(|e| self.fail(&format!("connect to {port}: {e}")))
    }

    async fn try_connection(
        &self,
        port: u16,
        reply_within: Duration,
    ) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(COMMAND_TIMEOUT)
            .set_response_timeout(reply_within);
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Panics with `what` and the tail of every node's log.
    fn fail(&self, what: &str) -> ! {
        let mut logs = String::new();
        for node in &self.nodes {
            let log = std::fs::read_to_string(node.dir.join("redis.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            logs.push_str(&format!("\n--- node {} (last 25 lines) ---\n", node.port));
            for line in &lines[lines.len().saturating_sub(25)..] {
                logs.push_str(line);
                logs.push('\n');
            }
        }
        panic!("private redis cluster: {what}{logs}");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}

/// `n` distinct free ports whose bus ports (port + 10000) are free too and no other chosen
/// node's port.
fn free_ports(n: usize) -> Vec<u16> {
    // Held until all are chosen, so the OS hands out no port twice.
    let mut held = Vec::new();
    let mut ports: Vec<u16> = Vec::new();
    for _ in 0..1000 {
        if ports.len() == n {
            return ports;
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local addr").port();
        held.push(listener);
        let Some(bus) = port.checked_add(BUS_OFFSET) else {
            continue;
        };
        let clash = ports.iter().any(|p| *p == bus || p + BUS_OFFSET == port);
        if !clash && TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            ports.push(port);
        }
    }
    panic!("private redis cluster: no {n} free ports with free bus ports (+{BUS_OFFSET})");
}

/// Starts one cluster-enabled node on `port` in a new temporary directory.
fn start_node(port: u16) -> Node {
    let dir = std::env::temp_dir().join(crate::unique(&format!("sked-cluster-{port}")));
    std::fs::create_dir_all(&dir).expect("cluster node dir");
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--cluster-node-timeout", "1000"])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(&dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server (install it: scripts/dev-stack.sh up)");
    Node { port, dir, child }
}

/// `name:value` of an `INFO`-style text.
fn field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    })
}

/// One line of `CLUSTER NODES`: `<id> <ip:port@bus[,hostname]> <flags> <primary id | ->
/// <ping> <pong> <epoch> <link> <slot | from-to>...` (`[slot->-id]` migration entries skipped).
fn parse_node_line(line: &str) -> Option<NodeLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return None;
    }
    let addr = fields[1].split(['@', ',']).next()?;
    let port = addr.rsplit(':').next()?.parse().ok()?;
    let flags: Vec<&str> = fields[2].split(',').collect();
    let mut slots = Vec::new();
    for s in fields[8..].iter().filter(|s| !s.starts_with('[')) {
        let (from, to) = s.split_once('-').unwrap_or((s, s));
        slots.push((from.parse().ok()?, to.parse().ok()?));
    }
    Some(NodeLine {
        id: fields[0].to_owned(),
        port,
        primary: flags.contains(&"master"),
        failing: flags.iter().any(|f| matches!(*f, "fail" | "fail?")),
        primary_id: (fields[3] != "-").then(|| fields[3].to_owned()),
        slots,
    })
}

/// The topology that `lines` describe.
fn topology(lines: &[NodeLine]) -> Topology {
    let port_of: BTreeMap<&str, u16> = lines.iter().map(|l| (l.id.as_str(), l.port)).collect();
    lines
        .iter()
        .map(|l| {
            let role = match (&l.primary_id, l.primary) {
                (_, true) if !l.slots.is_empty() => Role::Serves(l.slots.clone()),
                (Some(id), false) => port_of
                    .get(id.as_str())
                    .map_or(Role::Idle, |p| Role::Follows(*p)),
                _ => Role::Idle,
            };
            (l.port, role)
        })
        .collect()
}

/// Who serves `slot` according to `lines`.
fn owners_of(lines: &[NodeLine], slot: u16) -> Option<SlotOwners> {
    let primary = lines
        .iter()
        .find(|l| l.primary && l.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))?;
    let replicas = lines
        .iter()
        .filter(|l| l.primary_id.as_deref() == Some(primary.id.as_str()))
        .map(|l| l.port)
        .collect();
    Some(SlotOwners {
        slot,
        primary: primary.port,
        replicas,
    })
}
