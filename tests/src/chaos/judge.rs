//! What a run should have done, what it did, and the verdict.
//!
//! Every job the run submitted (and Kafka acknowledged) has its expected fires, each a fire id
//! `<job id>@<due ms>` (sked's format, `sked_core::job::FireId`): a one-shot job one, at its
//! `run_at`; an `every` job `max_runs` of them on its `start_at + k * interval` grid (it is
//! submitted before `start_at`, and with `misfire = fire_all`, so that no slot may be dropped
//! as a misfire however late it is). The app's log of executions is compared with them:
//!
//! - **lost**: an expected fire that never ran successfully. Fails the run.
//! - **early**: an execution before its fire's due time. Fails the run.
//! - **wrong fire id**: an execution under a fire id that no job of the run should have (off
//!   the grid, beyond `max_runs`, another job's, or none). Fails the run: sked promises the
//!   same fire always carries the same id.
//! - **over max_runs**: an `every` job with more distinct fires run than its `max_runs`.
//!   Fails the run.
//! - **duplicate**: a fire that ran successfully more than once. Delivery is at-least-once,
//!   so this is counted, not failed.
//! - **lateness**: first execution of a fire minus its due time. Reported, never failed: a
//!   scheduler killed holding a lease delays its fires by up to `scheduler.lease` (30 s).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::app::Exec;

/// The three kinds of job the run streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `o-N`: `run_at` a few seconds ahead.
    Once,
    /// `e-N`: `every` with `start_at` and `max_runs`.
    Every,
    /// `f-N`: one-shot whose first attempt fails with 503.
    FailOnce,
}

impl Kind {
    /// The id prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Once => "o",
            Kind::Every => "e",
            Kind::FailOnce => "f",
        }
    }
}

/// One submitted job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its kind.
    pub kind: Kind,
    /// Due instants (epoch ms) of its expected fires.
    pub dues: Vec<i64>,
    /// Kafka acknowledged the request (`None`: not yet; `Some(false)`: the produce failed, so
    /// the job may or may not exist and is left out of the verdict).
    pub acked: Option<bool>,
}

/// A kill -9 and what followed.
#[derive(Debug, Clone)]
pub struct Kill {
    /// The service (`worker-2`).
    pub service: String,
    /// Seconds into the run.
    pub at_s: f64,
    /// Seconds from kill to the restart.
    pub restart_after_s: f64,
    /// Seconds from kill to `/readyz` 200 of the new process (`None`: never).
    pub ready_after_s: Option<f64>,
    /// An outage (Redis or broker) overlapped the recovery.
    pub overlapped_outage: bool,
}

/// A Redis restart or a broker pause and what followed.
#[derive(Debug, Clone)]
pub struct Outage {
    /// `redis down` or `broker paused`.
    pub what: &'static str,
    /// Seconds into the run.
    pub at_s: f64,
    /// How long it lasted.
    pub lasted_s: f64,
    /// Seconds from its end until every service that was running answered `/readyz` 200
    /// (`None`: never); services killed before it count for their own recovery only.
    pub all_ready_after_s: Option<f64>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Seed of the run.
    pub seed: u64,
    /// Seconds of streaming.
    pub streamed_s: f64,
    /// Seconds from the end of streaming to the verdict.
    pub settled_s: f64,
    /// Jobs submitted and acknowledged, by kind.
    pub jobs: BTreeMap<&'static str, usize>,
    /// Jobs whose submission failed (left out of the verdict).
    pub unconfirmed: usize,
    /// Expected fires.
    pub fires: usize,
    /// Requests the app received.
    pub executions: usize,
    /// Kills, in order.
    pub kills: Vec<Kill>,
    /// Redis restarts and broker pauses.
    pub outages: Vec<Outage>,
    /// Services that ended by themselves (name, status).
    pub exits: Vec<String>,
    /// Expected fires that never ran successfully.
    pub lost: Vec<String>,
    /// Executions before their due time: (fire id, ms early).
    pub early: Vec<(String, i64)>,
    /// Executions under a fire id no job should have.
    pub wrong: Vec<String>,
    /// `every` jobs with more distinct fires run than `max_runs`.
    pub over_max_runs: Vec<String>,
    /// Fires that ran successfully more than once.
    pub duplicate_fires: usize,
    /// Successful executions beyond the first of their fire.
    pub duplicate_executions: usize,
    /// Fail-once fires whose failure the app never saw (ran once, successfully, at attempt 2+).
    pub retries_seen: usize,
    /// Lateness of each fire's first execution, ms, sorted.
    pub lateness_ms: Vec<i64>,
    /// Max lateness by kind, ms.
    pub max_lateness_by_kind: BTreeMap<&'static str, i64>,
    /// Evidence gathered about lost fires (Kafka records, offsets).
    pub evidence: Vec<String>,
    /// Where the logs of the run are.
    pub log_dir: String,
}

