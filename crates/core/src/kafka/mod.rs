//! Kafka adapters: client configuration, record sizes, header names, producing ([`produce`]),
//! dead letters and topic bootstrap.

pub mod batch;
mod client;
pub mod context;
pub mod dlq;
pub mod headers;
#[cfg(feature = "server")]
mod intake;
#[cfg(feature = "server")]
pub mod keyed;
pub mod offsets;
#[cfg(feature = "server")]
pub mod pipeline;
#[cfg(feature = "server")]
pub mod produce;
pub mod size;
pub mod stall;
pub mod topics;

pub use client::{consumer_config, producer_config};
pub use context::Context;
