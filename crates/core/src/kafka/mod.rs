//! Kafka adapters: client configuration, header names, dead-letter records and topic bootstrap.

pub mod batch;
mod client;
pub mod context;
pub mod dlq;
pub mod headers;
pub mod stall;
pub mod topics;

pub use client::{consumer_config, producer_config};
pub use context::Context;
