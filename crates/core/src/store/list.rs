//! [`Store::list`] and [`Store::stats`]: find jobs by state, app, tenant, labels, kind and due
//! range, a page at a time, without `KEYS` or an unbounded scan.
//!
//! Order: by the instant a job is sorted under, then by id (byte order): a pending job's due
//! time (the next fire; for a paused or held job, the one it waits with), a finished job's
//! finish time. A page is a k-way merge over one sorted set per shard (or a few: a state's
//! own set; a secondary index when the filter names an app, a tenant or a label; the done set
//! for finished states). Each stream is read after the cursor position, a few members at a
//! time; the merge emits a member only once every stream has read past it, so nothing is
//! skipped. The cursor is the last position examined: a job that stays where it is sorted
//! (any job that does not fire, get rescheduled or finish meanwhile) is seen exactly once
//! across pages, whatever else is inserted, fired or cancelled.
//!
//! Every candidate is checked against its record (state, app, tenant, labels, kind); index
//! entries that name a job no longer there are removed ([`Store::reindex`]). One page
//! examines at most [`MAX_EXAMINED`] members: a very selective filter (say a state with a
//! label) may answer fewer jobs than asked for, with a cursor to go on from.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use redis::{Value, from_redis_value};
use xxhash_rust::xxh3::xxh3_64;

use super::{
    Error, Index, JobRecord, Stale, Store,
    pause::Note,
    record::{self, JobState, Payload},
    runs::{self, RunInfo, RunState},
    scripts,
    seal::Keyring,
};
use crate::{
    job::{JobId, Shard},
    schedule::Schedule,
};

/// Most members one page examines.
pub const MAX_EXAMINED: usize = 10_000;

/// The state of a job as listed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum ListState {
    /// In the due index.
    Scheduled,
    /// Paused on its own.
    Paused,
    /// Due, but its app or tenant is paused.
    Held,
    /// Its fire is being produced.
    Firing,
    /// Its last fire went out; no worker has reported on it.
    Dispatched,
    /// A worker runs its last fire.
    Running,
    /// Its last fire succeeded.
    Succeeded,
    /// Its last fire failed and waits for a retry.
    Retrying,
    /// Its last fire was dead-lettered.
    Dead,
    /// Cancelled.
    Cancelled,
}

impl ListState {
    /// The states listed when a filter names none.
    pub const PENDING: [ListState; 4] = [
        ListState::Scheduled,
        ListState::Paused,
        ListState::Held,
        ListState::Firing,
    ];

    fn pending(self) -> bool {
        Self::PENDING.contains(&self)
    }
}

/// What kind of schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    /// One fire.
    Once,
    /// A cron expression.
    Cron,
    /// A fixed interval.
    Every,
}

impl Kind {
    /// The kind of a schedule.
    pub fn of(schedule: &Schedule) -> Kind {
        match schedule {
            Schedule::Once { .. } => Kind::Once,
            Schedule::Cron { .. } => Kind::Cron,
            Schedule::Every { .. } => Kind::Every,
        }
    }
}

/// The order of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// By the instant a job is sorted under: its next due time while pending, its finish
    /// time once finished.
    #[default]
    Due,
    /// By the instant a job was first stored (the shard's creation index); every state.
    Created,
}

/// Which jobs to list (also the selector of bulk operations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// States; empty = [`ListState::PENDING`].
    pub states: BTreeSet<ListState>,
    /// The app.
    pub app: Option<String>,
    /// The tenant.
    pub tenant: Option<String>,
    /// Labels, each `key = value`; all must match.
    pub labels: Vec<(String, String)>,
    /// Schedule kind.
    pub kind: Option<Kind>,
    /// Sorted at or after this instant (epoch ms).
    pub due_after: Option<i64>,
    /// Sorted before this instant (epoch ms).
    pub due_before: Option<i64>,
    /// The order; with [`Order::Created`] the due range does not apply (the API refuses it).
    pub order: Order,
    /// Text the payload's stored JSON must contain (case-sensitive). A sealed payload is not
    /// opened by a listing, so it never matches.
    pub payload: Option<String>,
}

impl Filter {
    fn states(&self) -> BTreeSet<ListState> {
        if self.states.is_empty() {
            ListState::PENDING.into_iter().collect()
        } else {
            self.states.clone()
        }
    }

