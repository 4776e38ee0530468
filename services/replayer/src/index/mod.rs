//! The DLQ index: a summary of every dead letter in Redis, kept by the replayer from the DLQ
//! topic ([`build`]), so that listing, counting and showing letters read Redis, not the topic.
//!
//! Every key is in one hash slot, `{<prefix>:dlq}`, so each step is one atomic script on a
//! single server and on a cluster alike (the index lives on the node of that slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<p>:l` | hash | id → the letter's time (15 digits) and its summary JSON |
//! | `<p>:t` | lex set | `<time>:<id>`: every letter, in time order (ties by partition, offset) |
//! | `<p>:o` | lex set | id: every letter in (partition, offset) order |
//! | `<p>:f:<a\|r\|t\|j>:<value>` | lex set | `<time>:<id>` of the letters of one app, reason, tenant or job id |
//! | `<p>:c` | hash | counts: total, by app, reason and stage, overall and per tenant |
//! | `<p>:n` | hash | partition → the next offset to index (written with the letters) |
//! | `<p>:m` | hash | `caught_up`, `beat` (ms), `evicted` |
//! | `<p>:lease` | string | the indexing replayer (one at a time) |
//!
//! An id is `<partition, 5 digits>:<offset, 19 digits>`, so lex order is (partition, offset).
//! A letter's time is its `error-timestamp` (else the record's timestamp) in epoch ms, 15 digits.
//! A summary keeps the first [`ERROR_BYTES`] of `error-message`; `show` reads the record.
//!
//! A query walks the smallest set that its equality filters name (or the time set), in bounded
//! steps of [`STEP`] members, checking the other filters on each summary inside Redis.

pub mod build;

use std::collections::BTreeMap;

use redis::{AsyncCommands, Script, Value};
use sked_api::dlq::{Counts, IndexState, Letter, Order};
use sked_core::store::Connection;

use crate::letter::Matcher;

/// Bytes of `error-message` a summary keeps.
pub const ERROR_BYTES: usize = 1024;
/// Members one walk step examines.
pub const STEP: usize = 2000;
/// `order=offset` with an equality filter whose set holds at most this many letters reads them
/// all and sorts them; beyond it, it walks every letter in offset order.
const SORT_AT_MOST: u64 = 50_000;
/// The indexer's heartbeat is fresh for this long (`caught_up` needs a fresh one).
const BEAT_FRESH_MS: i64 = 30_000;

/// A Redis failure of the index, or a stored value it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis failed or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored summary is not what the index writes.
    #[error("dlq index holds an unreadable entry: {0}")]
    Corrupt(String),
}

/// The DLQ index in Redis. Cheap to clone.
#[derive(Clone)]
pub struct DlqIndex {
    conn: Connection,
    layout: Layout,
    add: std::sync::Arc<Script>,
    remove: std::sync::Arc<Script>,
    walk: std::sync::Arc<Script>,
}

/// One letter as the index stores it: the keys and counters it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `<partition>:<offset>`, padded.
    pub id: String,
    /// `<time>:<id>`.
    pub member: String,
    /// `<time><summary JSON>`.
    pub value: String,
    /// The filter sets it is in.
    pub sets: Vec<String>,
    /// The counters it counts in.
    pub counters: Vec<String>,
}

/// Padded id of a letter.
pub fn id(partition: i32, offset: i64) -> String {
    format!("{partition:05}:{offset:019}")
}

/// A time as the index orders it: epoch ms, clamped to 0 ..= 10^15 - 1, 15 digits.
fn time(ms: i64) -> String {
    format!("{:015}", ms.clamp(0, 999_999_999_999_999))
}

/// The counters of a letter: `n` (total), `a|r|s` + NUL + value, and per tenant `T` + NUL +
/// tenant and `A|R|S` + NUL + tenant + NUL + value. Absent values count as `-`.
fn counters(l: &Letter) -> Vec<String> {
    let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "-".to_owned());
    let (app, reason, stage) = (v(&l.app), v(&l.reason), v(&l.stage));
    let mut out = vec![
        "n".to_owned(),
        format!("a\0{app}"),
        format!("r\0{reason}"),
        format!("s\0{stage}"),
    ];
    if let Some(t) = &l.tenant {
        let t = t.replace('\0', "\u{fffd}");
        out.push(format!("T\0{t}"));
        out.push(format!("A\0{t}\0{app}"));
        out.push(format!("R\0{t}\0{reason}"));
        out.push(format!("S\0{t}\0{stage}"));
    }
    out
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// The keys of the index, and how a letter is stored under them.
#[derive(Clone, Debug)]
pub struct Layout {
    p: String,
}