/// The fire ids of `job` (job id `id`).
fn fire_ids(id: &str, job: &Job) -> Vec<String> {
    job.dues.iter().map(|d| format!("{id}@{d}")).collect()
}

/// The due instant written in a fire id.
fn due_of(fire_id: &str) -> Option<(&str, i64)> {
    let (job, ms) = fire_id.rsplit_once('@')?;
    Some((job, ms.parse().ok()?))
}

/// Expected fires without a successful execution yet.
pub fn missing(jobs: &BTreeMap<String, Job>, execs: &[Exec]) -> Vec<String> {
    let ok: BTreeSet<&str> = execs
        .iter()
        .filter(|e| e.ok())
        .map(|e| e.fire_id.as_str())
        .collect();
    jobs.iter()
        .filter(|(_, j)| j.acked == Some(true))
        .flat_map(|(id, j)| fire_ids(id, j))
        .filter(|f| !ok.contains(f.as_str()))
        .collect()
}

/// Judges `execs` against `jobs` into `report` (its counters of jobs, fires and the verdict).
pub fn judge(report: &mut Report, jobs: &BTreeMap<String, Job>, execs: &[Exec]) {
    let mut expected: HashMap<String, (Kind, i64)> = HashMap::new();
    for (id, job) in jobs {
        match job.acked {
            Some(true) => {
                *report.jobs.entry(job.kind.prefix()).or_default() += 1;
                for (f, due) in fire_ids(id, job).into_iter().zip(&job.dues) {
                    expected.insert(f, (job.kind, *due));
                }
            }
            _ => report.unconfirmed += 1,
        }
    }
    report.fires = expected.len();
    report.executions = execs.len();

    let mut by_fire: HashMap<&str, Vec<&Exec>> = HashMap::new();
    let mut distinct_by_job: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for e in execs {
        by_fire.entry(e.fire_id.as_str()).or_default().push(e);
        let unconfirmed = jobs.get(&e.job_id).is_some_and(|j| j.acked != Some(true));
        if unconfirmed {
            continue;
        }
        if e.ok() {
            distinct_by_job
                .entry(e.job_id.as_str())
                .or_default()
                .insert(e.fire_id.as_str());
        }
        let known = expected.contains_key(&e.fire_id);
        let matches_job = due_of(&e.fire_id).is_some_and(|(job, _)| job == e.job_id);
        if !known || !matches_job {
            report.wrong.push(format!(
                "{} (job {}, attempt {})",
                e.fire_id, e.job_id, e.attempt
            ));
        }
        let due = expected
            .get(&e.fire_id)
            .map(|(_, due)| *due)
            .or_else(|| due_of(&e.fire_id).map(|(_, d)| d));
        if let Some(due) = due
            && e.at_ms < due
        {
            report.early.push((e.fire_id.clone(), due - e.at_ms));
        }
    }
    for (id, job) in jobs {
        let runs = distinct_by_job.get(id.as_str()).map_or(0, BTreeSet::len);
        if job.kind == Kind::Every && job.acked == Some(true) && runs > job.dues.len() {
            report.over_max_runs.push(format!(
                "{id}: {runs} fires for max_runs {}",
                job.dues.len()
            ));
        }
    }
    let mut lost = Vec::new();
    for (fire, (kind, due)) in &expected {
        let Some(runs) = by_fire.get(fire.as_str()) else {
            lost.push(fire.clone());
            continue;
        };
        let successes = runs.iter().filter(|e| e.ok()).count();
        if successes == 0 {
            lost.push(fire.clone());
        }
        if successes > 1 {
            report.duplicate_fires += 1;
            report.duplicate_executions += successes - 1;
        }
        if *kind == Kind::FailOnce && runs.iter().any(|e| !e.ok()) && successes > 0 {
            report.retries_seen += 1;
        }
        if let Some(first) = runs.iter().map(|e| e.at_ms).min() {
            let late = first - due;
            report.lateness_ms.push(late);
            let max = report
                .max_lateness_by_kind
                .entry(kind.prefix())
                .or_insert(late);
            *max = (*max).max(late);
        }
    }
    lost.sort();
    report.lost = lost;
    report.lateness_ms.sort_unstable();
}

