//! The chaos suite: ingest, two schedulers, two workers and a replayer, as processes, against
//! a private broker, a private Redis and an HTTP app, while jobs stream in and services are
//! killed, Redis is restarted and the broker is paused; then a report of what was lost, early,
//! duplicated or misidentified, and how fast everything recovered. Run by `tests/tests/chaos.rs`
//! (2 minutes) and `scripts/chaos.sh` (`sked-bench chaos`, any length).

mod app;
mod evidence;
mod judge;
mod run;
mod stack;

pub use judge::{Kill, Outage, Report};
pub use run::{Options, run};
