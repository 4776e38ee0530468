//! `sked-replayer`: parse flags, then [`sked_core::runtime::service_main`].

use std::process::ExitCode;

use clap::Parser;
use sked_core::{config, runtime};

/// Drains retries into the due index and serves the DLQ API (list, show, stats, replay).
#[derive(Parser)]
#[command(name = "sked-replayer", version, about)]
struct Cli {
    #[command(flatten)]
    config: config::Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::service_main("sked-replayer", &cli.config, sked_replayer::run).await
}