impl Report {
    /// Whether the run found a correctness problem: a lost, early or wrongly identified fire,
    /// a recurring job past its `max_runs`, or a service that did not come back (a restarted
    /// process never ready, or one that ended by itself).
    pub fn failed(&self) -> bool {
        !self.lost.is_empty()
            || !self.early.is_empty()
            || !self.wrong.is_empty()
            || !self.over_max_runs.is_empty()
            || !self.exits.is_empty()
            || self.kills.iter().any(|k| k.ready_after_s.is_none())
            || self.outages.iter().any(|o| o.all_ready_after_s.is_none())
    }

    /// Kills of services whose name starts with `kind` (`worker`).
    pub fn kills_of(&self, kind: &str) -> usize {
        self.kills
            .iter()
            .filter(|k| k.service.starts_with(kind))
            .count()
    }

    /// The `q` quantile (0..=1) of the lateness, ms.
    pub fn lateness_quantile(&self, q: f64) -> i64 {
        quantile(&self.lateness_ms, q)
    }

    /// The report as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let verdict = if self.failed() { "FAILED" } else { "passed" };
        let _ = writeln!(s, "chaos run (seed {}): {verdict}", self.seed);
        let _ = writeln!(
            s,
            "  streamed {:.0} s, settled {:.0} s; logs in {}",
            self.streamed_s, self.settled_s, self.log_dir
        );
        let jobs: Vec<String> = self.jobs.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        let _ = writeln!(
            s,
            "  jobs: {} ({}); unconfirmed submissions: {}",
            self.jobs.values().sum::<usize>(),
            jobs.join(", "),
            self.unconfirmed
        );
        let _ = writeln!(
            s,
            "  fires expected: {}; executions: {}; fail-once retries seen: {}",
            self.fires, self.executions, self.retries_seen
        );
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for k in &self.kills {
            *per.entry(k.service.as_str()).or_default() += 1;
        }
        let per: Vec<String> = per.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(s, "  kills: {} ({})", self.kills.len(), per.join(", "));
        let times: Vec<String> = self
            .kills
            .iter()
            .map(|k| format!("{:.0} s {}", k.at_s, k.service))
            .collect();
        let _ = writeln!(s, "    at: {}", times.join(", "));
        for o in &self.outages {
            let ready = o
                .all_ready_after_s
                .map_or("never".to_owned(), |r| format!("{r:.1} s"));
            let _ = writeln!(
                s,
                "  {} at {:.0} s for {:.1} s; every service ready {} after",
                o.what, o.at_s, o.lasted_s, ready
            );
        }
        let _ = writeln!(
            s,
            "  LOST: {}; EARLY: {}; WRONG FIRE IDS: {}; OVER MAX_RUNS: {}; services that exited: {}",
            self.lost.len(),
            self.early.len(),
            self.wrong.len(),
            self.over_max_runs.len(),
            self.exits.len()
        );
        let _ = writeln!(
            s,
            "  duplicate executions (same fire id, allowed): {} fires, {} extra runs",
            self.duplicate_fires, self.duplicate_executions
        );
        let by_kind: Vec<String> = self
            .max_lateness_by_kind
            .iter()
            .map(|(k, v)| format!("{k} {:.1} s", *v as f64 / 1000.0))
            .collect();
        let _ = writeln!(
            s,
            "  lateness: p50 {:.2} s, p99 {:.1} s, max {:.1} s (max by kind: {})",
            self.lateness_quantile(0.5) as f64 / 1000.0,
            self.lateness_quantile(0.99) as f64 / 1000.0,
            self.lateness_ms.last().copied().unwrap_or(0) as f64 / 1000.0,
            by_kind.join(", ")
        );
        let mut rec: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        let mut never = 0;
        for k in &self.kills {
            let kind = k
                .service
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
            match k.ready_after_s {
                Some(r) if !k.overlapped_outage => {
                    let e = rec.entry(kind.to_owned()).or_default();
                    e.0.push(r);
                    e.1.push(r - k.restart_after_s);
                }
                Some(_) => {}
                None => never += 1,
            }
        }
        let _ = writeln!(
            s,
            "  recovery: kill -9 to /readyz 200 of the new process (restart to ready); consumers are restarted 31-33 s after the kill:"
        );
        for (kind, (mut down, mut start)) in rec {
            down.sort_by(f64::total_cmp);
            start.sort_by(f64::total_cmp);
            let _ = writeln!(
                s,
                "    {kind}: {} kills, median {:.1} s ({:.1} s), max {:.1} s ({:.1} s)",
                down.len(),
                down[down.len() / 2],
                start[start.len() / 2],
                down[down.len() - 1],
                start[start.len() - 1]
            );
        }
        let overlapped = self.kills.iter().filter(|k| k.overlapped_outage).count();
        if overlapped > 0 || never > 0 {
            let _ = writeln!(
                s,
                "    ({overlapped} recoveries overlapped an outage and are left out; {never} never ready)"
            );
        }
        for (name, list) in [
            ("lost", &self.lost),
            ("wrong fire ids", &self.wrong),
            ("over max_runs", &self.over_max_runs),
            ("exited", &self.exits),
        ] {
            if !list.is_empty() {
                let _ = writeln!(s, "  {name} (first 20): {}", first(list, 20).join(", "));
            }
        }
        if !self.early.is_empty() {
            let early: Vec<String> = self
                .early
                .iter()
                .take(20)
                .map(|(f, ms)| format!("{f} ({ms} ms early)"))
                .collect();
            let _ = writeln!(s, "  early (first 20): {}", early.join(", "));
        }
        for line in &self.evidence {
            let _ = writeln!(s, "  evidence: {line}");
        }
        s
    }
}

