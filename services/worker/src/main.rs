//! `sked-worker`: parse flags, then [`sked_core::runtime::service_main`].

use std::process::ExitCode;

use clap::Parser;
use sked_core::{config, runtime};

/// Runs fired jobs from the due topics with retries and a dead-letter topic.
#[derive(Parser)]
#[command(name = "sked-worker", version, about)]
struct Cli {
    #[command(flatten)]
    config: config::Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::service_main("sked-worker", &cli.config, sked_worker::run).await
}
