//! Key names. One place builds them so no two services disagree.

use crate::job::{JobId, Shard};
use crate::request::JobSpec;

/// One secondary index: the pending jobs of an app, of a tenant, with a label, or recurring.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Index {
    /// `a:<app>`.
    App(String),
    /// `t:<tenant>`.
    Tenant(String),
    /// `l:<key>=<value>`.
    Label(String, String),
    /// `r`: the recurring jobs (cron and every), what `kind=cron|every` reads. One-shots,
    /// most of what a store holds, are not in it and pay nothing for it.
    Recurring,
    /// `c`: the creation index ([`Keys::created`]), which holds finished jobs too and is
    /// never among [`Index::of`] (its score is the creation instant, not the due one).
    Created,
}

impl Index {
    /// The index's name inside a shard (a suffix of its key; also the claim script's view of
    /// a job's memberships, see `lua/record.lua`).
    pub fn name(&self) -> String {
        match self {
            Index::App(app) => format!("a:{app}"),
            Index::Tenant(tenant) => format!("t:{tenant}"),
            Index::Label(key, value) => format!("l:{key}={value}"),
            Index::Recurring => "r".to_owned(),
            Index::Created => "c".to_owned(),
        }
    }

    /// The indexes a stored job is in: its app, its tenant, each label, and the recurring
    /// index for a cron or every job. Retry, trigger and backfill jobs (internal one-shots
    /// for another job's fire) are in none.
    pub fn of(spec: &JobSpec) -> Vec<Index> {
        if spec.retry_of.is_some() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(3 + spec.labels.len());
        out.push(Index::App(spec.app.clone()));
        if let Some(tenant) = &spec.tenant {
            out.push(Index::Tenant(tenant.clone()));
        }
        for (k, v) in &spec.labels {
            out.push(Index::Label(k.clone(), v.clone()));
        }
        if spec.schedule.is_recurring() {
            out.push(Index::Recurring);
        }
        out
    }
}

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

    /// The shard's fire counters of recurring jobs (hash: job id → fires so far), and, under
    /// `/<job id>`, the deadline of a recurring job's expired lease until the claim that
    /// replays its plan is acknowledged (see `scheduler::plan`).
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

    /// A secondary index of the shard's pending jobs (sorted set: job id by due ms), named
    /// by [`Index::name`].
    pub fn index(&self, shard: Shard, index: &Index) -> String {
        format!("{}{}", self.index_prefix(shard), index.name())
    }

    /// Set once the shard's recurring index ([`Index::Recurring`]) holds every recurring job:
    /// at once in a new store, after `Store::backfill_recurring` in one written by a version
    /// without that index. Until then a listing by kind reads the state sets.
    pub fn recurring_ready(&self, shard: Shard) -> String {
        format!("{}:{}:ixr-ready", self.prefix, shard.tag())
    }

    /// Prefix of the shard's secondary index keys (the index name follows).
    pub fn index_prefix(&self, shard: Shard) -> String {
        format!("{}:{}:ix:", self.prefix, shard.tag())
    }

    /// How many jobs each of the shard's app and tenant indexes holds (hash: index name →
    /// count, kept by the scripts that add to and remove from the indexes; names at zero are
    /// removed), so that `GET /v1/stats` reads one hash per shard.
    pub fn counts(&self, shard: Shard) -> String {
        format!("{}:{}:cnt", self.prefix, shard.tag())
    }

    /// The one-second window of the rate quota `name` (`t:<tenant>`, `a:<app>`): a counter
    /// that expires after two seconds, in its own slot.
    pub fn quota_window(&self, name: &str, second: i64) -> String {
        format!("{}:{{q:{name}}}:{second}", self.prefix)
    }

    /// The start-rate state of a global limit (`a:<app>`, `t:<tenant>`): the GCRA theoretical
    /// arrival time, in epoch microseconds. One hash tag per limit.
    pub fn rate_limit(&self, name: &str) -> String {
        format!("{}:{{rl:{name}}}", self.prefix)
    }

    /// The running jobs of one value of a concurrency key (sorted set: fire id by lease end
    /// ms). One hash tag per value; `value` is [`crate::store::limits::key_value`]'s.
    pub fn concurrency(&self, key: &str, value: &str) -> String {
        format!("{}:{{cc:{key}:{value}}}", self.prefix)
    }

    /// The shard's creation index: every listed job (not the internal one-shots of retries,
    /// triggers and backfills) while its record lives, by the epoch ms it was first stored.
    pub fn created(&self, shard: Shard) -> String {
        format!("{}:{}:ix:c", self.prefix, shard.tag())
    }

    /// Jobs paused one by one (sorted set: job id by the due ms they will fire at on resume).
    pub fn paused(&self, shard: Shard) -> String {
        format!("{}:{}:paused", self.prefix, shard.tag())
    }

    /// Due jobs whose app or tenant is paused (sorted set: job id by due ms).
    pub fn held(&self, shard: Shard) -> String {
        format!("{}:{}:held", self.prefix, shard.tag())
    }

    /// Paused apps and tenants, copied into every shard so that the claim script reads them
    /// in its own slot (hash: `a:<app>` / `t:<tenant>` → pause JSON).
    pub fn hold(&self, shard: Shard) -> String {
        format!("{}:{}:hold", self.prefix, shard.tag())
    }

    /// Finished jobs whose records still live (sorted set: job id by finish ms), trimmed to
    /// `redis.idempotency_ttl`.
    pub fn done(&self, shard: Shard) -> String {
        format!("{}:{}:done", self.prefix, shard.tag())
    }

    /// Pause notes of paused jobs (hash: job id → state char before the pause, then JSON).
    pub fn notes(&self, shard: Shard) -> String {
        format!("{}:{}:notes", self.prefix, shard.tag())
    }

    /// A job's latest fires (list, newest first: `<due ms>:<fired ms>:<origin>`).
    pub fn history(&self, shard: Shard, id: &str) -> String {
        format!("{}:{}:h:{}", self.prefix, shard.tag(), id)
    }

    /// A recurring job's latest slots that did not fire (list, newest first:
    /// `<due ms>:<noted ms>:<skipped|excluded>`; 50 kept, 30 days after the latest).
    pub fn slots(&self, shard: Shard, id: &str) -> String {
        format!("{}:{}:sl:{}", self.prefix, shard.tag(), id)
    }

    /// A job's counters (hash: `fired`, `missed`, `skipped`, `excluded`, `triggered`, `backfilled`).
    pub fn counters(&self, shard: Shard, id: &str) -> String {
        format!("{}:{}:c:{}", self.prefix, shard.tag(), id)
    }

    /// Paused apps and tenants of the installation (hash, as [`Keys::hold`]), for listing.
    pub fn pauses(&self) -> String {
        format!("{}:pauses", self.prefix)
    }

    /// The calendars created through the API (hash: name → calendar JSON), under a hash tag
    /// of its own (one slot on a Redis Cluster).
    pub fn calendars(&self) -> String {
        format!("{}:{{calendars}}", self.prefix)
    }

    /// Bulk operations by creation (sorted set: operation id by created ms).
    pub fn operations(&self) -> String {
        format!("{}:ops", self.prefix)
    }

    /// One part of a bulk operation: `""` (its resource, JSON), `run` (the runner's progress),
    /// `cancel` (asked to stop), `lease` (which process runs it). The parts share the hash tag
    /// `{op-<id>}`, so they can be written in one transaction on a Redis Cluster too.
    pub fn operation(&self, id: &str, part: &str) -> String {
        if part.is_empty() {
            format!("{}:{{op-{id}}}", self.prefix)
        } else {
            format!("{}:{{op-{id}}}:{part}", self.prefix)
        }
    }

    /// The running processes by when each last announced itself (sorted set: replica id by ms),
    /// under the hash tag `{replicas}` with [`Keys::replica_info`].
    pub fn replicas_seen(&self) -> String {
        format!("{}:{{replicas}}:seen", self.prefix)
    }

    /// What each running process announced (hash: replica id → JSON).
    pub fn replica_info(&self) -> String {
        format!("{}:{{replicas}}:info", self.prefix)
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
