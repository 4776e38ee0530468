//! Key names. One place builds them so no two services disagree.

use crate::job::{JobId, Shard};

/// Builds the Redis key names of one installation.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    shards: u16,
}

impl Keys {
    /// Keys under `prefix`, with `shards` due-index shards.
    pub fn new(prefix: impl Into<String>, shards: u16) -> Self {
        Self {
            prefix: prefix.into(),
            shards: shards.max(1),
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The shard that owns a job.
    pub fn shard_of(&self, id: &JobId) -> Shard {
        Shard::of(id.as_str(), self.shards)
    }

    /// The shard of any other key named by the client (an idempotency key).
    pub fn shard_of_key(&self, key: &str) -> Shard {
        Shard::of(key, self.shards)
    }

    /// The job record.
    pub fn job(&self, shard: Shard, id: &JobId) -> String {
        format!("{}{}", self.job_prefix(shard), id.as_str())
    }

    /// The shard's due index.
    pub fn due(&self, shard: Shard) -> String {
        format!("{}:{}:due", self.prefix, shard.tag())
    }

    /// The shard's in-flight set.
    pub fn inflight(&self, shard: Shard) -> String {
        format!("{}:{}:inflight", self.prefix, shard.tag())
    }

    /// The shard's fire counters of recurring jobs (hash: job id → fires so far).
    pub fn runs(&self, shard: Shard) -> String {
        format!("{}:{}:runs", self.prefix, shard.tag())
    }

    /// Prefix of the shard's job keys (the job id follows).
    pub fn job_prefix(&self, shard: Shard) -> String {
        format!("{}:{}:j:", self.prefix, shard.tag())
    }

    /// An idempotency key.
    pub fn idempotency(&self, key: &str) -> String {
        let shard = self.shard_of_key(key);
        format!("{}:idem:{}:{}", self.prefix, shard.tag(), key)
    }

    /// The wake-up channel the scheduler listens on.
    pub fn wake_channel(&self) -> String {
        format!("{}:wake", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_job_share_the_shard_hash_tag() {
        let keys = Keys::new("sked", 16);
        let id = JobId::parse("order-1").unwrap();
        let shard = keys.shard_of(&id);
        let tag = shard.tag();
        assert!(keys.job(shard, &id).contains(&tag));
        assert!(keys.due(shard).contains(&tag));
        assert!(keys.inflight(shard).contains(&tag));
        assert!(keys.job(shard, &id).starts_with("sked:{s"));
    }
}
