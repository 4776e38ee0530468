//! `sked`, the operator CLI: submit, list, describe, pause, trigger and cancel jobs, pause apps
//! and tenants and run bulk operations through the REST API of the ingest service (bodies are
//! `sked_api` types), inspect and replay dead letters through the replayer's DLQ API, and
//! create the Kafka topics of an installation; preview and explain cron expressions offline
//! (`sked cron`).
//!
//! `main.rs` only parses, calls [`execute`] and prints. Tests call [`run`] (argv in, stdout
//! out) or [`execute`] with a [`Cli`] from `Cli::try_parse_from`.

pub mod api;
mod args;
mod auth;
mod confirm;
mod cron;
mod describe;
mod dlq;
mod error;
mod manage;
mod ops;
mod render;
mod request;
mod run;
mod table;

pub use args::{
    AuthCommand, BackfillArgs, Cli, Command, CronCommand, CronPreviewArgs, DEFAULT_API_URL,
    DEFAULT_REPLAYER_URL, DlqCommand, DlqFilter, JobCommand, ListArgs, OpsCommand, OpsCreateArgs,
    ReplayArgs, RescheduleArgs, ScopeCommand, SubmitArgs, TopicsCommand, TriggerArgs, UpdateArgs,
};
pub use error::{CliError, Error, exit};
pub use run::{execute, run};
