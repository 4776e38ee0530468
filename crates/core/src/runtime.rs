//! The shutdown tree shared by every service: one root [`CancellationToken`] cancelled by the
//! first SIGTERM or SIGINT; a second signal exits at once.

use tokio_util::sync::CancellationToken;

/// Exit code for configuration errors (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

/// The service was told to stop (SIGTERM) while it still waited for Redis: nothing had
/// started, so there is nothing to drain; [`service_main`] exits 0.
#[derive(Debug, thiserror::Error)]
#[error("stopped before redis answered")]
pub struct StoppedBeforeReady;

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
        Err(err) if err.is::<StoppedBeforeReady>() => {
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
