//! sked-worker: runs fired jobs. Consumes the due topics, runs each job's handler (`http`,
//! `kafka` or a custom Rust [`Handler`]) at most `worker.max_in_flight` at once and in order per
//! job, records run state in Redis so a redelivered fire that already succeeded is not run
//! again, and hands failures to the retry topic or the DLQ.

mod breaker;
mod consumer;
mod execute;
mod forward;
mod handler;
mod http;
mod limits;
mod metrics;
mod rate_limit;
mod records;
mod service;

pub use handler::{BoxFuture, Handler, HandlerError, Handlers, Job};
pub use http::{URL_LABEL, classify_status};
pub use records::Reason;
pub use service::{Builder, Running, Worker, due_topics, run, start, start_with};