fn first(list: &[String], n: usize) -> Vec<String> {
    list.iter().take(n).cloned().collect()
}

fn quantile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(job: &str, due: i64, at: i64, status: u16) -> Exec {
        Exec {
            job_id: job.into(),
            fire_id: format!("{job}@{due}"),
            attempt: 1,
            at_ms: at,
            status,
        }
    }

    fn jobs() -> BTreeMap<String, Job> {
        let mut jobs = BTreeMap::new();
        jobs.insert(
            "o-1".into(),
            Job {
                kind: Kind::Once,
                dues: vec![1000],
                acked: Some(true),
            },
        );
        jobs.insert(
            "e-1".into(),
            Job {
                kind: Kind::Every,
                dues: vec![1000, 3000],
                acked: Some(true),
            },
        );
        jobs
    }

    #[test]
    fn a_clean_run_passes_and_counts_duplicates_and_lateness() {
        let execs = [
            exec("o-1", 1000, 1200, 200),
            exec("o-1", 1000, 1500, 200),
            exec("e-1", 1000, 1000, 200),
            exec("e-1", 3000, 3100, 200),
        ];
        let mut r = Report::default();
        judge(&mut r, &jobs(), &execs);
        assert!(!r.failed(), "{}", r.render());
        assert_eq!(
            (r.fires, r.duplicate_fires, r.duplicate_executions),
            (3, 1, 1)
        );
        assert_eq!(r.lateness_ms, vec![0, 100, 200]);
    }

    #[test]
    fn lost_early_wrong_and_over_max_runs_fail_the_run() {
        let execs = [
            exec("o-1", 1000, 999, 200),
            exec("e-1", 1000, 1000, 503),
            exec("e-1", 3000, 3000, 200),
            exec("e-1", 5000, 5000, 200),
            exec("e-1", 7000, 7000, 200),
        ];
        let mut r = Report::default();
        judge(&mut r, &jobs(), &execs);
        assert!(r.failed());
        assert_eq!(r.lost, vec!["e-1@1000".to_owned()]);
        assert_eq!(r.early, vec![("o-1@1000".to_owned(), 1)]);
        assert_eq!(r.wrong.len(), 2);
        assert_eq!(r.over_max_runs.len(), 1);
        assert_eq!(missing(&jobs(), &execs), vec!["e-1@1000".to_owned()]);
    }
}
