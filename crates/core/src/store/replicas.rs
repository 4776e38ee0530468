//! Who runs: every sked process announces itself every [`ANNOUNCE_EVERY`] (its service, host,
//! version and a few counts of its own, [`Replica`]), and `GET /v1/cluster` lists those seen
//! within [`GONE_AFTER`]. A process that drains takes itself out; one killed -9 drops off the
//! list after [`GONE_AFTER`], and its entry is removed after [`FORGET_AFTER`] by the reader.
//! Two keys under one hash tag ([`Keys::replicas_seen`](super::Keys::replicas_seen)); a
//! read is two commands over at most [`MAX_LISTED`] processes.

use std::time::Duration;

use chrono::Utc;
use redis::AsyncCommands;
pub use sked_api::stats::{LatenessWindow, Replica};

use super::{Error, Store};

/// How often a process announces itself.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(5);
/// A process not heard from for this long is not listed.
pub const GONE_AFTER: Duration = Duration::from_secs(20);
/// A process not heard from for this long is removed (at most 100 per read).
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Most processes listed.
pub const MAX_LISTED: usize = 1_000;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Records `replica` as seen now (its `seen_at`).
    pub async fn announce(&self, replica: &Replica) -> Result<(), Error> {
        let json = serde_json::to_string(replica).map_err(|e| Error::Protocol(e.to_string()))?;
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .hset(self.keys.replica_info(), &replica.id, json)
            .ignore()
            .zadd(
                self.keys.replicas_seen(),
                &replica.id,
                replica.seen_at.timestamp_millis(),
            )
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Takes replica `id` off the list (it is draining).
    pub async fn retire(&self, id: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .zrem(self.keys.replicas_seen(), id)
            .ignore()
            .hdel(self.keys.replica_info(), id)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The processes seen within [`GONE_AFTER`], by service, host and id; removes those not
    /// seen for [`FORGET_AFTER`].
    pub async fn replicas(&self) -> Result<Vec<Replica>, Error> {
        let now = Utc::now().timestamp_millis();
        let (seen, info) = (self.keys.replicas_seen(), self.keys.replica_info());
        let mut conn = self.conn.clone();
        let old: Vec<String> = conn
            .zrangebyscore_limit(&seen, "-inf", now - ms(FORGET_AFTER), 0, 100)
            .await?;
        if !old.is_empty() {
            let _: () = redis::pipe()
                .zrem(&seen, &old)
                .ignore()
                .hdel(&info, &old)
                .ignore()
                .query_async(&mut conn)
                .await?;
        }
        let ids: Vec<String> = conn
            .zrangebyscore_limit(&seen, now - ms(GONE_AFTER), "+inf", 0, MAX_LISTED as isize)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let raw: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&info)
            .arg(&ids)
            .query_async(&mut conn)
            .await?;
        let mut out: Vec<Replica> = raw
            .into_iter()
            .flatten()
            .filter_map(|j| serde_json::from_str(&j).ok())
            .collect();
        out.sort_by(|a, b| (&a.service, &a.host, &a.id).cmp(&(&b.service, &b.host, &b.id)));
        Ok(out)
    }
}