impl Layout {
    /// The keys under `key_prefix`.
    pub fn new(key_prefix: &str) -> Self {
        Self {
            p: format!("{key_prefix}:{{dlq}}"),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.p)
    }

    fn set(&self, kind: char, value: &str) -> String {
        format!("{}:f:{kind}:{value}", self.p)
    }

    /// How the index stores `letter` (its error cut to [`ERROR_BYTES`]).
    pub fn entry(&self, letter: &Letter) -> Entry {
        let mut l = letter.clone();
        if let Some(e) = l.error.as_mut() {
            cut(e, ERROR_BYTES);
        }
        let id = id(l.partition, l.offset);
        let at = time(l.at_ms());
        let mut sets = Vec::new();
        for (kind, value) in [
            ('a', &l.app),
            ('r', &l.reason),
            ('t', &l.tenant),
            ('j', &l.job_id),
        ] {
            if let Some(v) = value {
                sets.push(self.set(kind, v));
            }
        }
        // A summary is plain data; serialising it cannot fail.
        let json = serde_json::to_string(&l).unwrap_or_default();
        Entry {
            member: format!("{at}:{id}"),
            value: format!("{at}{json}"),
            counters: counters(&l),
            sets,
            id,
        }
    }
}

impl DlqIndex {
    /// The index under `key_prefix` on `conn`.
    pub fn new(conn: Connection, key_prefix: &str) -> Self {
        Self {
            conn,
            layout: Layout::new(key_prefix),
            add: std::sync::Arc::new(Script::new(include_str!("lua/add.lua"))),
            remove: std::sync::Arc::new(Script::new(include_str!("lua/remove.lua"))),
            walk: std::sync::Arc::new(Script::new(include_str!("lua/walk.lua"))),
        }
    }

    fn key(&self, name: &str) -> String {
        self.layout.key(name)
    }

    fn set(&self, kind: char, value: &str) -> String {
        self.layout.set(kind, value)
    }

    /// How the index stores `letter`.
    pub fn entry(&self, letter: &Letter) -> Entry {
        self.layout.entry(letter)
    }

    /// The lease key of the indexer.
    pub(crate) fn lease_key(&self) -> String {
        self.key("lease")
    }

    fn base_keys(&self, fifth: &str) -> Vec<String> {
        vec![
            self.key("l"),
            self.key("t"),
            self.key("o"),
            self.key("c"),
            self.key(fifth),
        ]
    }

    /// Adds `entries` and records `next` (partition → next offset to index), atomically.
    /// Returns how many were new.
    pub async fn add(&self, entries: &[Entry], next: &BTreeMap<i32, i64>) -> Result<u64, Error> {
        let mut inv = self.add.prepare_invoke();
        for k in self.base_keys("n") {
            inv.key(k);
        }
        inv.arg(next.len());
        for (p, n) in next {
            inv.arg(p).arg(n);
        }
        for e in entries {
            for s in &e.sets {
                inv.key(s);
            }
            inv.arg(&e.id)
                .arg(&e.member)
                .arg(&e.value)
                .arg(e.sets.len())
                .arg(e.counters.len());
            for c in &e.counters {
                inv.arg(c);
            }
        }
        let mut conn = self.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// Removes `entries`; `field` of the meta hash (`evicted`) counts them when given.
    pub async fn remove(&self, entries: &[Entry], field: Option<&str>) -> Result<u64, Error> {
        let mut inv = self.remove.prepare_invoke();
        for k in self.base_keys("m") {
            inv.key(k);
        }
        inv.arg(field.unwrap_or(""));
        for e in entries {
            for s in &e.sets {
                inv.key(s);
            }
            inv.arg(&e.id)
                .arg(&e.member)
                .arg(e.sets.len())
                .arg(e.counters.len());
            for c in &e.counters {
                inv.arg(c);
            }
        }
        let mut conn = self.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// The next offset to index, per partition, as last written.
    pub async fn next_offsets(&self) -> Result<BTreeMap<i32, i64>, Error> {
        let mut conn = self.conn.clone();
        let raw: BTreeMap<String, i64> = conn.hgetall(self.key("n")).await?;
        Ok(raw
            .into_iter()
            .filter_map(|(p, n)| Some((p.parse().ok()?, n)))
            .collect())
    }

    /// The letters stored under `ids`, in that order (`None` where there is none).
    pub async fn letters(&self, ids: &[String]) -> Result<Vec<Option<Letter>>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let raw: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.key("l"))
            .arg(ids)
            .query_async(&mut conn)
            .await?;
        raw.into_iter()
            .map(|v| v.map(|v| summary(&v)).transpose())
            .collect()
    }

