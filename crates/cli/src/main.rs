//! The `sked` binary: parse the command line, run it, print stdout or one `sked: <message>`
//! line on stderr, and exit with the documented code (see `sked --help`).

use std::{io::Write, process::ExitCode};

use clap::Parser;
use sked_cli::{Cli, exit};

#[tokio::main]
async fn main() -> ExitCode {
    // Usage errors, --help and --version are clap's: printed by clap, exit 2 or 0.
    let cli = Cli::parse();
    match sked_cli::execute(cli).await {
        Ok(stdout) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`sked ... | head`) is not worth a message.
            if out
                .write_all(stdout.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(exit::FAILURE);
            }
            ExitCode::from(exit::OK)
        }
        Err(err) => {
            eprintln!("{}", err.line());
            ExitCode::from(err.code)
        }
    }
}
