//! Exclusion calendars ([`Calendar`]): the ones created through the API live in one Redis hash,
//! `P:{calendars}` (name → calendar JSON; one key with its own hash tag, so it is one slot on
//! a Redis Cluster); the `[calendars.<name>]` config tables are read-only and win over a
//! stored calendar of the same name.
//!
//! Services read them through a [`CalendarCache`]: the scheduler reloads it at most every
//! [`REFRESH`] (so a changed or deleted calendar takes effect within that bound), and at once
//! (at most every [`RELOAD_UNKNOWN`]) when a job names a calendar the cache does not know, so a
//! calendar created just before the jobs that attach it is honoured from their first slot.
//!
//! Deleting a calendar that jobs still attach is allowed: those jobs then fire as if it were
//! empty, and the scheduler counts each such lookup (`sked_scheduler_calendar_missing_total`).
//! Creating the name again makes it apply again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tracing::warn;

use super::{Error, Store};
use crate::schedule::{Calendar, Calendars};

/// Longest a [`CalendarCache`] serves a calendar set before reloading it.
pub const REFRESH: Duration = Duration::from_secs(5);

/// Shortest time between two reloads caused by an unknown calendar name.
pub const RELOAD_UNKNOWN: Duration = Duration::from_millis(200);

/// Where a calendar comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum Source {
    /// A `[calendars.<name>]` config table: read-only.
    Config,
    /// Created through `PUT /v1/calendars/{name}`.
    Api,
}

impl Store {
    /// The calendars created through the API, by name; entries that no longer parse are left
    /// out with a warning.
    pub async fn stored_calendars(&self) -> Result<Calendars, Error> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> = conn.hgetall(self.keys.calendars()).await?;
        let mut out = Calendars::new();
        for (name, json) in all {
            match serde_json::from_str::<Calendar>(&json) {
                Ok(calendar) => out.insert(name, calendar),
                Err(err) => {
                    warn!(calendar = %name, error = %err, "stored calendar unreadable; ignored")
                }
            }
        }
        Ok(out)
    }

    /// Creates or replaces the stored calendar `name`; whether it existed before.
    pub async fn put_calendar(&self, name: &str, calendar: &Calendar) -> Result<bool, Error> {
        let json = serde_json::to_string(calendar).map_err(|e| Error::Protocol(e.to_string()))?;
        let mut conn = self.conn.clone();
        let added: u64 = conn.hset(self.keys.calendars(), name, json).await?;
        Ok(added == 0)
    }

    /// Deletes the stored calendar `name`; whether it existed.
    pub async fn delete_calendar(&self, name: &str) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let removed: u64 = conn.hdel(self.keys.calendars(), name).await?;
        Ok(removed > 0)
    }
}

/// The calendars a service knows: the config's plus the stored ones, reloaded as the module doc
/// says. Cheap to clone.
#[derive(Clone)]
pub struct CalendarCache {
    store: Store,
    config: Arc<Calendars>,
    state: Arc<Mutex<State>>,
}

struct State {
    all: Calendars,
    loaded: Option<Instant>,
}

impl CalendarCache {
    /// A cache over `store` with the read-only `config` calendars (nothing loaded yet).
    pub fn new(store: Store, config: Calendars) -> Self {
        CalendarCache {
            store,
            state: Arc::new(Mutex::new(State {
                all: config.clone(),
                loaded: None,
            })),
            config: Arc::new(config),
        }
    }

    /// Where `name` comes from, by the config alone (`None`: not a config calendar).
    pub fn config_source(&self, name: &str) -> Option<Source> {
        self.config.contains(name).then_some(Source::Config)
    }

    /// The config calendars.
    pub fn config(&self) -> &Calendars {
        &self.config
    }

    /// Reloads from Redis now.
    pub async fn reload(&self) -> Result<Calendars, Error> {
        let stored = self.store.stored_calendars().await?;
        let mut all = stored;
        for (name, calendar) in self.config.iter() {
            all.insert(name, (**calendar).clone());
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.all = all.clone();
        state.loaded = Some(Instant::now());
        Ok(all)
    }

    /// The calendars, reloaded first if they are older than `max_age`. A failed reload keeps
    /// the previous set (and logs).
    pub async fn get(&self, max_age: Duration) -> Calendars {
        let (current, stale) = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (
                state.all.clone(),
                state.loaded.is_none_or(|at| at.elapsed() >= max_age),
            )
        };
        if !stale {
            return current;
        }
        match self.reload().await {
            Ok(all) => all,
            Err(err) => {
                warn!(error = %err, "cannot reload calendars; using the previous set");
                current
            }
        }
    }

    /// The calendars as loaded last (no IO).
    pub fn current(&self) -> Calendars {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .all
            .clone()
    }

    /// The calendars, sure to know every name of `names` that exists: reloaded when older than
    /// [`REFRESH`], or when a name is unknown and the set is older than [`RELOAD_UNKNOWN`].
    /// An error only when a name is unknown and Redis could not be asked: the caller cannot
    /// tell a missing calendar from an unavailable store then.
    pub async fn for_names<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<Calendars, Error> {
        let current = self.get(REFRESH).await;
        let fresh = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.loaded.is_some_and(|at| at.elapsed() < RELOAD_UNKNOWN)
        };
        let mut names = names.into_iter();
        if fresh || names.all(|n| current.contains(n)) {
            return Ok(current);
        }
        self.reload().await
    }
}