    /// The letter at `partition`/`offset`, if indexed.
    pub async fn get(&self, partition: i32, offset: i64) -> Result<Option<Letter>, Error> {
        Ok(self
            .letters(&[id(partition, offset)])
            .await?
            .pop()
            .flatten())
    }

    /// Ids of indexed letters of `partition` below `offset`, at most `count`.
    pub async fn ids_below(
        &self,
        partition: i32,
        offset: i64,
        count: usize,
    ) -> Result<Vec<String>, Error> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("ZRANGEBYLEX")
            .arg(self.key("o"))
            .arg(format!("[{partition:05}:"))
            .arg(format!("({}", id(partition, offset)))
            .arg("LIMIT")
            .arg(0)
            .arg(count)
            .query_async(&mut conn)
            .await?)
    }

    /// Ids of the oldest `count` letters by time.
    pub async fn oldest(&self, count: usize) -> Result<Vec<String>, Error> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = conn
            .zrange(self.key("t"), 0, count.saturating_sub(1) as isize)
            .await?;
        Ok(members
            .into_iter()
            .map(|m| m.get(16..).unwrap_or_default().to_owned())
            .collect())
    }

    /// Letters in the index.
    pub async fn len(&self) -> Result<u64, Error> {
        let mut conn = self.conn.clone();
        Ok(conn.hlen(self.key("l")).await?)
    }

    /// Writes the indexer's heartbeat: whether it reached the end of every partition.
    pub async fn beat(&self, caught_up: bool) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let _: () = conn
            .hset_multiple(
                self.key("m"),
                &[
                    ("caught_up", if caught_up { "1" } else { "0" }.to_owned()),
                    ("beat", now.to_string()),
                ],
            )
            .await?;
        Ok(())
    }

    /// The state of the index now.
    pub async fn state(&self) -> Result<IndexState, Error> {
        let mut conn = self.conn.clone();
        let (letters, meta): (u64, BTreeMap<String, String>) = redis::pipe()
            .hlen(self.key("l"))
            .hgetall(self.key("m"))
            .query_async(&mut conn)
            .await?;
        let num = |f: &str| meta.get(f).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let fresh = chrono::Utc::now().timestamp_millis() - num("beat") <= BEAT_FRESH_MS;
        let caught_up = fresh && num("caught_up") == 1;
        let evicted = u64::try_from(num("evicted")).unwrap_or(0);
        Ok(IndexState {
            letters,
            caught_up,
            evicted,
            complete: caught_up && evicted == 0,
        })
    }

    /// The set a query walks: the smallest of the sets its equality filters name, with its
    /// size, or `None` (the time set) when it names none.
    async fn candidates(&self, m: &Matcher) -> Result<Option<(String, u64)>, Error> {
        let f = m.filter();
        let named: Vec<String> = [
            ('a', &f.app),
            ('r', &f.reason),
            ('t', &f.tenant),
            ('j', &f.job_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| self.set(k, v)))
        .collect();
        if named.is_empty() {
            return Ok(None);
        }
        let mut pipe = redis::pipe();
        for k in &named {
            pipe.zcard(k);
        }
        let mut conn = self.conn.clone();
        let cards: Vec<u64> = pipe.query_async(&mut conn).await?;
        Ok(named.into_iter().zip(cards).min_by_key(|(_, c)| *c))
    }

    /// The first `limit` letters matching `m` in `order`, how many match, and how many entries
    /// were examined.
    pub async fn list(
        &self,
        m: &Matcher,
        order: Order,
        limit: usize,
    ) -> Result<(Vec<Letter>, u64, u64), Error> {
        let candidates = self.candidates(m).await?;
        let f = m.filter();
        let named = [&f.app, &f.reason, &f.tenant, &f.job_id]
            .iter()
            .filter(|v| v.is_some())
            .count();
        // One set and the time range say it all: its size in the range is the count.
        let counted_by_set = named <= 1 && f.stage.is_none() && f.error.is_none();
        let set = candidates
            .as_ref()
            .map_or_else(|| self.key("t"), |(k, _)| k.clone());
        let (lo, hi) = self.bounds(m);
        match order {
            Order::Newest => {
                let mut walk = Walk::new(self, m, set.clone(), 't', "desc", lo.clone(), hi.clone());
                walk.stop = counted_by_set;
                let mut out = Vec::new();
                while !walk.done {
                    let want = if out.len() < limit {
                        limit - out.len()
                    } else if counted_by_set {
                        break;
                    } else {
                        0
                    };
                    out.extend(walk.step(want).await?);
                }
                let matched = if counted_by_set && !walk.done {
                    let mut conn = self.conn.clone();
                    conn.zlexcount(&set, &lo, &hi).await?
                } else {
                    walk.matched
                };
                Ok((out, matched, walk.examined))
            }
            Order::Offset => {
                let small = candidates.as_ref().is_some_and(|(_, c)| *c <= SORT_AT_MOST);
                let mut walk = if small {
                    Walk::new(self, m, set, 't', "asc", lo, hi)
                } else {
                    let (since, until) = (m.since_ms().map(time), m.until_ms().map(time));
                    let mut w =
                        Walk::new(self, m, self.key("o"), 'o', "asc", "-".into(), "+".into());
                    w.since = since.unwrap_or_default();
                    w.until = until.unwrap_or_default();
                    w
                };
                // No filter at all: the first page is the answer, the index's size the count.
                let unfiltered = candidates.is_none()
                    && counted_by_set
                    && m.since_ms().is_none()
                    && m.until_ms().is_none();
                walk.stop = unfiltered;
                let mut out = Vec::new();
                while !(walk.done || (unfiltered && out.len() >= limit)) {
                    let want = if small {
                        STEP
                    } else {
                        limit.saturating_sub(out.len())
                    };
                    out.extend(walk.step(want).await?);
                }
                out.sort_by_key(|l| (l.partition, l.offset));
                out.truncate(limit);
                let matched = if unfiltered {
                    self.len().await?
                } else {
                    walk.matched
                };
                Ok((out, matched, walk.examined))
            }
        }
    }

    /// Counts of the letters matching `m`, and how many entries were examined (0 when the
    /// counters answered: no filter, or only a tenant).
    pub async fn stats(&self, m: &Matcher) -> Result<(Counts, u64), Error> {
        let f = m.filter();
        let only_tenant = f.app.is_none()
            && f.reason.is_none()
            && f.stage.is_none()
            && f.error.is_none()
            && f.since.is_none()
            && f.until.is_none()
            && f.job_id.is_none();
        if only_tenant {
            let mut conn = self.conn.clone();
            let raw: BTreeMap<String, u64> = conn.hgetall(self.key("c")).await?;
            return Ok((counts_of(&raw, f.tenant.as_deref()), 0));
        }
        let set = self
            .candidates(m)
            .await?
            .map_or_else(|| self.key("t"), |(k, _)| k);
        let (lo, hi) = self.bounds(m);
        let mut walk = Walk::new(self, m, set, 't', "asc", lo, hi);
        walk.mode = "stats";
        let mut counts = Counts::default();
        while !walk.done {
            walk.step_stats(&mut counts).await?;
        }
        counts.total = walk.matched;
        Ok((counts, walk.examined))
    }

    /// ZRANGEBYLEX bounds of `m`'s time range over time members.
    fn bounds(&self, m: &Matcher) -> (String, String) {
        (
            m.since_ms()
                .map_or_else(|| "-".to_owned(), |s| format!("[{}", time(s))),
            m.until_ms()
                .map_or_else(|| "+".to_owned(), |u| format!("({}", time(u))),
        )
    }
}

