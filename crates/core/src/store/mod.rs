//! The Redis job store: job records, the sharded due index and idempotency keys.
//!
//! Layout (prefix `P` = `redis.key_prefix`, `{sN}` = the shard's hash tag, so every multi-key
//! script touches one Redis Cluster slot):
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:{sN}:j:<job id>` | string | job record: 8-byte fingerprint, state char, layout byte, binary head, rest as JSON (record.rs) |
//! | `P:{sN}:due` | sorted set | pending job ids scored by due time (epoch ms) |
//! | `P:{sN}:inflight` | sorted set | `<due score>\|<job id>` of claimed fires, scored by lease deadline |
//! | `P:{sN}:runs` | hash | fires so far of recurring jobs (for `max_runs`) |
//! | `P:idem:{sM}:<key>` | string, TTL | idempotency key → job id (`M` = shard of the key) |
//! | `P:wake` | pub/sub channel | `<shard>:<due ms>` when a batch lowers a shard's earliest due |
//!
//! On a Redis Cluster (`redis.cluster = true`) each shard lives in one slot; a script call
//! touches one shard, and work spanning shards goes out as one pipeline per shard
//! ([`Commands`]).
//!
//! A job's shard is `xxh3(job id) mod shards`. Records of pending jobs never expire; cancelled
//! and dispatched records expire after `redis.idempotency_ttl`. The state machine is on
//! [`JobState`].

mod client;
mod conn;
mod keys;
mod record;
pub mod runs;
mod scripts;

pub use client::{
    Ack, AckOutcome, Applied, Cancelled, ClaimBatch, Claimed, Error, Op, Store, due_score,
};
pub use conn::{Commands, Connection};
pub use keys::Keys;
pub use record::{JobRecord, JobState};
