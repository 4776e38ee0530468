//! sked-ingest: schedule requests from the ingest topic and the REST API into the Redis job
//! store, invalid ones to the DLQ with a reason.

mod cluster;
mod consumer;
mod decode;
mod http;
mod metrics;
mod ops;
mod quota;
mod service;

pub use service::{Running, run, start};