    /// A hash of the filter, kept in cursors so that a cursor is never used with another one.
    pub fn fingerprint(&self) -> u64 {
        xxh3_64(format!("{self:?}").as_bytes())
    }

    /// The secondary indexes a listing could read instead of the state sets, in order of
    /// preference when their sizes tie: each label, the tenant, the app, and for `kind=cron`
    /// or `kind=every` the recurring index. [`Store::list`] reads the smallest.
    fn indexes(&self) -> Vec<Index> {
        let mut out: Vec<Index> = self
            .labels
            .iter()
            .map(|(k, v)| Index::Label(k.clone(), v.clone()))
            .collect();
        out.extend(self.tenant.clone().map(Index::Tenant));
        out.extend(self.app.clone().map(Index::App));
        if matches!(self.kind, Some(Kind::Cron | Kind::Every)) {
            out.push(Index::Recurring);
        }
        out
    }

    fn matches(&self, state: ListState, score: i64, record: &JobRecord, sealed: bool) -> bool {
        let spec = &record.spec;
        let by_due = self.order == Order::Due;
        // Retry, trigger and backfill one-shots stand for their job's fires: not listed.
        spec.retry_of.is_none()
            && self.states().contains(&state)
            && self.app.as_ref().is_none_or(|a| *a == spec.app)
            && self
                .tenant
                .as_ref()
                .is_none_or(|t| spec.tenant.as_ref() == Some(t))
            && self
                .labels
                .iter()
                .all(|(k, v)| spec.labels.get(k) == Some(v))
            && self.kind.is_none_or(|k| k == Kind::of(&spec.schedule))
            && (!by_due || self.due_after.is_none_or(|a| score >= a))
            && (!by_due || self.due_before.is_none_or(|b| score < b))
            && self
                .payload
                .as_ref()
                .is_none_or(|p| !sealed && spec.payload.get().contains(p.as_str()))
    }

    /// Whether every job in the sets a listing reads matches (stale entries aside): the due
    /// order, the default states, no kind or due range, and at most one of app, tenant and
    /// label (the index read).
    fn exact(&self) -> bool {
        let named = self.labels.len()
            + usize::from(self.app.is_some())
            + usize::from(self.tenant.is_some());
        self.order == Order::Due
            && self.states.is_empty()
            && self.kind.is_none()
            && named <= 1
            && self.due_after.is_none()
            && self.due_before.is_none()
            && self.payload.is_none()
    }

    /// Whether a page must read the latest run of its candidates (only finished jobs have
    /// one that decides their state).
    fn reads_runs(&self) -> bool {
        self.order == Order::Created || self.states().iter().any(|s| !s.pending())
    }
}

/// A position in the listing order: after this (score, id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// Sort instant, epoch ms.
    pub score: i64,
    /// Job id.
    pub id: String,
}

impl Cursor {
    /// The opaque form: `c1` and hex of `score:filter hash:id`.
    pub fn encode(&self, filter: &Filter) -> String {
        let raw = format!("{}:{:016x}:{}", self.score, filter.fingerprint(), self.id);
        let mut out = String::with_capacity(2 + raw.len() * 2);
        out.push_str("c1");
        for b in raw.bytes() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Reads a cursor made by [`Cursor::encode`] for the same filter.
    pub fn decode(text: &str, filter: &Filter) -> Result<Cursor, String> {
        let bad = || "malformed cursor: pass the `next_cursor` of the previous page".to_owned();
        let hex = text.strip_prefix("c1").ok_or_else(bad)?;
        if hex.len() % 2 != 0 {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let raw = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = raw.splitn(3, ':');
        let (Some(score), Some(hash), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let score = score.parse().map_err(|_| bad())?;
        if hash != format!("{:016x}", filter.fingerprint()) {
            return Err("cursor belongs to a listing with other filters".into());
        }
        Ok(Cursor {
            score,
            id: id.to_owned(),
        })
    }
}

/// One job of a page.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The record; `next_due` is its next due instant when pending. A sealed payload is
    /// not opened: it reads as `null` (`Store::get` opens it).
    pub record: JobRecord,
    /// Its state.
    pub state: ListState,
    /// The instant it is sorted under (epoch ms): see [`Order`].
    pub score: i64,
    /// When it was first stored (epoch ms), if known (jobs stored before the creation index
    /// existed have none).
    pub created: Option<i64>,
    /// Its own pause, when paused.
    pub pause: Option<Note>,
    /// Its latest run, when finished and run.
    pub run: Option<RunInfo>,
    /// Its payload is sealed (and reads as `null` here).
    pub sealed: bool,
}

/// One page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The jobs, in order.
    pub jobs: Vec<Listed>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<Cursor>,
}

/// Counts (`GET /v1/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Jobs per state set: `scheduled`, `paused`, `held`, `firing`, `finished`.
    pub by_state: BTreeMap<String, u64>,
    /// Pending jobs per app.
    pub by_app: BTreeMap<String, u64>,
    /// Pending jobs per tenant.
    pub by_tenant: BTreeMap<String, u64>,
}

