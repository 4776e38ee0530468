//! Pausing: one job at a time, or a whole app or tenant.
//!
//! A paused job leaves the due index for the shard's paused set, scored by the due time it
//! had, so no scheduler can claim it (a claim re-checks the due index in the same script).
//! On resume it goes back at that due time: a slot that passed meanwhile is late, and the
//! scheduler plans it like any late slot (the job's misfire policy; missed and skipped slots
//! are counted), a one-shot fires at once. Pausing twice, or resuming a job that is not
//! paused, changes nothing.
//!
//! A paused app or tenant is a field in every shard's hold hash (written to all shards
//! before the call returns). The claim script reads it: a due job of a paused app or tenant
//! moves to the shard's held set instead of firing. Resuming removes the field from every
//! shard, then moves the held jobs whose app and tenant both run back to the due index, in
//! bounded batches.

use chrono::{DateTime, Utc};
use redis::{AsyncCommands, from_redis_value};
use serde::{Deserialize, Serialize};

use super::{Error, Store, scripts};
use crate::job::{JobId, Shard};

/// What a pause is on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display, strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Scope {
    /// One job.
    Job,
    /// Every job of an app.
    App,
    /// Every job of a tenant.
    Tenant,
}

/// A pause as stored: its note and when it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Why (free text from the operator), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the pause was made.
    pub at: DateTime<Utc>,
}

/// A paused app or tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopePause {
    /// App or tenant.
    pub scope: Scope,
    /// Its name.
    pub name: String,
    /// The pause.
    pub note: Note,
}

/// What a pause or resume did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// Paused now.
    Paused,
    /// Was paused already; nothing changed.
    AlreadyPaused,
    /// Resumed now.
    Resumed,
    /// Was not paused; nothing changed.
    NotPaused,
    /// The job's fire is being produced right now; ask again in a moment.
    Busy,
    /// The job has no fire left (dispatched or cancelled).
    Finished,
    /// No such job.
    NotFound,
}

/// Most held jobs one release call moves.
const RELEASE_BATCH: isize = 500;

/// The hold-hash field of an app or tenant.
fn field(scope: Scope, name: &str) -> String {
    match scope {
        Scope::Tenant => format!("t:{name}"),
        _ => format!("a:{name}"),
    }
}

fn outcome(status: &str) -> Result<Outcome, Error> {
    Ok(match status {
        "paused" => Outcome::Paused,
        "already_paused" => Outcome::AlreadyPaused,
        "resumed" => Outcome::Resumed,
        "not_paused" => Outcome::NotPaused,
        "busy" => Outcome::Busy,
        "finished" => Outcome::Finished,
        "not_found" => Outcome::NotFound,
        other => return Err(Error::Protocol(format!("unknown pause status {other:?}"))),
    })
}

impl Store {
    /// Pauses one job with an optional note.
    pub async fn pause_job(&self, id: &JobId, note: Option<String>) -> Result<Outcome, Error> {
        let shard = self.keys.shard_of(id);
        let note = Note {
            note,
            at: Utc::now(),
        };
        let json = serde_json::to_string(&note).map_err(|source| Error::Encode {
            id: id.clone(),
            source,
        })?;
        let mut inv = scripts::PAUSE.prepare_invoke();
        inv.key(self.keys.job(shard, id))
            .key(self.keys.due(shard))
            .key(self.keys.paused(shard))
            .key(self.keys.held(shard))
            .key(self.keys.notes(shard))
            .arg(id.as_str())
            .arg(json);
        self.one_script(&inv).await
    }

    /// Resumes one paused job.
    pub async fn resume_job(&self, id: &JobId) -> Result<Outcome, Error> {
        let shard = self.keys.shard_of(id);
        let mut inv = scripts::RESUME.prepare_invoke();
        inv.key(self.keys.job(shard, id))
            .key(self.keys.due(shard))
            .key(self.keys.paused(shard))
            .key(self.keys.notes(shard))
            .arg(id.as_str())
            .arg(self.keys.wake_channel())
            .arg(shard.index());
        self.one_script(&inv).await
    }

    async fn one_script(&self, inv: &redis::ScriptInvocation<'_>) -> Result<Outcome, Error> {
        let mut cmds = self.conn.commands();
        cmds.group().invoke_script(inv);
        match self.query_scripts(&cmds).await?.pop() {
            Some(reply) => outcome(&from_redis_value::<String>(&reply)?),
            None => Err(Error::Protocol("no pause reply".into())),
        }
    }

