//! Kafka adapters: client configuration, record sizes, header names, dead letters and topic
//! bootstrap.

pub mod batch;
mod client;
pub mod context;
pub mod dlq;
pub mod headers;
pub mod size;
pub mod stall;
pub mod topics;

pub use client::{consumer_config, producer_config};
pub use context::Context;
