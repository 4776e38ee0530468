//! Lua scripts, one `.lua` file each under `lua/`, with the shared record reader
//! (`lua/record.lua`) in front of those that read records. Each touches the keys of one
//! shard only (one hash tag) and declares every key it touches in KEYS, so on a Redis Cluster
//! it runs on the node that owns the shard's slot, and while that slot migrates the whole call
//! is redirected or retried, never split.
//!
//! The scripts that change many jobs at once (APPLY, CLAIM, ACK) gather their sorted-set
//! writes per key and send each as one multi-member `ZADD`/`ZREM` at the end (`batch_add` in
//! `lua/record.lua`), flushing early when a batch names a job twice, so their cost grows by a
//! few calls per index rather than one per job and index.
//!
//! State chars (record.rs): `s`/`S` scheduled, `r`/`R` scheduled again after an expired lease,
//! `p`/`P` paused, `f`/`F` firing, `d` dispatched, `c` cancelled (upper case: recurring).

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/record.lua"),
                "\n",
                include_str!(concat!("lua/", $file))
            ))
        })
    };
}

/// Ordered inserts and cancels for one shard, in one atomic step.
///
/// An insert with the stored fingerprint is a `duplicate`; with another, the record is
/// replaced (`updated`; a paused job stays paused), put into the due index (or the paused
/// set) and into its secondary indexes. With an expected fingerprint (`PUT` + `If-Match`) that
/// differs from the stored one it is `precondition_failed` and changes nothing. A cancel of a
/// scheduled, paused or held job removes it from every set and marks it finished; of a job
/// whose fire a scheduler has claimed, it answers `dispatched` (that fire goes out; a
/// recurring job gets no further fire). Updates and cancels answer the record as it was, so
/// that the caller can take the job out of the indexes it left ([`REINDEX`]); a cancel that
/// names the indexes the caller read the job in leaves those here. Index additions and
/// removals move the shard's count hash by the replies of their `ZADD`/`ZREM`.
///
/// KEYS: due, paused, held, done, counts, notes, creation index, then per op the job key and
/// its extra keys (an insert's index keys; a cancel's counters and history keys, then the
/// index keys it names).
/// ARGV: ttl ms of finished records, wake channel, shard index, now ms, then per op: kind
/// (`i` | `c`), job id, fingerprint, record, due ms, number of extra keys, expected
/// fingerprint (`''` = any), creation ms, and for an insert the index names.
/// Returns `{status, old record or ''}` per op.
pub(crate) static APPLY: LazyLock<Script> = script!("apply.lua");

/// Claims the due jobs of one shard that the caller read first (`Store::claim`), after
/// returning their expired leases to the due index. Every key it touches is declared; each
/// candidate is checked again here, since another scheduler may have claimed or acked it
/// since. A candidate whose app or tenant is paused (the shard's hold hash) moves to the held
/// set instead, due as it was.
///
/// KEYS: due, inflight, runs, held, hold, done, the job key of each expired lease, the job key
/// of each candidate.
/// ARGV: now ms, lease deadline ms, ttl ms, number of expired leases, the expired in-flight
/// members (`<due score>|<job id>`, so a reclaim restores the exact score), the candidate ids.
/// Returns `{reclaimed, held, n, (id, record) × n, (id, score, record, runs, first claim)
/// ...}`, the `n` pairs being jobs cancelled while their lease expired (finished now, to
/// unindex). `first claim` is, for a recurring job claimed after an expired lease, the
/// instant of the first claim not acked since (`c<ms>`; a bare number is the deadline of an
/// expired lease, as kept by earlier versions), else `''`. A recurring claim keeps its own
/// instant under `/<id>` in the runs hash until its ack.
pub(crate) static CLAIM: LazyLock<Script> = script!("claim.lua");

/// Acknowledges fires that Kafka accepted, for one shard.
///
/// An ack whose lease is no longer in the in-flight set with that deadline is `stale` and
/// changes nothing: the lease expired and another scheduler reclaimed the job. One-shot (`f`)
/// → dispatched; recurring (`F`) → next score in the due index and its indexes, or dispatched
/// when none is left; cancelled while firing (`c`) → finished. Finished jobs leave their
/// indexes and enter the done set; their record expires. Recurring jobs count their fires,
/// misses, skips and calendar exclusions and keep their last 50 fires.
///
/// KEYS: due, inflight, runs, done, counts, creation index, then per job: its key, for a
/// recurring job its counters and history keys and, when it has slot-history entries, its
/// slot-history key; its index keys.
/// ARGV: ttl ms, wake channel, shard index, now ms, then per job: id, claimed score, the
/// claim's lease deadline, fires produced, next score or '', `1` if recurring, number of index
/// keys, missed, skipped, number of history entries, the entries, excluded, number of
/// slot-history entries, the entries.
/// Returns one status per job: `done`, `next`, `cancelled` or `stale`.
pub(crate) static ACK: LazyLock<Script> = script!("ack.lua");

/// Extends the leases that one claim still holds, for one shard: each member (`<claimed
/// score>|<job id>`) whose deadline is still the claim's moves to the new deadline; the rest
/// (acked, reclaimed by another scheduler, held) are left alone.
///
/// KEYS: inflight. ARGV: the claim's deadline ms, the new deadline ms, the members.
/// Returns the positions (1-based) of the members it left alone.
pub(crate) static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/renew.lua")));

/// Takes a job out of the indexes it no longer belongs in; see `lua/reindex.lua`.
pub(crate) static REINDEX: LazyLock<Script> = script!("reindex.lua");

/// Pauses one job; see `lua/pause.lua`.
pub(crate) static PAUSE: LazyLock<Script> = script!("pause.lua");

/// Resumes one job; see `lua/resume.lua`.
pub(crate) static RESUME: LazyLock<Script> = script!("resume.lua");

/// Moves held jobs back to the due index once their app and tenant run; see
/// `lua/release.lua`.
pub(crate) static RELEASE: LazyLock<Script> = script!("release.lua");

/// One page of a sorted set after a position; see `lua/page.lua`.
pub(crate) static PAGE: LazyLock<Script> = script!("page.lua");

/// Records API-requested fires in a job's history and counters; see `lua/note_fires.lua`.
pub(crate) static NOTE_FIRES: LazyLock<Script> = script!("note_fires.lua");

/// Deletes a finished job early; see `lua/purge.lua`.
pub(crate) static PURGE: LazyLock<Script> = script!("purge.lua");

/// Puts recurring jobs stored before the recurring index into it; see `lua/recurring.lua`.
pub(crate) static RECURRING: LazyLock<Script> = script!("recurring.lua");

/// Every script, for loading after a `NOSCRIPT` (e.g. a Redis restart emptied its cache).
pub(crate) fn all() -> [&'static Script; 12] {
    [
        &APPLY,
        &CLAIM,
        &ACK,
        &RENEW,
        &REINDEX,
        &PAUSE,
        &RESUME,
        &RELEASE,
        &PAGE,
        &NOTE_FIRES,
        &PURGE,
        &RECURRING,
    ]
}