    /// The pause note of a paused job.
    pub async fn job_pause(&self, id: &JobId) -> Result<Option<Note>, Error> {
        let shard = self.keys.shard_of(id);
        let mut conn = self.conn.clone();
        let raw: Option<String> = conn.hget(self.keys.notes(shard), id.as_str()).await?;
        // The first char is the state before the pause.
        Ok(raw.and_then(|r| serde_json::from_str(r.get(1..)?).ok()))
    }

    /// Pauses every job of an app or tenant: from the next claim on, none of them fires.
    pub async fn pause_scope(
        &self,
        scope: Scope,
        name: &str,
        note: Option<String>,
    ) -> Result<Outcome, Error> {
        let field = field(scope, name);
        let json = serde_json::to_string(&Note {
            note,
            at: Utc::now(),
        })
        .map_err(|e| Error::Protocol(format!("cannot encode a pause: {e}")))?;
        let mut conn = self.conn.clone();
        let new: bool = conn.hset_nx(self.keys.pauses(), &field, &json).await?;
        // Every shard, also when the registry had it: a crash may have left shards without.
        let mut cmds = self.conn.commands();
        for s in 0..self.keys.shards() {
            cmds.group()
                .cmd("HSETNX")
                .arg(self.keys.hold(Shard(s)))
                .arg(&field)
                .arg(&json);
        }
        cmds.query(&self.conn).await?;
        Ok(if new {
            Outcome::Paused
        } else {
            Outcome::AlreadyPaused
        })
    }

    /// Resumes an app or tenant, and moves its held jobs back to the due index (those whose
    /// other scope is not paused). Returns the outcome and how many jobs were moved.
    pub async fn resume_scope(&self, scope: Scope, name: &str) -> Result<(Outcome, u64), Error> {
        let field = field(scope, name);
        let mut cmds = self.conn.commands();
        for s in 0..self.keys.shards() {
            cmds.group().hdel(self.keys.hold(Shard(s)), &field);
        }
        cmds.query(&self.conn).await?;
        let mut conn = self.conn.clone();
        let removed: u64 = conn.hdel(self.keys.pauses(), &field).await?;
        // Also when the registry had no such pause: a crash may have left held jobs behind.
        let mut moved = 0;
        for s in 0..self.keys.shards() {
            moved += self.release(Shard(s)).await?;
        }
        let outcome = if removed > 0 {
            Outcome::Resumed
        } else {
            Outcome::NotPaused
        };
        Ok((outcome, moved))
    }

    /// Moves the held jobs of a shard that no pause holds any more back to the due index.
    async fn release(&self, shard: Shard) -> Result<u64, Error> {
        let (held, prefix) = (self.keys.held(shard), self.keys.job_prefix(shard));
        let mut offset = 0;
        let mut moved = 0;
        loop {
            let mut conn = self.conn.clone();
            let ids: Vec<String> = conn
                .zrange(&held, offset, offset + RELEASE_BATCH - 1)
                .await?;
            if ids.is_empty() {
                return Ok(moved);
            }
            let mut inv = scripts::RELEASE.prepare_invoke();
            inv.key(&held)
                .key(self.keys.due(shard))
                .key(self.keys.hold(shard))
                .arg(self.keys.wake_channel())
                .arg(shard.index());
            for id in &ids {
                inv.key(format!("{prefix}{id}")).arg(id);
            }
            let mut cmds = self.conn.commands();
            cmds.group().invoke_script(&inv);
            let (m, kept): (u64, u64) = match self.query_scripts(&cmds).await?.pop() {
                Some(reply) => from_redis_value(&reply)?,
                None => return Err(Error::Protocol("no release reply".into())),
            };
            moved += m;
            if ids.len() < RELEASE_BATCH as usize {
                return Ok(moved);
            }
            // Those still held keep their ranks ahead of the next batch.
            offset += isize::try_from(kept).unwrap_or(RELEASE_BATCH);
        }
    }

    /// Every paused app and tenant.
    pub async fn scope_pauses(&self) -> Result<Vec<ScopePause>, Error> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> = conn.hgetall(self.keys.pauses()).await?;
        let mut out = Vec::with_capacity(all.len());
        for (field, json) in all {
            let (scope, name) = match field.split_once(':') {
                Some(("a", name)) => (Scope::App, name),
                Some(("t", name)) => (Scope::Tenant, name),
                _ => continue,
            };
            if let Ok(note) = serde_json::from_str(&json) {
                out.push(ScopePause {
                    scope,
                    name: name.to_owned(),
                    note,
                });
            }
        }
        Ok(out)
    }
}
