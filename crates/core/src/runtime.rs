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

/// A service's named tasks, supervised and joined on shutdown.
///
/// The first task that fails (returns `Err`) or panics is logged at once, turns the readiness
/// check `tasks` off and cancels the service's token, so every other task drains and the
/// process ends non-zero (`service_main`) within its drain deadline, for Kubernetes to restart
/// it. A task that returns `Ok` early ends quietly (a check that is turned off).
pub struct Tasks {
    tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    /// Tasks that stop only once every other task has ended (the admin endpoints, so that
    /// `/readyz` answers 503 through the whole drain).
    lingering: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    linger: tokio_util::sync::CancellationToken,
    cancel: tokio_util::sync::CancellationToken,
    readiness: crate::admin::Readiness,
}

impl Tasks {
    /// Tasks that cancel `cancel` and turn `readiness`'s `tasks` check off when one fails.
    pub fn supervised(
        cancel: tokio_util::sync::CancellationToken,
        readiness: crate::admin::Readiness,
    ) -> Self {
        readiness.set("tasks", true);
        Self {
            tasks: Vec::new(),
            lingering: Vec::new(),
            linger: tokio_util::sync::CancellationToken::new(),
            cancel,
            readiness,
        }
    }

    /// Spawns a named task under supervision.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let supervisor = self.supervise(name, task);
        self.tasks.push((name, supervisor));
    }

    /// Spawns a named task, under supervision, that gets a token cancelled only once every
    /// task of [`Tasks::spawn`] has ended.
    pub fn spawn_lingering<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let supervisor = self.supervise(name, task(self.linger.clone()));
        self.lingering.push((name, supervisor));
    }

    fn supervise<F>(
        &self,
        name: &'static str,
        task: F,
    ) -> tokio::task::JoinHandle<anyhow::Result<()>>
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let task = fault::wrap(name, task);
        let inner = tokio::spawn(task);
        let cancel = self.cancel.clone();
        let readiness = self.readiness.clone();
        tokio::spawn(async move {
            let failed = match inner.await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(err)) => err.context(format!("task {name} failed")),
                Err(join) => anyhow::anyhow!("task {name} panicked: {join}"),
            };
            if cancel.is_cancelled() {
                tracing::warn!(
                    task = name,
                    error = format!("{failed:#}"),
                    "task failed while draining"
                );
            } else {
                tracing::error!(
                    task = name,
                    error = format!("{failed:#}"),
                    "essential task failed: not ready, draining, exiting non-zero"
                );
            }
            readiness.set("tasks", false);
            cancel.cancel();
            Err(failed)
        })
    }

    /// Waits for every task, then stops and waits for the lingering ones; returns the first
    /// failure, naming its task.
    pub async fn join(self) -> anyhow::Result<()> {
        let mut first_error = None;
        let mut join_all =
            async |tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>| {
                for (name, task) in tasks {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            first_error.get_or_insert(err);
                        }
                        Err(join) => {
                            first_error
                                .get_or_insert(anyhow::anyhow!("task {name} panicked: {join}"));
                        }
                    }
                }
            };
        join_all(self.tasks).await;
        self.linger.cancel();
        join_all(self.lingering).await;
        first_error.map_or(Ok(()), Err)
    }
}

/// The fault hook of the tests (feature `fault-hooks`, which only the test crate turns on):
/// `SKED_TEST_FAIL_TASK=<task>` makes that task fail `SKED_TEST_FAIL_AFTER_MS` (default 2000)
/// after it starts, so that a test can see the supervision act. Without the feature, `wrap` is
/// the task itself.
mod fault {
    #[cfg(feature = "fault-hooks")]
    pub fn wrap<F>(
        name: &'static str,
        task: F,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        if std::env::var("SKED_TEST_FAIL_TASK").ok().as_deref() != Some(name) {
            return Box::pin(task);
        }
        let after = std::env::var("SKED_TEST_FAIL_AFTER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        Box::pin(async move {
            tokio::select! {
                result = task => result,
                _ = tokio::time::sleep(std::time::Duration::from_millis(after)) => {
                    Err(anyhow::anyhow!("fault hook: SKED_TEST_FAIL_TASK={name}"))
                }
            }
        })
    }

    #[cfg(not(feature = "fault-hooks"))]
    pub fn wrap<F>(_name: &'static str, task: F) -> F {
        task
    }
}

/// A crash point of the tests (feature `fault-hooks`): when `SKED_TEST_CRASH_AT` names `point`,
/// the process aborts here, as a kill -9 at the worst moment would end it (no drain, no
/// flush). Without the feature, it does nothing.
#[inline]
pub fn crash_point(point: &str) {
    #[cfg(feature = "fault-hooks")]
    if std::env::var("SKED_TEST_CRASH_AT").ok().as_deref() == Some(point) {
        eprintln!("fault hook: SKED_TEST_CRASH_AT={point}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "fault-hooks"))]
    let _ = point;
}

/// A slow point of the tests (feature `fault-hooks`): when `SKED_TEST_SLOW_AT` names `point`,
/// every pass waits `SKED_TEST_SLOW_MS` (default 50) in turn, one pass at a time across the
/// process, as a slow dependency would: work goes on, slowly. Without the feature, it does
/// nothing.
#[inline]
pub async fn slow_point(point: &str) {
    #[cfg(feature = "fault-hooks")]
    {
        // Read once: this sits on the scheduler's send path, and the benchmarks' builds
        // carry the feature.
        static SLOW: std::sync::OnceLock<Option<(String, u64)>> = std::sync::OnceLock::new();
        static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let slow = SLOW.get_or_init(|| {
            let at = std::env::var("SKED_TEST_SLOW_AT").ok()?;
            let ms = std::env::var("SKED_TEST_SLOW_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(50);
            Some((at, ms))
        });
        if let Some((at, ms)) = slow
            && at == point
        {
            let _turn = TURN.lock().await;
            tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
        }
    }
    #[cfg(not(feature = "fault-hooks"))]
    let _ = point;
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
