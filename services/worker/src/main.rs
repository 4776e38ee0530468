//! `sked-worker`: parse flags, load config, init logging, run until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use sked_core::{config, runtime, telemetry};

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
    let config = match cli.config.load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sked-worker: {err}");
            return ExitCode::from(runtime::EXIT_CONFIG as u8);
        }
    };
    if cli.config.dump_config {
        print!("{}", config.dump());
        return ExitCode::SUCCESS;
    }
    telemetry::init(&config.log);
    match sked_worker::run(config, runtime::shutdown_on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "sked-worker failed");
            ExitCode::FAILURE
        }
    }
}