/// The summary in a stored value.
fn summary(value: &str) -> Result<Letter, Error> {
    value
        .get(15..)
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or_else(|| Error::Corrupt(value.chars().take(80).collect()))
}

/// Counts from the counters hash: overall, or of one tenant.
fn counts_of(raw: &BTreeMap<String, u64>, tenant: Option<&str>) -> Counts {
    let mut c = Counts::default();
    for (field, &n) in raw {
        let (kind, rest) = field.split_at(field.len().min(1));
        let rest = rest.strip_prefix('\0').unwrap_or(rest);
        let value = match (tenant, kind) {
            (None, "n") | (Some(_), "T") if tenant.is_none_or(|t| rest == t) => {
                c.total = n;
                continue;
            }
            (None, "a" | "r" | "s") => rest,
            (Some(t), "A" | "R" | "S") => match rest.split_once('\0') {
                Some((ft, v)) if ft == t => v,
                _ => continue,
            },
            _ => continue,
        };
        let by = match kind {
            "a" | "A" => &mut c.by_app,
            "r" | "R" => &mut c.by_reason,
            _ => &mut c.by_stage,
        };
        by.insert(value.to_owned(), n);
    }
    c
}

/// A walk over one set of the index, in steps.
struct Walk<'a> {
    index: &'a DlqIndex,
    set: String,
    kind: char,
    order: &'static str,
    lo: String,
    hi: String,
    mode: &'static str,
    args: [String; 6],
    since: String,
    until: String,
    /// End a step at its `want`-th match (no count needed).
    stop: bool,
    done: bool,
    matched: u64,
    examined: u64,
}

