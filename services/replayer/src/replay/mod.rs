//! DLQ replays: selected dead letters republished to their original topic (or an override),
//! once each, rate-limited, surviving a crash of the replayer midway.
//!
//! A replayed record has the dead letter's key and value, unchanged, and all its headers,
//! except that `sked-attempt` is set to 1 (the worker runs it afresh), `sked-replay-count` is
//! the previous count + 1, `sked-replayed-at` is now (epoch ms) and `sked-replay-id` is
//! `<replay id>:<dlq partition>:<dlq offset>`. A letter whose `sked-replay-count` reached
//! `replayer.max_replays`, or that has no `original-topic` and no override, is skipped and
//! counted.
//!
//! Protocol of one replay:
//! 1. **select** (in the request): read the DLQ to the end of every partition (the snapshot:
//!    the offset after the last record seen, per partition), filter, sort by (partition,
//!    offset), keep the first `limit`;
//! 2. **persist** (unless `dry_run`): take the replay's lease, snapshot the end offsets of
//!    every target topic, and write the replay to Redis, status `running`, before publishing
//!    anything;
//! 3. **publish**: read the DLQ snapshot again and produce the selected letters (idempotent
//!    producer, acks awaited, at most `rate` per second), recording progress;
//! 4. **finish**: status `done`; the replay's keys expire after [`KEEP_FINISHED`].
//!
//! **resume**: every replica looks for unfinished replays at start and every
//! [`SWEEP_INTERVAL`]; one whose lease expired (its replayer died) is taken over. Before
//! publishing, the new owner reads every target topic from the offsets snapshotted in step 2
//! and collects the `sked-replay-id` headers of this replay: those letters are already
//! published and are not published again. Any publishing error also ends in a resume (after a
//! backoff, in-flight sends awaited first), never in a blind retry.
//!
//! Redis keys (`P` = `redis.key_prefix`). They share the hash tag `{replays}`, so on a Redis
//! Cluster they live in one slot and one pipeline may write a replay and the active set
//! together (replays are few; one slot holds them easily):
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:{replays}:replay:<id>` | hash | `spec` (JSON [`Spec`]), `status`, `published`, `already_published`, `missing`, `resumes`, `finished_at`, `last_error` |
//! | `P:{replays}:replay:<id>:items` | string | selected letters, `partition:offset` per line |
//! | `P:{replays}:replay:<id>:lease` | string, TTL | owner token of the replayer publishing it |
//! | `P:{replays}:active` | sorted set | ids of unfinished replays, scored by creation (epoch ms) |
//! | `P:{replays}:history` | sorted set | ids of the latest `REPLAY_HISTORY` (1,000) replays, dry runs included, scored by creation; `GET /v1/dlq/replays` reads it and drops the ids of expired replays |
//!
//! Modules: `api` (the request, the spec, the progress and the error), `select` (step 1),
//! `store` (the Redis keys above: persisting, progress and the lease), `publish` (step 3, 4 and
//! the resume pass), `record` (the replayed record's headers), `run` (the [`Replays`] handle,
//! its replay tasks and the sweep).

mod api;
mod publish;
mod record;
mod run;
mod select;
mod store;

pub use api::{Error, Progress, Request, Spec};
pub use record::{ReplayRecord, replay_record};
pub use run::{Replays, SWEEP_INTERVAL, Settings};
pub use store::{KEEP_FINISHED, LEASE};
