//! The Redis side of `[global_limits]`, shared by every worker: start rates as GCRA
//! reservations, and concurrency keys as sorted sets of leased slots. Each limit (each value of
//! a concurrency key) is one key under its own hash tag, so on a Redis Cluster the limits
//! spread over the nodes and every call touches one slot. Both scripts read the clock of the
//! Redis node with `TIME`, so every worker sees the same time whatever its own clock says.
//!
//! Memory: a rate limit is one string per app or tenant (~80 bytes). A concurrency value is
//! one sorted set while a job holds a slot of it (~100 bytes plus ~60 per running job); the
//! set expires with its last lease.

use std::{borrow::Cow, sync::LazyLock, time::Duration};

use redis::Script;

use super::{Error, Store};

/// A GCRA reservation on one start rate.
///
/// KEYS: the limit's key (its theoretical arrival time, epoch µs). ARGV: emission interval µs,
/// tolerance µs (interval × (burst − 1)), most wait µs. Returns `{granted, wait µs}`: granted
/// (1) means the caller owns the start at now + wait; refused (0, when the wait would be over
/// the most) reserves nothing.
static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(RESERVE_LUA));

const RESERVE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[2]) - now
if wait < 0 then wait = 0 end
if wait > tonumber(ARGV[3]) then return {0, wait} end
local next = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1000)
return {1, wait}
"#;

/// Takes a slot of one concurrency value, or says how long until the earliest lease ends.
///
/// KEYS: the value's set (member: holder, score: lease end epoch ms). ARGV: most holders,
/// lease ms, holder. Expired leases are dropped first. A holder that already has a slot keeps
/// it (its lease is renewed): a redelivered fire takes no second slot. Returns 0 when taken,
/// else the ms until the earliest lease ends (at least 1).
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_LUA));

const ACQUIRE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) - now)
"#;

/// The answer of [`Store::reserve_start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The start is ours after this wait.
    Granted(Duration),
    /// Nothing reserved: the next start would come after this wait, more than allowed.
    Refused(Duration),
}

/// One start rate: `per_second` starts, `burst` at once after an idle spell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Starts per second.
    pub per_second: f64,
    /// Starts at once (at least 1).
    pub burst: u32,
}

impl Rate {
    fn interval_us(self) -> f64 {
        (1e6 / self.per_second).max(1.0)
    }
}

/// How a concurrency value is written into its key: as it is when it is 1-64 of
/// `[A-Za-z0-9._:@-]`, else `~` and its 128-bit hash (no hash-tag braces, bounded length).
pub fn key_value(value: &str) -> Cow<'_, str> {
    let plain = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b));
    if plain {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!(
            "~{:032x}",
            xxhash_rust::xxh3::xxh3_128(value.as_bytes())
        ))
    }
}

impl Store {
    /// Reserves one start of the rate limit `name` (`a:<app>`, `t:<tenant>`), shared by every
    /// worker: granted when it is due within `max_wait`.
    pub async fn reserve_start(
        &self,
        name: &str,
        rate: Rate,
        max_wait: Duration,
    ) -> Result<Reservation, Error> {
        let interval = rate.interval_us();
        let tolerance = interval * f64::from(rate.burst.max(1) - 1);
        let mut conn = self.conn.clone();
        let (granted, wait_us): (i64, i64) = RESERVE
            .key(self.keys.rate_limit(name))
            .arg(interval.round() as i64)
            .arg(tolerance.round() as i64)
            .arg(i64::try_from(max_wait.as_micros()).unwrap_or(i64::MAX))
            .invoke_async(&mut conn)
            .await?;
        let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0));
        Ok(if granted == 1 {
            Reservation::Granted(wait)
        } else {
            Reservation::Refused(wait)
        })
    }

    /// Takes a slot of `value` of the concurrency key `key` for `holder` (a fire id) until
    /// `lease` ends, unless `max` others hold one: `None` when taken, else how long until the
    /// earliest lease ends (slots usually free sooner, when their jobs finish).
    pub async fn acquire_slot(
        &self,
        key: &str,
        value: &str,
        max: u32,
        holder: &str,
        lease: Duration,
    ) -> Result<Option<Duration>, Error> {
        let mut conn = self.conn.clone();
        let wait_ms: i64 = ACQUIRE
            .key(self.keys.concurrency(key, &key_value(value)))
            .arg(max)
            .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg(holder)
            .invoke_async(&mut conn)
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms.unsigned_abs())))
    }

    /// Gives back `holder`'s slot of `value` of the concurrency key `key`.
    pub async fn release_slot(&self, key: &str, value: &str, holder: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("ZREM")
            .arg(self.keys.concurrency(key, &key_value(value)))
            .arg(holder)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The holders of `value` of the concurrency key `key` with their lease ends (epoch ms),
    /// expired ones included until the next acquire drops them. For tests and diagnostics.
    pub async fn slot_holders(&self, key: &str, value: &str) -> Result<Vec<(String, i64)>, Error> {
        let mut conn = self.conn.clone();
        let holders: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(self.keys.concurrency(key, &key_value(value)))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        Ok(holders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_are_plain_or_hashed_never_braced() {
        assert_eq!(key_value("cust-42"), "cust-42");
        assert_eq!(key_value("a@b.c:1"), "a@b.c:1");
        for odd in ["", "{x}", "a b", "é", &"x".repeat(65)] {
            let v = key_value(odd);
            assert!(v.starts_with('~') && v.len() == 33, "{odd:?} -> {v}");
        }
        assert_ne!(key_value("{x}"), key_value("{y}"));
    }

    #[test]
    fn rates_space_their_starts() {
        let r = Rate {
            per_second: 50.0,
            burst: 1,
        };
        assert_eq!(r.interval_us(), 20_000.0);
    }
}
