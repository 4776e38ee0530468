//! [`Connection`]: one Redis server or a Redis Cluster behind one type, and [`Commands`]:
//! pipelines that stay within one slot on a cluster.
//!
//! A cluster rejects a pipeline whose keys hash to different slots, so work that spans shards
//! (an ingest batch, the gauges) is built as groups of one slot each: on a single server the
//! groups go out as one pipeline (one round trip), on a cluster as concurrent pipelines, one
//! per group, each routed to the node that owns its slot.

use std::time::Duration;

use futures::future::try_join_all;
use redis::{
    Cmd, Pipeline, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};

use crate::config::RedisOptions;

/// Connect within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A reply later than this is an error (transient: the caller retries).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A multiplexed connection to one Redis server or to a Redis Cluster. Cheap to clone; clones
/// share the connection(s). Reconnects by itself; a call during an outage fails (transient).
#[derive(Clone)]
pub enum Connection {
    /// One server (`redis.cluster = false`).
    Single(ConnectionManager),
    /// A cluster (`redis.cluster = true`): commands are routed by key slot, `MOVED` and `ASK`
    /// redirects are followed and the slot map is refreshed after a failover.
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects to what `options` name. Fails when Redis cannot be reached now.
    pub async fn connect(options: &RedisOptions) -> RedisResult<Self> {
        if options.cluster {
            // Redirects and TRYAGAIN (a migrating slot) are retried here briefly, 5 times within
            // about half a second (redis-rs waits 1.3 s or more between retries by default,
            // long enough to outlive a lease); past that the caller's own backoff takes over.
            let mut builder = ClusterClientBuilder::new(options.urls());
            if let Some(password) = &options.password {
                builder = builder.password(password.expose().to_owned());
            }
            let client = builder
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(5)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .retry_wait_formula(20, 2)
                .build()?;
            Ok(Self::Cluster(client.get_async_connection().await?))
        } else {
            let mut info = redis::IntoConnectionInfo::into_connection_info(options.url.trim())?;
            if let Some(password) = &options.password {
                info.redis.password = Some(password.expose().to_owned());
            }
            let client = redis::Client::open(info)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(RESPONSE_TIMEOUT)
                .set_number_of_retries(1);
            Ok(Self::Single(
                ConnectionManager::new_with_config(client, config).await?,
            ))
        }
    }

    /// True for a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// An empty set of slot-grouped pipelines for this connection.
    pub fn commands(&self) -> Commands {
        Commands {
            pipes: Vec::new(),
            split: self.is_cluster(),
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Commands in groups, each group's keys in one slot (see the module docs).
pub struct Commands {
    pipes: Vec<Pipeline>,
    split: bool,
}

impl Commands {
    /// The pipeline to add the next group's commands to: a new one on a cluster, the one
    /// shared pipeline on a single server.
    pub fn group(&mut self) -> &mut Pipeline {
        if self.split || self.pipes.is_empty() {
            self.pipes.push(redis::pipe());
        }
        let last = self.pipes.len() - 1;
        &mut self.pipes[last]
    }

    /// True when no command was added.
    pub fn is_empty(&self) -> bool {
        self.pipes.iter().all(|p| p.is_empty())
    }

    /// Runs every group; the replies in the order the commands were added.
    pub async fn query(&self, conn: &Connection) -> RedisResult<Vec<Value>> {
        let replies = try_join_all(self.pipes.iter().map(|pipe| {
            let mut conn = conn.clone();
            async move { pipe.query_async::<Vec<Value>>(&mut conn).await }
        }))
        .await?;
        Ok(replies.into_iter().flatten().collect())
    }
}
