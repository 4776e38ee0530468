//! sked-core: what two or more sked services share.
//!
//! Domain types ([`job`], [`request`], [`reason`]), schedule math ([`schedule`]), the Redis
//! job store ([`store`]), Kafka adapters ([`kafka`]), configuration loading ([`config`]) and the
//! runtime pieces every service uses ([`runtime`], [`supervise`], [`readiness`], [`backoff`],
//! [`admin`], [`service`], [`telemetry`]).

#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
pub mod api_errors;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod backoff;
#[cfg(feature = "kafka")]
pub mod config;
pub mod envelope;
pub mod job;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "server")]
pub mod readiness;
pub mod reason;
pub mod request;
pub mod retry;
#[cfg(feature = "server")]
pub mod runtime;
pub mod schedule;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod supervise;
#[cfg(feature = "server")]
pub mod telemetry;
#[cfg(feature = "server")]
pub mod trace;
