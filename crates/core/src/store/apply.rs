//! [`Store::apply`]: inserts, updates and cancels in batches, and the index upkeep after them.
//!
//! An insert puts the job into its secondary indexes in the same script that stores it
//! (`lua/apply.lua`). A script cannot know the indexes a job *leaves* when it is updated
//! (another app, other labels) or cancelled without reading keys it did not declare, which is
//! unsafe on a Redis Cluster slot in migration. So the script answers the record as it was,
//! and a second script per shard ([`scripts::REINDEX`]) takes the job out of the indexes of
//! the old record that the current record is not in. That script reads the current record
//! itself, so a later update racing with it never loses an index entry it needs. A crash
//! between the two leaves an entry that names a job no longer in that index; readers check
//! every entry against the record and remove such entries ([`Store::reindex`]).

use std::collections::{BTreeMap, BTreeSet};

use redis::from_redis_value;
use tracing::warn;

use super::{
    Applied, Cancelled, Error, Index, Op, Store,
    client::{collect, op_id},
    record::{self, JobState, Payload},
    scripts,
    seal::Keyring,
};
use crate::job::{JobId, Shard};

/// A job to take out of indexes it may have left: its id and the indexes to check.
#[derive(Debug, Clone)]
pub struct Stale {
    /// The job.
    pub id: JobId,
    /// Indexes the job may no longer belong in (the script keeps those it still does).
    pub indexes: Vec<Index>,
}

impl Store {
    /// Applies a batch of ops, in order per job, in two round trips at most (one for
    /// idempotency keys, when any op has one, and one pipelined script call per shard), plus
    /// one for index upkeep when the batch updated or cancelled jobs.
    /// Safe to repeat: a repeated batch reports duplicates and changes nothing.
    pub async fn apply(&self, ops: &[Op]) -> Result<Vec<Applied>, Error> {
        let mut results: Vec<Option<Applied>> = vec![None; ops.len()];
        self.claim_idempotency_keys(ops, &mut results).await?;

        // Group the remaining ops by shard, keeping their order.
        let mut by_shard: BTreeMap<Shard, Vec<usize>> = BTreeMap::new();
        let mut encoded: Vec<Option<([u8; 8], Vec<u8>)>> = vec![None; ops.len()];
        for (i, op) in ops.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let id = match op {
                Op::Insert {
                    spec, fingerprint, ..
                } => {
                    let enc =
                        record::encode(spec, *fingerprint, JobState::Scheduled, &self.keyring)
                            .map_err(|source| Error::Encode {
                                id: spec.id.clone(),
                                source,
                            })?;
                    encoded[i] = Some(enc);
                    &spec.id
                }
                Op::Cancel(id) | Op::CancelListed { id, .. } => id,
            };
            by_shard.entry(self.keys.shard_of(id)).or_default().push(i);
        }
        if by_shard.is_empty() {
            return collect(results);
        }

        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut cmds = self.conn.commands();
        let channel = self.keys.wake_channel();
        for (shard, idxs) in &by_shard {
            let mut inv = scripts::APPLY.prepare_invoke();
            inv.key(self.keys.due(*shard))
                .key(self.keys.paused(*shard))
                .key(self.keys.held(*shard))
                .key(self.keys.done(*shard))
                .key(self.keys.counts(*shard))
                .key(self.keys.notes(*shard))
                .key(self.keys.created(*shard))
                .key(self.keys.runs(*shard));
            inv.arg(self.ttl_ms)
                .arg(&channel)
                .arg(shard.index())
                .arg(now_ms);
            for &i in idxs {
                match &ops[i] {
                    Op::Insert { spec, if_match, .. } => {
                        let Some((fp, rec)) = encoded[i].as_ref() else {
                            return Err(Error::Protocol("insert not encoded".into()));
                        };
                        let indexes = Index::of(spec);
                        inv.key(self.keys.job(*shard, &spec.id));
                        for index in &indexes {
                            inv.key(self.keys.index(*shard, index));
                        }
                        inv.arg("i")
                            .arg(spec.id.as_str())
                            .arg(&fp[..])
                            .arg(rec.as_slice())
                            .arg(super::due_score(spec.first_due))
                            .arg(indexes.len());
                        match if_match {
                            Some(etag) => inv.arg(&etag.0.to_be_bytes()[..]),
                            None => inv.arg(""),
                        };
                        inv.arg(now_ms);
                        for index in &indexes {
                            inv.arg(index.name());
                        }
                    }
                    Op::Cancel(id) | Op::CancelListed { id, .. } => {
                        let indexes = match &ops[i] {
                            Op::CancelListed { indexes, .. } => indexes.as_slice(),
                            _ => &[],
                        };
                        inv.key(self.keys.job(*shard, id))
                            .key(self.keys.counters(*shard, id.as_str()))
                            .key(self.keys.history(*shard, id.as_str()));
                        for index in indexes {
                            inv.key(self.keys.index(*shard, index));
                        }
                        inv.arg("c")
                            .arg(id.as_str())
                            .arg("")
                            .arg("")
                            .arg("")
                            .arg(2 + indexes.len())
                            .arg("")
                            .arg("");
                    }
                }
            }
            cmds.group().invoke_script(&inv);
        }
        let replies = self.query_scripts(&cmds).await?;
        if replies.len() != by_shard.len() {
            return Err(Error::Protocol(format!(
                "{} replies for {} shards",
                replies.len(),
                by_shard.len()
            )));
        }
        let mut stale = Vec::new();
        for ((_, idxs), reply) in by_shard.iter().zip(replies) {
            let reply: Vec<Vec<u8>> = from_redis_value(&reply)?;
            if reply.len() != idxs.len() * 2 {
                return Err(Error::Protocol(format!(
                    "{} answers for {} ops",
                    reply.len(),
                    idxs.len()
                )));
            }
            for (&i, pair) in idxs.iter().zip(reply.chunks(2)) {
                let status = String::from_utf8_lossy(&pair[0]);
                let old = &pair[1];
                results[i] = Some(match status.as_ref() {
                    "created" => Applied::Created,
                    "updated" => Applied::Updated,
                    "duplicate" => Applied::Duplicate {
                        existing: op_id(&ops[i]).clone(),
                    },
                    "precondition_failed" => Applied::PreconditionFailed,
                    "cancelled" => Applied::Cancel(Cancelled::Cancelled),
                    "not_found" => Applied::Cancel(Cancelled::NotFound),
                    "already_cancelled" => Applied::Cancel(Cancelled::AlreadyCancelled),
                    "dispatched" => Applied::Cancel(Cancelled::Dispatched),
                    "finished" => Applied::Cancel(Cancelled::Finished),
                    other => return Err(Error::Protocol(format!("unknown status {other:?}"))),
                });
                if !old.is_empty()
                    && let Some(s) = left_indexes(&ops[i], old)
                {
                    stale.push(s);
                }
            }
        }
        if !stale.is_empty()
            && let Err(err) = self.reindex(&stale).await
        {
            // Readers remove what is left (see the module docs).
            warn!(error = %err, jobs = stale.len(), "index upkeep after updates failed");
        }
        collect(results)
    }

    /// Takes jobs out of the indexes they no longer belong in (one script per job, pipelined
    /// per shard), and lets the counters and history of finished jobs expire with them.
    /// Returns how many index entries were removed.
    pub async fn reindex(&self, stale: &[Stale]) -> Result<u64, Error> {
        let mut by_shard: BTreeMap<Shard, Vec<&Stale>> = BTreeMap::new();
        for s in stale {
            by_shard
                .entry(self.keys.shard_of(&s.id))
                .or_default()
                .push(s);
        }
        let mut cmds = self.conn.commands();
        for (shard, jobs) in &by_shard {
            let pipe = cmds.group();
            for s in jobs {
                let mut inv = scripts::REINDEX.prepare_invoke();
                inv.key(self.keys.job(*shard, &s.id))
                    .key(self.keys.counters(*shard, s.id.as_str()))
                    .key(self.keys.history(*shard, s.id.as_str()))
                    .key(self.keys.counts(*shard))
                    .arg(s.id.as_str())
                    .arg(self.ttl_ms);
                for index in &s.indexes {
                    inv.key(self.keys.index(*shard, index)).arg(index.name());
                }
                pipe.invoke_script(&inv);
            }
        }
        let replies = self.query_scripts(&cmds).await?;
        let mut removed = 0;
        for reply in replies {
            removed += from_redis_value::<u64>(&reply)?;
        }
        Ok(removed)
    }
}

