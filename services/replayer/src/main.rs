//! `sked-replayer`: parse flags, load config, init logging, run until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use sked_core::{config, runtime, telemetry};

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
    let config = match cli.config.load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sked-replayer: {err}");
            return ExitCode::from(runtime::EXIT_CONFIG as u8);
        }
    };
    if cli.config.dump_config {
        print!("{}", config.dump());
        return ExitCode::SUCCESS;
    }
    telemetry::init(&config.log);
    match sked_replayer::run(config, runtime::shutdown_on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "sked-replayer failed");
            ExitCode::FAILURE
        }
    }
}
