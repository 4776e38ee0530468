//! `apps.<name>.circuit_breaker`: stops calling an app's handler while it keeps failing.
//!
//! One breaker per app and worker process. States:
//! - **closed**: calls go through; their outcomes are counted over `window` (in
//!   [`BUCKETS`] buckets, so the window slides by a tenth of itself). Once the window holds
//!   at least `min_calls` calls and the share of transient failures (timeouts included) is at
//!   least `failure_rate`, the breaker opens;
//! - **open** for `open_for`: no call goes through;
//! - **half-open**: the first job admitted is the trial; the others are rejected while it
//!   runs. A trial that succeeds (or fails permanently: the app answered) closes the breaker
//!   with an empty window; a transient failure reopens it for `open_for`. A trial that never
//!   ran (fire already done, shutdown) lets the next job be the trial.
//!
//! Outcomes of calls admitted before the breaker opened, and finishing after, are ignored.
//! Rejected jobs are handed to the retry topic by the executor without consuming an attempt.

use std::{collections::VecDeque, sync::Mutex, time::Duration};

use prometheus_client::metrics::gauge::Gauge;
use sked_core::config::AppCircuitBreakerOptions;
use tokio::time::Instant;

/// Buckets of the sliding window.
pub const BUCKETS: u32 = 10;

/// What the breaker is configured with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Failure share that opens the breaker, in (0, 1].
    pub failure_rate: f64,
    /// Fewest calls in the window before the rate counts.
    pub min_calls: u32,
    /// Window the calls are counted over.
    pub window: Duration,
    /// How long the breaker stays open.
    pub open_for: Duration,
}

impl From<&AppCircuitBreakerOptions> for BreakerSettings {
    fn from(o: &AppCircuitBreakerOptions) -> Self {
        Self {
            failure_rate: o.failure_rate,
            min_calls: o.min_calls.max(1),
            window: o.window.get(),
            open_for: o.open_for.get(),
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// No call goes through before `until`.
    Open {
        /// When the breaker turns half-open.
        until: Instant,
    },
    /// One trial call; `trial` while it runs.
    HalfOpen {
        /// A trial is running.
        trial: bool,
    },
}

impl State {
    /// The value of `sked_worker_circuit_state`: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open { .. } => 1,
            State::HalfOpen { .. } => 2,
        }
    }
}

/// How a call ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded, or failed in a way that says the app is up (a permanent error).
    Success,
    /// Failed transiently or timed out.
    Failure,
}

/// Whether a job may run now.
#[must_use]
pub enum Admission<'a> {
    /// Run it, then [`Permit::record`] the outcome.
    Run(Permit<'a>),
    /// Do not run it; the breaker may let calls through again in `retry_in`.
    Reject {
        /// From now until the breaker may close.
        retry_in: Duration,
    },
}

/// Leave to run one call. Dropped without [`Permit::record`], a trial is given back.
#[must_use]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    trial: bool,
    recorded: bool,
}

impl Permit<'_> {
    /// Counts the call's outcome.
    pub fn record(mut self, outcome: Outcome) {
        self.recorded = true;
        self.breaker.record(Instant::now(), self.trial, outcome);
    }

    /// Whether this is the half-open trial.
    #[cfg(test)]
    fn is_trial(&self) -> bool {
        self.trial
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial && !self.recorded {
            self.breaker.give_back_trial();
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    index: u64,
    calls: u32,
    failures: u32,
}

#[derive(Debug)]
struct Inner {
    state: State,
    buckets: VecDeque<Bucket>,
}

/// One app's circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    origin: Instant,
    bucket_len: Duration,
    inner: Mutex<Inner>,
    gauge: Gauge,
}

impl Breaker {
    /// A closed breaker; `gauge` follows its state.
    pub fn new(settings: BreakerSettings, gauge: Gauge) -> Self {
        gauge.set(State::Closed.gauge());
        Self {
            settings,
            origin: Instant::now(),
            bucket_len: (settings.window / BUCKETS).max(Duration::from_millis(1)),
            inner: Mutex::new(Inner {
                state: State::Closed,
                buckets: VecDeque::new(),
            }),
            gauge,
        }
    }

