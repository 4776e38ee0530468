//! The Redis job store: job records, the sharded due index and idempotency keys.
//!
//! Layout (prefix `P` = `redis.key_prefix`, `{sN}` = the shard's hash tag, so every multi-key
//! script touches one Redis Cluster slot):
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:{sN}:j:<job id>` | string | job record: 8-byte fingerprint, state char, layout byte, binary head, payload (sealed with AES-256-GCM when `encryption.enabled`, seal.rs), rest as JSON (record.rs) |
//! | `P:{sN}:due` | sorted set | pending job ids scored by due time (epoch ms) |
//! | `P:{sN}:inflight` | sorted set | `<due score>\|<job id>` of claimed fires, scored by lease deadline |
//! | `P:{sN}:runs` | hash | fires so far of recurring jobs (for `max_runs`) |
//! | `P:idem:{sM}:<key>` | string, TTL | idempotency key → job id (`M` = shard of the key) |
//! | `P:{sN}:paused` | sorted set | jobs paused one by one, by the due ms they resume at |
//! | `P:{sN}:notes` | hash | job id → state char before the pause + pause JSON (note, at) |
//! | `P:{sN}:held` | sorted set | due jobs of a paused app or tenant, by due ms |
//! | `P:{sN}:hold` | hash | `a:<app>` / `t:<tenant>` → pause JSON: the paused apps and tenants, in every shard |
//! | `P:{sN}:ix:a:<app>`, `…:ix:t:<tenant>`, `…:ix:l:<key>=<value>`, `…:ix:r` | sorted set | secondary indexes: pending jobs (scheduled, paused, held, firing) of an app, a tenant, with a label, and the recurring ones (cron, every), by due ms |
//! | `P:{sN}:ixr-ready` | string | creation ms up to which the recurring index holds every recurring job ([`recurring`]); absent: listing by kind reads the state sets |
//! | `P:{sN}:cnt` | hash | app and tenant index name → jobs in it, kept by the scripts (for `GET /v1/stats`) |
//! | `P:{sN}:ix:c` | sorted set | creation index: every listed job while its record lives, by the ms it was first stored |
//! | `P:{sN}:done` | sorted set | finished jobs whose record lives, by finish ms (trimmed to `redis.idempotency_ttl`) |
//! | `P:{sN}:c:<job id>` | hash | counters of a recurring or triggered job (`fired`, `missed`, `skipped`, `excluded`, `triggered`, `backfilled`) |
//! | `P:{sN}:h:<job id>` | list | its last 50 fires, `<due ms>:<at ms>:<origin>` |
//! | `P:{calendars}` | hash | exclusion calendars created through the API: name → calendar JSON ([`calendars`]) |
//! | `P:pauses` | hash | the paused apps and tenants, for listing |
//! | `P:{replicas}:seen`, `P:{replicas}:info` | sorted set, hash | the running processes: id by last announcement ms, id → what it announced ([`replicas`]) |
//! | `P:wake` | pub/sub channel | `<shard>:<due ms>` when a batch lowers a shard's earliest due |
//!
//! Secondary indexes change in the same script as the job (insert, claim, ack, pause) except
//! when a job *leaves* an index on update or cancel: see [`apply`](self::Store::apply).
//! Counters and history of a pending job never expire; they expire with the finished record.
//! Memory per pending job, measured in docs/benchmarks.md: the record, its due-index entry,
//! one index entry per app, tenant and label, one in the creation index, and for a recurring
//! job one in the recurring index.
//!
//! On a Redis Cluster (`redis.cluster = true`) each shard lives in one slot; a script call
//! touches one shard, and work spanning shards goes out as one pipeline per shard
//! ([`Commands`]).
//!
//! A job's shard is `xxh3(job id) mod shards`. Records of pending jobs never expire; cancelled
//! and dispatched records expire after `redis.idempotency_ttl`. The state machine is on
//! [`JobState`].

mod apply;
pub mod calendars;
mod client;
mod conn;
pub mod describe;
pub mod fires;
mod keys;
pub mod limits;
pub mod list;
pub mod pause;
mod quota;
mod record;
#[cfg(test)]
mod record_fuzz;
pub mod recurring;
pub mod replicas;
pub mod runs;
mod scripts;
pub mod seal;

pub use apply::Stale;
pub use client::{
    Ack, AckOutcome, Applied, Cancelled, ClaimBatch, Claimed, Error, Etag, Op, Store, Unopened,
    due_score,
};
pub use conn::{Commands, Connection};
pub use keys::{Index, Keys};
pub use record::{JobRecord, JobState};
pub use seal::Keyring;