impl Stats {
    /// Jobs that will still fire: scheduled, paused, held and firing.
    pub fn pending(&self) -> u64 {
        ["scheduled", "paused", "held", "firing"]
            .iter()
            .filter_map(|s| self.by_state.get(*s))
            .sum()
    }
}

/// Where a stream reads from.
#[derive(Debug, Clone)]
enum Source {
    /// A sorted set of job ids by score; `index` when it is a secondary index.
    Set { key: String, index: Option<Index> },
    /// The in-flight set (`<due>|<id>` by lease deadline), read whole.
    Inflight(String),
}

struct Stream {
    shard: Shard,
    source: Source,
    buf: VecDeque<(i64, String)>,
    /// Last position read (what the next read continues after).
    last: Option<Cursor>,
    done: bool,
}

impl Store {
    /// One page of jobs matching `filter`, after `cursor`, at most `limit` long.
    pub async fn list(
        &self,
        filter: &Filter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, Error> {
        let states = filter.states();
        // Without a cursor, reading starts at `due_after` rather than before every job.
        let start = cursor.cloned().or_else(|| match filter.order {
            Order::Due => filter.due_after.map(|score| Cursor {
                score,
                id: String::new(),
            }),
            Order::Created => None,
        });
        let index = self.pick_index(filter).await?;
        let mut streams = Vec::new();
        for s in 0..self.keys.shards() {
            let shard = Shard(s);
            for source in self.sources(shard, filter, &states, index.as_ref()) {
                streams.push(Stream {
                    shard,
                    source,
                    buf: VecDeque::new(),
                    last: start.clone(),
                    done: false,
                });
            }
        }
        // Sized by the shard count: a shard's main stream (its due set or index) holds most
        // candidates, its paused and held sets few; enough for one round in the common case.
        let shards = usize::from(self.keys.shards());
        let batch = (2 * limit / shards + 8).min(limit + 8);
        let max = match filter.order {
            Order::Due => filter.due_before.map(|b| b - 1),
            Order::Created => None,
        };
        let mut page = Page::default();
        let mut seen = HashSet::new();
        let mut examined = 0;
        let mut last_examined: Option<Cursor> = None;
        loop {
            self.refill(&mut streams, batch, max).await?;
            // Every stream has read past the frontier: what is at or before it is complete.
            let frontier = streams
                .iter()
                .filter(|s| !s.done)
                .filter_map(|s| s.last.clone())
                .min();
            // Candidates to check this round: when the sets read hold only matching jobs
            // (stale entries aside), little more than the page needs.
            let left = limit - page.jobs.len();
            let want = if filter.exact() {
                left + left / 4 + 8
            } else {
                left * 2 + 8
            }
            .min(MAX_EXAMINED - examined);
            let mut candidates = Vec::new();
            while candidates.len() < want {
                let Some(i) = min_stream(&streams) else { break };
                let Some(head) = streams[i].buf.front() else {
                    break;
                };
                let pos = Cursor {
                    score: head.0,
                    id: head.1.clone(),
                };
                if frontier.as_ref().is_some_and(|f| pos > *f) {
                    break;
                }
                streams[i].buf.pop_front();
                candidates.push((i, pos));
            }
            if candidates.is_empty() {
                if streams.iter().all(|s| s.done && s.buf.is_empty()) {
                    return Ok(page);
                }
                continue;
            }
            examined += candidates.len();
            let checked = self.check(&streams, &candidates, filter).await?;
            for ((_, pos), found) in candidates.into_iter().zip(checked) {
                last_examined = Some(pos.clone());
                if let Some(job) = found
                    && seen.insert(pos.id.clone())
                {
                    page.jobs.push(job);
                    if page.jobs.len() == limit {
                        page.next = Some(pos);
                        return Ok(page);
                    }
                }
            }
            if examined >= MAX_EXAMINED {
                page.next = last_examined;
                return Ok(page);
            }
        }
    }

    /// The index a listing of `filter` reads, if any: of those it names
    /// ([`Filter::indexes`]), the one with the fewest members over all shards (one `ZCARD`
    /// per shard and index, in one round trip, when it names more than one). The recurring
    /// index counts only once it is complete ([`Store::recurring_ready`]).
    async fn pick_index(&self, filter: &Filter) -> Result<Option<Index>, Error> {
        let mut named = filter.indexes();
        if named.last() == Some(&Index::Recurring) && !self.recurring_ready().await? {
            named.pop();
        }
        if named.len() <= 1 {
            return Ok(named.pop());
        }
        let mut cmds = self.conn.commands();
        for s in 0..self.keys.shards() {
            let pipe = cmds.group();
            for index in &named {
                pipe.zcard(self.keys.index(Shard(s), index));
            }
        }
        let mut sizes = vec![0u64; named.len()];
        for (i, v) in cmds.query(&self.conn).await?.iter().enumerate() {
            sizes[i % named.len()] += from_redis_value::<u64>(v)?;
        }
        Ok(smallest(named, &sizes))
    }

    /// The sorted sets of one shard that hold the jobs `filter` can match, reading `index`
    /// (of [`Store::pick_index`]) for the pending ones when there is one.
    fn sources(
        &self,
        shard: Shard,
        filter: &Filter,
        states: &BTreeSet<ListState>,
        index: Option<&Index>,
    ) -> Vec<Source> {
        let mut out = Vec::new();
        let set = |key: String, index: Option<Index>| Source::Set { key, index };
        if filter.order == Order::Created {
            out.push(set(self.keys.created(shard), Some(Index::Created)));
            return out;
        }
        if states.iter().any(|s| s.pending()) {
            match index {
                Some(index) => out.push(set(self.keys.index(shard, index), Some(index.clone()))),
                None => {
                    for s in states {
                        match s {
                            ListState::Scheduled => out.push(set(self.keys.due(shard), None)),
                            ListState::Paused => out.push(set(self.keys.paused(shard), None)),
                            ListState::Held => out.push(set(self.keys.held(shard), None)),
                            ListState::Firing => {
                                out.push(Source::Inflight(self.keys.inflight(shard)))
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        if states.iter().any(|s| !s.pending()) {
            out.push(set(self.keys.done(shard), None));
        }
        out
    }

    /// Reads the next members of every stream whose buffer is empty, one pipeline.
    async fn refill(
        &self,
        streams: &mut [Stream],
        batch: usize,
        max: Option<i64>,
    ) -> Result<(), Error> {
        let todo: Vec<usize> = (0..streams.len())
            .filter(|&i| !streams[i].done && streams[i].buf.is_empty())
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let mut cmds = self.conn.commands();
        for &i in &todo {
            let s = &streams[i];
            let pipe = cmds.group();
            match &s.source {
                Source::Set { key, .. } => {
                    let (score, id) = match &s.last {
                        Some(c) => (c.score.to_string(), c.id.as_str()),
                        None => ("-inf".to_owned(), ""),
                    };
                    let mut inv = scripts::PAGE.prepare_invoke();
                    inv.key(key)
                        .arg(score)
                        .arg(id)
                        .arg(batch)
                        .arg(0)
                        .arg(max.map_or("+inf".to_owned(), |m| m.to_string()));
                    pipe.invoke_script(&inv);
                }
                Source::Inflight(key) => {
                    pipe.zrange(key, 0, MAX_EXAMINED as isize - 1);
                }
            }
        }
        let replies = self.query_scripts(&cmds).await?;
        for (&i, reply) in todo.iter().zip(replies) {
            read_stream(&mut streams[i], reply, batch, max)?;
        }
        Ok(())
    }

    /// Checks candidates against their records; `None` for those that do not match.
    async fn check(
        &self,
        streams: &[Stream],
        candidates: &[(usize, Cursor)],
        filter: &Filter,
    ) -> Result<Vec<Option<Listed>>, Error> {
        let mut cmds = self.conn.commands();
        let ids: Vec<Option<JobId>> = candidates
            .iter()
            .map(|(_, pos)| JobId::parse(&pos.id).ok())
            .collect();
        let runs = filter.reads_runs();
        let by_created = filter.order == Order::Created;
        for ((i, _), id) in candidates.iter().zip(&ids) {
            let Some(id) = id else { continue };
            let shard = streams[*i].shard;
            let pipe = cmds.group();
            pipe.get(self.keys.job(shard, id))
                .zscore(self.keys.held(shard), id.as_str())
                .hget(self.keys.notes(shard), id.as_str())
                .zscore(self.keys.created(shard), id.as_str());
            if runs {
                pipe.hgetall(runs::run_key(&self.keys, id));
            }
            if by_created {
                pipe.zscore(self.keys.due(shard), id.as_str())
                    .zscore(self.keys.paused(shard), id.as_str());
            }
        }
        let per = 4 + usize::from(runs) + 2 * usize::from(by_created);
        let replies = cmds.query(&self.conn).await?;
        let mut replies = replies.chunks(per);
        let mut out = Vec::with_capacity(candidates.len());
        let mut stale = Vec::new();
        for ((i, pos), id) in candidates.iter().zip(ids) {
            let Some(id) = id else {
                out.push(None);
                continue;
            };
            let r = replies
                .next()
                .ok_or_else(|| Error::Protocol("short check reply".into()))?;
            let listed = listed(&id, pos.score, r, runs, by_created)?;
            if let Source::Set {
                index: Some(index), ..
            } = &streams[*i].source
                && listed.as_ref().is_none_or(|l| {
                    *index != Index::Created
                        && (!l.state.pending() || !Index::of(&l.record.spec).contains(index))
                })
            {
                stale.push(Stale {
                    id,
                    indexes: vec![index.clone()],
                });
            }
            out.push(listed.filter(|l| filter.matches(l.state, l.score, &l.record, l.sealed)));
        }
        if !stale.is_empty() {
            self.reindex(&stale).await?;
        }
        Ok(out)
    }

    /// Counts by state set, and pending jobs by app and tenant (the count hashes the scripts
    /// keep): one round trip of six commands per shard, no scan.
    pub async fn stats(&self) -> Result<Stats, Error> {
        let shards: Vec<Shard> = (0..self.keys.shards()).map(Shard).collect();
        let mut cmds = self.conn.commands();
        for &s in &shards {
            cmds.group()
                .zcard(self.keys.due(s))
                .zcard(self.keys.paused(s))
                .zcard(self.keys.held(s))
                .zcard(self.keys.inflight(s))
                .zcard(self.keys.done(s))
                .hgetall(self.keys.counts(s));
        }
        let replies = cmds.query(&self.conn).await?;
        let mut stats = Stats::default();
        for r in replies.chunks(6) {
            for (state, v) in ["scheduled", "paused", "held", "firing", "finished"]
                .iter()
                .zip(r)
            {
                *stats.by_state.entry((*state).to_owned()).or_default() +=
                    from_redis_value::<u64>(v)?;
            }
            let Some(counts) = r.get(5) else { continue };
            for (name, n) in from_redis_value::<Vec<(String, i64)>>(counts)? {
                let Ok(n) = u64::try_from(n) else { continue };
                let (map, value) = match name.split_once(':') {
                    Some(("a", app)) => (&mut stats.by_app, app),
                    Some(("t", tenant)) => (&mut stats.by_tenant, tenant),
                    _ => continue,
                };
                if n > 0 {
                    *map.entry(value.to_owned()).or_default() += n;
                }
            }
        }
        Ok(stats)
    }

    /// An upper bound of how many jobs `filter` matches, from the sizes of the sets a listing
    /// would read (exact for a filter of one index or state set alone, stale entries aside):
    /// one round trip, no listing.
    pub async fn estimate(&self, filter: &Filter) -> Result<u64, Error> {
        let states = filter.states();
        let (min, max) = match filter.order {
            Order::Due => (
                filter
                    .due_after
                    .map_or("-inf".to_owned(), |a| a.to_string()),
                filter
                    .due_before
                    .map_or("+inf".to_owned(), |b| format!("({b}")),
            ),
            Order::Created => ("-inf".to_owned(), "+inf".to_owned()),
        };
        let index = self.pick_index(filter).await?;
        let mut cmds = self.conn.commands();
        let mut n = 0;
        for s in 0..self.keys.shards() {
            for source in self.sources(Shard(s), filter, &states, index.as_ref()) {
                n += 1;
                match source {
                    Source::Set { key, .. } => cmds.group().zcount(key, &min, &max),
                    Source::Inflight(key) => cmds.group().zcard(key),
                };
            }
        }
        if n == 0 {
            return Ok(0);
        }
        let mut total = 0u64;
        for v in cmds.query(&self.conn).await? {
            total += from_redis_value::<u64>(&v)?;
        }
        Ok(total)
    }
}

/// The index of `named` with the fewest members (`sizes`, in the same order); the first of
/// those that tie.
fn smallest(named: Vec<Index>, sizes: &[u64]) -> Option<Index> {
    named
        .into_iter()
        .zip(sizes)
        .min_by_key(|(_, n)| **n)
        .map(|(index, _)| index)
}

/// The stream whose next member comes first.
fn min_stream(streams: &[Stream]) -> Option<usize> {
    streams
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.buf.front().map(|(score, id)| ((*score, id.as_str()), i)))
        .min()
        .map(|(_, i)| i)
}

/// Adds a read to a stream.
fn read_stream(s: &mut Stream, reply: Value, batch: usize, max: Option<i64>) -> Result<(), Error> {
    let after = |score: i64, id: &str, last: &Option<Cursor>| {
        last.as_ref()
            .is_none_or(|c| (score, id) > (c.score, c.id.as_str()))
    };
    match &s.source {
        Source::Inflight(_) => {
            let members: Vec<String> = from_redis_value(&reply)?;
            let mut all: Vec<(i64, String)> = members
                .iter()
                .filter_map(|m| {
                    let (score, id) = m.split_once('|')?;
                    Some((score.parse::<f64>().ok()? as i64, id.to_owned()))
                })
                .filter(|(score, id)| after(*score, id, &s.last))
                .filter(|(score, _)| max.is_none_or(|m| *score <= m))
                .collect();
            all.sort();
            s.buf.extend(all);
            s.done = true;
            Ok(())
        }
        Source::Set { .. } => {
            let mut items: Vec<Vec<u8>> = from_redis_value(&reply)?;
            if items.is_empty() {
                return Err(Error::Protocol("empty page reply".into()));
            }
            items.remove(0);
            let read = items.len() / 2;
            for pair in items.chunks(2) {
                let id = String::from_utf8_lossy(&pair[0]).into_owned();
                let score = String::from_utf8_lossy(&pair[1])
                    .parse::<f64>()
                    .map_err(|e| Error::Protocol(format!("bad score: {e}")))?
                    as i64;
                if max.is_some_and(|m| score > m) {
                    s.done = true;
                    break;
                }
                // The script answers members after the position only; checked again here, so
                // that a reply out of order could never make the listing go backwards.
                if after(score, &id, &s.last) {
                    s.buf.push_back((score, id));
                }
            }
            if read < batch {
                s.done = true;
            }
            if let Some((score, id)) = s.buf.back() {
                s.last = Some(Cursor {
                    score: *score,
                    id: id.clone(),
                });
            }
            Ok(())
        }
    }
}

/// A candidate as read (`GET` record, `ZSCORE` held, `HGET` note, `ZSCORE` created, then
/// `HGETALL` run when `runs`, and `ZSCORE` due and paused when listed by creation).
fn listed(
    id: &JobId,
    score: i64,
    r: &[Value],
    runs: bool,
    by_created: bool,
) -> Result<Option<Listed>, Error> {
    let (Some(raw), Some(held), Some(note), Some(created)) =
        (r.first(), r.get(1), r.get(2), r.get(3))
    else {
        return Err(Error::Protocol("short check reply".into()));
    };
    let mut rest = r[4..].iter();
    let run = if runs { rest.next() } else { None };
    let (due, paused) = if by_created {
        (rest.next(), rest.next())
    } else {
        (None, None)
    };
    let Some(raw): Option<Vec<u8>> = from_redis_value(raw)? else {
        return Ok(None);
    };
    // A listing never opens payloads: a sealed one reads as `null`, and a record sealed with
    // a key that is not configured is still listed (and can be cancelled).
    let Ok((state, spec)) = record::decode(id, &raw, &Keyring::none(), Payload::Skip) else {
        return Ok(None);
    };
    let held: Option<f64> = from_redis_value(held)?;
    let created: Option<f64> = from_redis_value(created)?;
    let run = match run {
        Some(run) => {
            let fields: HashMap<String, String> = from_redis_value(run)?;
            runs::parse_run_info("run", &fields)?
        }
        None => None,
    };
    let score_of = |v: Option<&Value>| -> Result<Option<i64>, Error> {
        Ok(match v {
            Some(v) => from_redis_value::<Option<f64>>(v)?.map(|s| s as i64),
            None => None,
        })
    };
    // The instant a pending job waits for: the score it is listed under, or (listed by
    // creation) the one in whichever of its sets holds it.
    let due_score = if by_created {
        score_of(due)?
            .or(score_of(paused)?)
            .or(held.map(|h| h as i64))
    } else {
        Some(score)
    };
    let listed_state = match state {
        JobState::Scheduled if held.is_some() => ListState::Held,
        JobState::Scheduled => ListState::Scheduled,
        JobState::Paused => ListState::Paused,
        JobState::Firing => ListState::Firing,
        JobState::Cancelled => ListState::Cancelled,
        JobState::Dispatched => match run.as_ref().map(|r| r.state) {
            Some(RunState::Running) => ListState::Running,
            Some(RunState::Succeeded) => ListState::Succeeded,
            Some(RunState::Retrying) => ListState::Retrying,
            Some(RunState::Dead) => ListState::Dead,
            None => ListState::Dispatched,
        },
    };
    let pause = match state {
        JobState::Paused => from_redis_value::<Option<String>>(note)?
            .and_then(|n| serde_json::from_str(n.get(1..)?).ok()),
        _ => None,
    };
    let next_due = listed_state
        .pending()
        .then(|| due_score.and_then(chrono::DateTime::from_timestamp_millis))
        .flatten();
    Ok(Some(Listed {
        record: JobRecord {
            state,
            next_due,
            spec,
        },
        state: listed_state,
        score,
        created: created.map(|c| c as i64),
        pause,
        run,
        sealed: record::sealed(&raw),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_filter() {
        let f = Filter {
            app: Some("sms".into()),
            ..Filter::default()
        };
        let c = Cursor {
            score: 1_700_000_000_123,
            id: "a:b|c@1".into(),
        };
        assert_eq!(Cursor::decode(&c.encode(&f), &f), Ok(c.clone()));
        let other = Filter::default();
        assert!(
            Cursor::decode(&c.encode(&f), &other)
                .unwrap_err()
                .contains("other filters")
        );
        for bad in ["", "c1", "c1zz", "x1abcd", "c1616263"] {
            assert!(Cursor::decode(bad, &f).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_smallest_named_index_is_read() {
        let mut f = Filter {
            app: Some("sms".into()),
            ..Filter::default()
        };
        assert_eq!(f.indexes(), vec![Index::App("sms".into())]);
        f.kind = Some(Kind::Once);
        assert_eq!(
            f.indexes(),
            vec![Index::App("sms".into())],
            "one-shots have no index"
        );
        f.kind = Some(Kind::Cron);
        f.tenant = Some("acme".into());
        f.labels.push(("team".into(), "pay".into()));
        let named = f.indexes();
        assert_eq!(
            named,
            vec![
                Index::Label("team".into(), "pay".into()),
                Index::Tenant("acme".into()),
                Index::App("sms".into()),
                Index::Recurring,
            ]
        );
        assert_eq!(
            smallest(named.clone(), &[50, 40, 900, 3]),
            Some(Index::Recurring)
        );
        assert_eq!(
            smallest(named.clone(), &[50, 40, 40, 3_000]),
            Some(Index::Tenant("acme".into())),
            "ties go to the first named"
        );
        assert_eq!(smallest(Vec::new(), &[]), None);
    }
}