    /// What it is configured with.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, inner: &mut Inner, state: State) {
        inner.state = state;
        self.gauge.set(state.gauge());
    }

    /// Rejects at `now` when the breaker is open or its trial runs, without taking the
    /// trial: the check before a job waits for anything else.
    pub fn rejects(&self, now: Instant) -> Option<Duration> {
        let inner = self.lock();
        match inner.state {
            State::Open { until } if now < until => Some(until - now),
            State::HalfOpen { trial: true } => Some(self.settings.open_for),
            _ => None,
        }
    }

    /// Whether a job may run at `now`; an open breaker whose time is up turns half-open and
    /// admits this job as its trial.
    pub fn admit(&self, now: Instant) -> Admission<'_> {
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Admission::Run(Permit {
                breaker: self,
                trial: false,
                recorded: false,
            }),
            State::Open { until } if now < until => Admission::Reject {
                retry_in: until - now,
            },
            State::Open { .. } | State::HalfOpen { trial: false } => {
                self.set(&mut inner, State::HalfOpen { trial: true });
                Admission::Run(Permit {
                    breaker: self,
                    trial: true,
                    recorded: false,
                })
            }
            State::HalfOpen { trial: true } => Admission::Reject {
                retry_in: self.settings.open_for,
            },
        }
    }

    fn record(&self, now: Instant, trial: bool, outcome: Outcome) {
        let mut inner = self.lock();
        if trial {
            inner.buckets.clear();
            let next = match outcome {
                Outcome::Success => State::Closed,
                Outcome::Failure => State::Open {
                    until: now + self.settings.open_for,
                },
            };
            self.set(&mut inner, next);
            return;
        }
        if inner.state != State::Closed {
            return;
        }
        let index = (now.saturating_duration_since(self.origin).as_nanos()
            / self.bucket_len.as_nanos()) as u64;
        let oldest = index.saturating_sub(u64::from(BUCKETS) - 1);
        while inner.buckets.front().is_some_and(|b| b.index < oldest) {
            inner.buckets.pop_front();
        }
        if inner.buckets.back().is_none_or(|b| b.index != index) {
            inner.buckets.push_back(Bucket {
                index,
                calls: 0,
                failures: 0,
            });
        }
        if let Some(bucket) = inner.buckets.back_mut() {
            bucket.calls += 1;
            bucket.failures += u32::from(outcome == Outcome::Failure);
        }
        let (calls, failures) = inner.buckets.iter().fold((0u64, 0u64), |(c, f), b| {
            (c + u64::from(b.calls), f + u64::from(b.failures))
        });
        if calls >= u64::from(self.settings.min_calls)
            && failures as f64 >= self.settings.failure_rate * calls as f64
        {
            inner.buckets.clear();
            self.set(
                &mut inner,
                State::Open {
                    until: now + self.settings.open_for,
                },
            );
        }
    }

    fn give_back_trial(&self) {
        let mut inner = self.lock();
        if inner.state == (State::HalfOpen { trial: true }) {
            self.set(&mut inner, State::HalfOpen { trial: false });
        }
    }

    /// The current state (as last updated).
    #[cfg(test)]
    fn state(&self) -> State {
        self.lock().state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn breaker(min_calls: u32) -> (Breaker, Gauge) {
        let gauge = Gauge::default();
        let settings = BreakerSettings {
            failure_rate: 0.5,
            min_calls,
            window: 10 * S,
            open_for: 30 * S,
        };
        (Breaker::new(settings, gauge.clone()), gauge)
    }

    /// Admits one call at `at` and records `outcome` for it at `at`.
    fn call(b: &Breaker, at: Instant, outcome: Outcome) {
        match b.admit(at) {
            Admission::Run(mut permit) => {
                permit.recorded = true;
                b.record(at, permit.trial, outcome);
            }
            Admission::Reject { .. } => panic!("rejected at {:?}", b.state()),
        }
    }

    #[test]
    fn opens_at_the_threshold_once_min_calls_are_reached() {
        let (b, gauge) = breaker(4);
        let t0 = Instant::now();
        // Three failures: a 100 % failure rate, but fewer than min_calls calls.
        for _ in 0..3 {
            call(&b, t0, Outcome::Failure);
        }
        assert_eq!(b.state(), State::Closed);
        assert_eq!(gauge.get(), 0);
        // The fourth call (a success) makes 3 of 4 failed >= 50 %: open.
        call(&b, t0, Outcome::Success);
        assert_eq!(b.state(), State::Open { until: t0 + 30 * S });
        assert_eq!(gauge.get(), 1);
    }

    #[test]
    fn stays_closed_below_the_rate() {
        let (b, _) = breaker(4);
        let t0 = Instant::now();
        for i in 0..40 {
            let outcome = if i % 3 == 2 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            call(&b, t0, outcome);
        }
        assert_eq!(b.state(), State::Closed, "a third failed, below one half");
    }

    #[test]
    fn old_outcomes_leave_the_window() {
        let (b, _) = breaker(4);
        let t0 = Instant::now();
        for _ in 0..3 {
            call(&b, t0, Outcome::Failure);
        }
        // 11 s later (window 10 s) those failures are forgotten: one more is 1 call of 4.
        call(&b, t0 + 11 * S, Outcome::Failure);
        assert_eq!(b.state(), State::Closed);
        for _ in 0..3 {
            call(&b, t0 + 12 * S, Outcome::Failure);
        }
        assert!(matches!(b.state(), State::Open { .. }));
    }

    #[test]
    fn stays_open_for_open_for_then_lets_one_trial_through_and_success_closes() {
        let (b, gauge) = breaker(2);
        let t0 = Instant::now();
        call(&b, t0, Outcome::Failure);
        call(&b, t0, Outcome::Failure);
        assert_eq!(b.rejects(t0 + S), Some(29 * S));
        match b.admit(t0 + 29 * S) {
            Admission::Reject { retry_in } => assert_eq!(retry_in, S),
            Admission::Run(_) => panic!("ran while open"),
        }
        // open_for is up: the next job is the trial, the others wait for it.
        let opened = t0 + 30 * S;
        assert_eq!(b.rejects(opened), None);
        let Admission::Run(trial) = b.admit(opened) else {
            panic!("no trial");
        };
        assert!(trial.is_trial());
        assert_eq!(gauge.get(), 2);
        assert_eq!(b.rejects(opened), Some(30 * S));
        assert!(matches!(b.admit(opened), Admission::Reject { .. }));
        trial.record(Outcome::Success);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(gauge.get(), 0);
        // Closed with an empty window: one failure does not reopen it.
        call(&b, opened, Outcome::Failure);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn a_failed_trial_reopens_and_an_unused_trial_is_given_back() {
        let (b, gauge) = breaker(1);
        let t0 = Instant::now();
        call(&b, t0, Outcome::Failure);
        let half = t0 + 30 * S;
        // A trial dropped without an outcome (fire already done) lets the next job try.
        let Admission::Run(unused) = b.admit(half) else {
            panic!("no trial");
        };
        drop(unused);
        assert_eq!(b.state(), State::HalfOpen { trial: false });
        let Admission::Run(mut trial) = b.admit(half) else {
            panic!("no second trial");
        };
        assert!(trial.is_trial());
        // The trial fails: open again for open_for from the failure.
        trial.recorded = true;
        b.record(half + S, true, Outcome::Failure);
        assert_eq!(
            b.state(),
            State::Open {
                until: half + 31 * S
            }
        );
        assert_eq!(gauge.get(), 1);
    }

    #[test]
    fn outcomes_of_calls_admitted_before_opening_are_ignored() {
        let (b, _) = breaker(2);
        let t0 = Instant::now();
        let Admission::Run(late) = b.admit(t0) else {
            panic!("closed breaker rejected");
        };
        call(&b, t0, Outcome::Failure);
        call(&b, t0, Outcome::Failure);
        let open = b.state();
        assert!(matches!(open, State::Open { .. }));
        late.record(Outcome::Success);
        assert_eq!(b.state(), open);
    }
}
