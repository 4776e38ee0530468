//! `sked`, the operator CLI: submit, inspect and cancel jobs through the REST API of the
//! ingest service, inspect and replay dead letters through the replayer's DLQ API, and create
//! the Kafka topics of an installation.
//!
//! `main.rs` only parses, calls [`execute`] and prints. Tests call [`run`] (argv in, stdout
//! out) or [`execute`] with a [`Cli`] from `Cli::try_parse_from`.

pub mod api;
mod args;
mod dlq;
mod error;
mod render;
mod request;
mod run;

pub use args::{
    Cli, Command, DEFAULT_API_URL, DEFAULT_REPLAYER_URL, DlqCommand, DlqFilter, JobCommand,
    ReplayArgs, SubmitArgs, TopicsCommand,
};
pub use error::{CliError, Error, exit};
pub use run::{execute, run};
