//! sked-core: what two or more sked services share.
//!
//! Domain types ([`job`], [`request`], [`reason`]), schedule math ([`schedule`]), the Redis
//! job store ([`store`]), Kafka adapters ([`kafka`]), configuration loading ([`config`]) and the
//! runtime pieces every service uses ([`runtime`], [`admin`], [`service`], [`telemetry`]).

pub mod admin;
pub mod config;
pub mod envelope;
pub mod job;
pub mod kafka;
pub mod reason;
pub mod request;
pub mod retry;
pub mod runtime;
pub mod schedule;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod trace;
