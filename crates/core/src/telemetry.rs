//! Logging setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as text or
//! JSON per `log.format`.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogFormat, LogOptions};

/// Installs the global subscriber. Call once, from `main`.
pub fn init(options: &LogOptions) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match options.format {
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .init(),
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .init(),
    }
}
