//! `sked-ingest`: parse flags, then [`sked_core::runtime::service_main`].

use std::process::ExitCode;

use clap::Parser;
use sked_core::{config, runtime};

/// Consumes schedule requests from Kafka (and REST) into the Redis job store.
#[derive(Parser)]
#[command(name = "sked-ingest", version, about)]
struct Cli {
    #[command(flatten)]
    config: config::Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::service_main("sked-ingest", &cli.config, sked_ingest::run).await
}
