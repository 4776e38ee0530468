//! `sked-console`: parse flags, then [`sked_core::runtime::service_main`].

use std::process::ExitCode;

use clap::Parser;
use sked_core::{config, runtime};

/// Serves the web console: every page and action goes through the public REST and DLQ APIs
/// with the signed-in user's token.
#[derive(Parser)]
#[command(name = "sked-console", version, about)]
struct Cli {
    #[command(flatten)]
    config: config::Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::service_main("sked-console", &cli.config, sked_console::run).await
}
