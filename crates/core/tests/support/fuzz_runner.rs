//! The runner of the fuzz properties (tests/fuzz_*.rs, store/record_fuzz.rs, the replayer's
//! letter_fuzz.rs, which include this file by path): proptest's `TestRunner` with the case
//! count taken from `PROPTEST_CASES` (else each property's modest default), a tally of the
//! outcomes, and one line per property on stderr, which scripts/fuzz.sh collects:
//!
//! ```text
//! fuzz request/arbitrary_bytes: 1000 cases in 0.4s: invalid_json=612 invalid_utf8=301 ...
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

/// What one case came to: a short label (`ok`, a rejection reason), or a failed property.
pub type Outcome = Result<String, TestCaseError>;

/// The runner's configuration: `PROPTEST_CASES` cases if set, else `default_cases`; the
/// seeds of failures kept beside `source_file` (`<name>.proptest-regressions`, committed, and
/// replayed first on every run).
pub fn config(source_file: &'static str, default_cases: u32) -> Config {
    let mut config = Config {
        source_file: Some(source_file),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    // `Config::default()` has read `PROPTEST_CASES` already; `with_cases` would override it.
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

/// Runs `property` on values of `strategy` and panics with the minimal failing input, if any.
/// A panic inside the property is a failure too (proptest catches and shrinks it).
pub fn check<S>(
    source_file: &'static str,
    name: &str,
    default_cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Outcome,
) where
    S: Strategy,
    S::Value: Debug,
{
    let tally: RefCell<BTreeMap<String, u64>> = RefCell::new(BTreeMap::new());
    let started = Instant::now();
    let mut runner = TestRunner::new(config(source_file, default_cases));
    let result = runner.run(&strategy, |value| {
        let label = property(value)?;
        *tally.borrow_mut().entry(label).or_default() += 1;
        Ok(())
    });
    report(name, &tally.into_inner(), started.elapsed());
    if let Err(err) = result {
        panic!("{name}: {err}");
    }
}

fn report(name: &str, tally: &BTreeMap<String, u64>, took: Duration) {
    let cases: u64 = tally.values().sum();
    let parts: Vec<String> = tally.iter().map(|(k, n)| format!("{k}={n}")).collect();
    eprintln!(
        "fuzz {name}: {cases} cases in {:.1}s: {}",
        took.as_secs_f64(),
        parts.join(" ")
    );
}
