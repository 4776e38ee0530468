//! What the submission quotas of `[quotas]` read and count: pending jobs per app and tenant
//! (the kept index counts of every shard) and the submissions of the current second.

use std::sync::LazyLock;

use redis::{Script, from_redis_value};

use super::{Error, Store};
use crate::job::Shard;

/// Takes up to `n` from the one-second window of a rate quota, as many as the limit leaves.
///
/// KEYS: window. ARGV: n, limit. Returns how many were taken.
static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE_LUA));

const TAKE_LUA: &str = r#"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local take = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if take <= 0 then return 0 end
redis.call('INCRBY', KEYS[1], take)
redis.call('PEXPIRE', KEYS[1], 2000)
return take
"#;

impl Store {
    /// Pending jobs of each index name (`a:<app>`, `t:<tenant>`), summed over the shards:
    /// one HMGET per shard, in one round trip per node.
    pub async fn pending_counts(&self, names: &[String]) -> Result<Vec<u64>, Error> {
        let mut out = vec![0u64; names.len()];
        if names.is_empty() {
            return Ok(out);
        }
        let mut cmds = self.conn.commands();
        for s in 0..self.keys.shards() {
            cmds.group().hget(self.keys.counts(Shard(s)), names);
        }
        for reply in cmds.query(&self.conn).await? {
            // HMGET of one field answers a bare value, of several an array.
            let values: Vec<Option<i64>> = if names.len() == 1 {
                vec![from_redis_value(&reply)?]
            } else {
                from_redis_value(&reply)?
            };
            for (total, v) in out.iter_mut().zip(values) {
                *total += v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
            }
        }
        Ok(out)
    }

    /// Takes up to `n` submissions of the rate quota `name` (`t:<tenant>`, `a:<app>`) in the
    /// second `second` (epoch seconds), shared by every ingest replica; how many it took
    /// (fewer than `n` when the second would pass `limit`).
    pub async fn take_rate(
        &self,
        name: &str,
        second: i64,
        n: u64,
        limit: u32,
    ) -> Result<u64, Error> {
        let mut conn = self.conn.clone();
        let taken: i64 = TAKE
            .key(self.keys.quota_window(name, second))
            .arg(n)
            .arg(limit)
            .invoke_async(&mut conn)
            .await?;
        Ok(u64::try_from(taken).unwrap_or(0))
    }
}
