//! sked-replayer: drains the retry topic back into the Redis due index at each retry's time,
//! and serves the dead-letter topic to operators: list, show, stats and replay over HTTP (the
//! `sked dlq` commands).
//!
//! Modules: [`retry`] (the retry drain), `scan` (reading a topic snapshot), `letter` (a dead
//! letter and its filters), `index` (the DLQ index in Redis that the API reads), `replay`
//! (crash-safe replays kept in Redis), `http` (the API),
//! `metrics`, `service` (wiring).

mod http;
mod index;
mod letter;
#[cfg(test)]
mod letter_fuzz;
mod metrics;
pub mod replay;
pub mod retry;
mod scan;
mod service;

pub use service::{Running, run, start};