impl<'a> Walk<'a> {
    fn new(
        index: &'a DlqIndex,
        m: &Matcher,
        set: String,
        kind: char,
        order: &'static str,
        lo: String,
        hi: String,
    ) -> Self {
        let f = m.filter();
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            index,
            set,
            kind,
            order,
            lo,
            hi,
            mode: "list",
            args: [
                s(&f.app),
                s(&f.reason),
                s(&f.stage),
                s(&f.tenant),
                s(&f.job_id),
                m.error_lower().unwrap_or_default().to_owned(),
            ],
            since: String::new(),
            until: String::new(),
            stop: false,
            done: false,
            matched: 0,
            examined: 0,
        }
    }

    async fn call(&mut self, want: usize) -> Result<Vec<Value>, Error> {
        let mut inv = self.index.walk.prepare_invoke();
        inv.key(&self.set)
            .key(self.index.key("l"))
            .arg(self.order)
            .arg(&self.lo)
            .arg(&self.hi)
            .arg(STEP)
            .arg(want)
            .arg(self.mode)
            .arg(self.kind.to_string());
        for a in &self.args {
            inv.arg(a);
        }
        inv.arg(&self.since)
            .arg(&self.until)
            .arg(if self.stop { "1" } else { "0" });
        let mut conn = self.index.conn.clone();
        let out: Vec<Value> = inv.invoke_async(&mut conn).await?;
        let num = |v: Option<&Value>| match v {
            Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        let examined = num(out.first());
        let last = match out.get(1) {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        self.examined += examined;
        self.matched += num(out.get(2));
        let stopped = self.stop && (want as u64) > 0 && num(out.get(2)) == want as u64;
        if (examined < STEP as u64 && !stopped) || last.is_empty() {
            self.done = true;
        } else if self.order == "desc" {
            self.hi = format!("({last}");
        } else {
            self.lo = format!("({last}");
        }
        Ok(out.into_iter().skip(3).collect())
    }

    /// One step; the summaries of at most `want` matches.
    async fn step(&mut self, want: usize) -> Result<Vec<Letter>, Error> {
        self.call(want)
            .await?
            .into_iter()
            .map(|v| match v {
                Value::BulkString(b) => summary(&String::from_utf8_lossy(&b)),
                other => Err(Error::Corrupt(format!("{other:?}"))),
            })
            .collect()
    }

    /// One step of a stats walk, added to `counts`.
    async fn step_stats(&mut self, counts: &mut Counts) -> Result<(), Error> {
        let out = self.call(0).await?;
        for t in out.chunks(3) {
            let [
                Value::BulkString(kind),
                Value::BulkString(value),
                Value::Int(n),
            ] = t
            else {
                return Err(Error::Corrupt(format!("{t:?}")));
            };
            let by = match kind.as_slice() {
                b"a" => &mut counts.by_app,
                b"r" => &mut counts.by_reason,
                _ => &mut counts.by_stage,
            };
            *by.entry(String::from_utf8_lossy(value).into_owned())
                .or_default() += u64::try_from(*n).unwrap_or(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