/// The indexes of `old` (the record an update replaced or a cancel finished) that the job may
/// have left: for a cancel all of them, for an update those the new spec is not in. `None`
/// when there is nothing to check (an update within the same indexes of a pending job).
fn left_indexes(op: &Op, old: &[u8]) -> Option<Stale> {
    let id = op_id(op);
    // Only the indexes are looked at: the payload stays sealed (it opens without its key).
    let (state, old_spec) = match record::decode(id, old, &Keyring::none(), Payload::Skip) {
        Ok(decoded) => decoded,
        Err(why) => {
            warn!(sked.job.id = %id, error = %why, "replaced record unreadable; its index entries are left to readers");
            return None;
        }
    };
    let old_indexes = Index::of(&old_spec);
    let indexes = match op {
        Op::Cancel(_) => old_indexes,
        Op::CancelListed { indexes, .. } => {
            // Left in the script already; any other (the job changed since it was read) here.
            let left: Vec<Index> = old_indexes
                .into_iter()
                .filter(|i| !indexes.contains(i))
                .collect();
            if left.is_empty() {
                return None;
            }
            left
        }
        Op::Insert { spec, .. } => {
            let new: BTreeSet<Index> = Index::of(spec).into_iter().collect();
            let left: Vec<Index> = old_indexes
                .into_iter()
                .filter(|i| !new.contains(i))
                .collect();
            // A finished job brought back: its counters and history stop expiring.
            let revived = matches!(state, JobState::Dispatched | JobState::Cancelled);
            if left.is_empty() && !revived {
                return None;
            }
            left
        }
    };
    Some(Stale {
        id: id.clone(),
        indexes,
    })
}
