//! sked-scheduler: fires due jobs from the Redis due index onto Kafka, on time and once, from
//! any number of replicas.

mod firing;
mod lateness;
mod metrics;
mod plan;
mod service;

pub use service::{Running, run, start};
