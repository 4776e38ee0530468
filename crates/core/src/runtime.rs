//! The shutdown tree shared by every service: one root [`CancellationToken`] cancelled by the
//! first SIGTERM or SIGINT; a second signal exits at once.

use tokio_util::sync::CancellationToken;

/// Exit code for configuration errors (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

/// A root token cancelled on the first SIGTERM/SIGINT. A second signal exits with 130.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let root = token.clone();
    tokio::spawn(async move {
        wait_signal().await;
        tracing::info!("shutdown requested, draining (send the signal again to exit at once)");
        root.cancel();
        wait_signal().await;
        tracing::warn!("second signal, exiting without draining");
        std::process::exit(130);
    });
    token
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Exponential backoff for reconnect loops: 100 ms doubling up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: std::time::Duration,
    max: std::time::Duration,
}

impl Backoff {
    /// Starts at 100 ms, caps at `max`.
    pub fn new(max: std::time::Duration) -> Self {
        Self {
            next: std::time::Duration::from_millis(100),
            max,
        }
    }

    /// The delay to wait now; the next one doubles.
    pub fn next_delay(&mut self) -> std::time::Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to the first delay after a success.
    pub fn reset(&mut self) {
        self.next = std::time::Duration::from_millis(100);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500));
        let seq: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seq, vec![100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }
}

/// A service's named tasks, joined on shutdown.
#[derive(Default)]
pub struct Tasks {
    tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

impl Tasks {
    /// Spawns a named task.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks.push((name, tokio::spawn(task)));
    }

    /// Waits for every task; returns the first failure, naming its task.
    pub async fn join(self) -> anyhow::Result<()> {
        let mut first_error = None;
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(task = name, error = format!("{err:#}"), "task failed");
                    first_error.get_or_insert(err.context(name));
                }
                Err(join) => {
                    first_error.get_or_insert(anyhow::anyhow!("task {name} panicked: {join}"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The whole `main` of a service binary, after flag parsing: loads the configuration (exit
/// 64 naming every problem), prints it for `--dump-config`, initialises logging and OTLP span
/// export, runs `run` until SIGTERM/SIGINT, and flushes the spans last.
pub async fn service_main<F, Fut>(
    name: &str,
    args: &crate::config::Args,
    run: F,
) -> std::process::ExitCode
where
    F: FnOnce(crate::config::Config, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    use std::process::ExitCode;
    let config = match args.load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{name}: {err}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    if args.dump_config {
        print!("{}", config.dump());
        return ExitCode::SUCCESS;
    }
    let telemetry = crate::telemetry::init(name, &config.log);
    let code = match run(config, shutdown_on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<crate::service::StoppedBeforeReady>() => {
            tracing::info!("{name} stopped before redis answered; nothing to drain");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "{name} failed");
            ExitCode::FAILURE
        }
    };
    // Last: the spans of the drain are exported too.
    telemetry.shutdown().await;
    code
}

/// A token cancelled `grace` after `cancel` is: the drain deadline, past which work in
/// flight is abandoned (and nothing of it committed).
pub fn deadline_after(cancel: &CancellationToken, grace: std::time::Duration) -> CancellationToken {
    let hard_stop = CancellationToken::new();
    let (cancel, stop) = (cancel.clone(), hard_stop.clone());
    tokio::spawn(async move {
        cancel.cancelled().await;
        tokio::time::sleep(grace).await;
        stop.cancel();
    });
    hard_stop
}

/// Flushes a producer's queue (up to 10 s) on a blocking thread: the last step of a drain.
pub async fn flush(producer: rdkafka::producer::FutureProducer) -> anyhow::Result<()> {
    use rdkafka::producer::Producer as _;
    tokio::task::spawn_blocking(move || producer.flush(std::time::Duration::from_secs(10)))
        .await??;
    Ok(())
}
