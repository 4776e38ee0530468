//! Confirmation of destructive commands (`dlq replay`, `ops create` of cancel, reschedule,
//! purge_finished): a `y` typed at a terminal, or `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::{Error, exit};

/// Asks `question` on stderr and reads the answer from stdin; `Ok` only for `y` / `yes`.
///
/// When stdin is not a terminal nothing is asked and the answer is no: the error says
/// `refusing to <what> without --yes (stdin is not a terminal)`, exit
/// [`exit::NOT_CONFIRMED`].
pub fn ask(question: &str, what: &str) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(refused(what));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::new(
            exit::NOT_CONFIRMED,
            format!("{what}: not confirmed"),
        ))
    }
}

/// The error of a destructive command run without `--yes` where nobody can answer.
pub fn refused(what: &str) -> Error {
    Error::new(
        exit::NOT_CONFIRMED,
        format!("refusing to {what} without --yes (stdin is not a terminal)"),
    )
}
