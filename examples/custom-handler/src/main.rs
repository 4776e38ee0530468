//! `sked-example-custom-handler`: a worker that runs the `sms` app's jobs with [`SmsHandler`]
//! and every other configured app with the built-in handlers.
//!
//! ```text
//! cargo run -p sked-example-custom-handler
//! ```
//! The `sms` app needs no configuration: a registered handler also serves the app of its own
//! name. To give it a timeout or retry policy, configure it with `apps.sms.handler = "sms"`.

use std::process::ExitCode;

use clap::Parser;
use sked_core::{config, runtime, telemetry};
use sked_example_custom_handler::SmsHandler;
use sked_worker::Worker;

/// A sked worker with a custom `sms` handler.
#[derive(Parser)]
#[command(name = "sked-example-custom-handler", version, about)]
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
            eprintln!("sked-example-custom-handler: {err}");
            return ExitCode::from(runtime::EXIT_CONFIG as u8);
        }
    };
    if cli.config.dump_config {
        print!("{}", config.dump());
        return ExitCode::SUCCESS;
    }
    let telemetry = telemetry::init("sked-example-custom-handler", &config.log);
    let worker = Worker::builder(config).handler("sms", SmsHandler).build();
    let code = match worker.run(runtime::shutdown_on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "worker failed");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    code
}
