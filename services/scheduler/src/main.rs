//! `sked-scheduler`: parse flags, then [`sked_core::runtime::service_main`].

use std::process::ExitCode;

use clap::Parser;
use sked_core::{config, runtime};

/// Fires due jobs from the Redis due index onto Kafka.
#[derive(Parser)]
#[command(name = "sked-scheduler", version, about)]
struct Cli {
    #[command(flatten)]
    config: config::Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::service_main("sked-scheduler", &cli.config, sked_scheduler::run).await
}
