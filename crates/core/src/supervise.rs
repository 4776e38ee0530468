//! A service's named tasks, supervised, and joined on shutdown within its drain deadline.
//!
//! Every task has a name and one of two policies:
//! - **essential** ([`Tasks::spawn`]): the first one that fails (returns `Err`) or panics is
//!   logged at once, turns the readiness check `tasks` off and cancels the service's token,
//!   so every other task drains and the process ends non-zero
//!   ([`crate::runtime::service_main`]), for Kubernetes to restart it. One that returns `Ok`
//!   early ends quietly (a check that is turned off, a listener that is not configured).
//! - **lingering** ([`Tasks::spawn_lingering`]): stopped only once every essential task has
//!   ended: the admin endpoints, so that `/readyz` answers 503 through the whole drain. Their
//!   failures are supervised the same way.
//!
//! [`Tasks::join`] waits for the essential tasks, then for the lingering ones. A task still
//! running [`OVERRUN`] past the drain deadline (the service's `*.drain_timeout` after the
//! token was cancelled) is aborted and named in the error, so the process ends non-zero within
//! its drain deadline even when a task does not stop by itself. The tasks live in tokio
//! [`JoinSet`]s: dropping [`Tasks`] (a start that failed half-way) aborts them, so no task
//! outlives its service.

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::FutureExt as _;
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::readiness::Readiness;

/// How long past the drain deadline a task may still run before it is aborted: the loops
/// abandon their work at the deadline themselves, then commit and return; this is their room.
pub const OVERRUN: Duration = Duration::from_secs(5);

/// How long the lingering tasks have to stop once every essential task has ended.
const LINGER_STOP: Duration = Duration::from_secs(5);

/// A set of named tasks under one policy.
#[derive(Default)]
struct Set {
    tasks: JoinSet<()>,
    names: HashMap<Id, &'static str>,
}

impl Set {
    fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits until every task has ended, or until `deadline`: then aborts the rest and
    /// returns their names.
    async fn join(&mut self, deadline: impl Future<Output = ()>) -> Vec<&'static str> {
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next_with_id() => match next {
                    None => return Vec::new(),
                    Some(Ok((id, ()))) => {
                        self.names.remove(&id);
                    }
                    // Cancelled: only `abort_all` below cancels, and panics are caught inside.
                    Some(Err(err)) => {
                        self.names.remove(&err.id());
                    }
                },
                () = &mut deadline => {
                    let mut left: Vec<_> = self.names.drain().map(|(_, name)| name).collect();
                    left.sort_unstable();
                    self.tasks.abort_all();
                    while self.tasks.join_next().await.is_some() {}
                    return left;
                }
            }
        }
    }
}

/// A service's named tasks (see the module docs).
pub struct Tasks {
    essential: Set,
    lingering: Set,
    /// Cancelled once every essential task has ended: the lingering tasks' stop.
    linger: CancellationToken,
    cancel: CancellationToken,
    readiness: Readiness,
    /// The first failure, naming its task.
    failure: Arc<Mutex<Option<anyhow::Error>>>,
    /// The drain deadline, counted from `cancel`.
    grace: Duration,
}

impl Tasks {
    /// Tasks that cancel `cancel` and turn `readiness`'s `tasks` check off when one fails,
    /// and that are aborted if they still run [`OVERRUN`] past `grace` after `cancel`.
    pub fn supervised(cancel: CancellationToken, readiness: Readiness, grace: Duration) -> Self {
        readiness.set("tasks", true);
        Self {
            essential: Set::default(),
            lingering: Set::default(),
            linger: CancellationToken::new(),
            cancel,
            readiness,
            failure: Arc::default(),
            grace,
        }
    }

    /// Spawns a named essential task.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let supervised = self.supervise(name, task);
        self.essential.spawn(name, supervised);
    }

    /// Spawns a named lingering task: it gets a token cancelled only once every essential
    /// task has ended.
    pub fn spawn_lingering<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let supervised = self.supervise(name, task(self.linger.clone()));
        self.lingering.spawn(name, supervised);
    }

    /// The task, wrapped so that its failure or panic acts at once, from inside the task.
    fn supervise<F>(&self, name: &'static str, task: F) -> impl Future<Output = ()> + use<F>
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let task = fault::wrap(name, task);
        let (cancel, readiness, failure) = (
            self.cancel.clone(),
            self.readiness.clone(),
            self.failure.clone(),
        );
        async move {
            let failed = match AssertUnwindSafe(task).catch_unwind().await {
                Ok(Ok(())) => return,
                Ok(Err(err)) => err.context(format!("task {name} failed")),
                Err(panic) => anyhow::anyhow!("task {name} panicked: {}", panic_message(&*panic)),
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
            record(&failure, failed);
            cancel.cancel();
        }
    }

    /// Waits for every essential task, then stops and waits for the lingering ones (see the
    /// module docs); returns the first failure, naming its task.
    pub async fn join(mut self) -> anyhow::Result<()> {
        let (cancel, grace) = (self.cancel.clone(), self.grace);
        let deadline = async move {
            cancel.cancelled().await;
            tokio::time::sleep(grace + OVERRUN).await;
        };
        let overran = self.essential.join(deadline).await;
        if !overran.is_empty() {
            self.overran(&overran, grace + OVERRUN);
        }
        self.linger.cancel();
        let overran = self.lingering.join(tokio::time::sleep(LINGER_STOP)).await;
        if !overran.is_empty() {
            self.overran(&overran, LINGER_STOP);
        }
        let failure = self.failure.lock().ok().and_then(|mut f| f.take());
        failure.map_or(Ok(()), Err)
    }

    fn overran(&self, names: &[&'static str], after: Duration) {
        let names = names.join(", ");
        tracing::error!(
            tasks = names,
            "tasks still running {after:?} after shutdown began: aborted"
        );
        self.readiness.set("tasks", false);
        record(
            &self.failure,
            anyhow::anyhow!("tasks {names} did not stop within {after:?} of shutdown: aborted"),
        );
    }
}

fn record(failure: &Mutex<Option<anyhow::Error>>, err: anyhow::Error) {
    if let Ok(mut first) = failure.lock() {
        first.get_or_insert(err);
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(grace: Duration) -> (Tasks, CancellationToken, Readiness) {
        let cancel = CancellationToken::new();
        let readiness = Readiness::new(&[]);
        (
            Tasks::supervised(cancel.clone(), readiness.clone(), grace),
            cancel,
            readiness,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_task_turns_readiness_off_cancels_the_rest_and_is_named() {
        let (mut tasks, cancel, readiness) = tasks(Duration::from_secs(10));
        let stop = cancel.clone();
        tasks.spawn("steady", async move {
            stop.cancelled().await;
            Ok(())
        });
        tasks.spawn("broken", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            anyhow::bail!("boom")
        });
        assert!(readiness.is_ready());
        let err = tasks.join().await.expect_err("the failure is returned");
        assert!(cancel.is_cancelled(), "the failure cancelled the rest");
        assert!(!readiness.is_ready(), "readiness turned off");
        assert_eq!(format!("{err:#}"), "task broken failed: boom");
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_is_a_failure_with_its_message() {
        let (mut tasks, cancel, readiness) = tasks(Duration::from_secs(10));
        tasks.spawn("panics", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            panic!("at the disco");
        });
        let err = tasks.join().await.expect_err("the panic is returned");
        assert!(cancel.is_cancelled());
        assert!(!readiness.is_ready());
        assert_eq!(format!("{err:#}"), "task panics panicked: at the disco");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_does_not_drain_is_aborted_past_the_deadline() {
        let (mut tasks, cancel, readiness) = tasks(Duration::from_secs(10));
        tasks.spawn("stuck", std::future::pending::<anyhow::Result<()>>());
        tasks.spawn("quick", async { Ok(()) });
        cancel.cancel();
        let began = tokio::time::Instant::now();
        let err = tasks.join().await.expect_err("the overrun is a failure");
        assert_eq!(began.elapsed(), Duration::from_secs(10) + OVERRUN);
        assert!(format!("{err:#}").starts_with("tasks stuck did not stop within 15s"));
        assert!(!readiness.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn lingering_tasks_stop_after_the_essential_ones_and_a_clean_drain_is_ok() {
        let (mut tasks, cancel, readiness) = tasks(Duration::from_secs(10));
        let order = Arc::new(Mutex::new(Vec::new()));
        let (o, stop) = (order.clone(), cancel.clone());
        tasks.spawn("loop", async move {
            stop.cancelled().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            o.lock().expect("lock").push("loop");
            Ok(())
        });
        let o = order.clone();
        tasks.spawn_lingering("admin", |linger| async move {
            linger.cancelled().await;
            o.lock().expect("lock").push("admin");
            Ok(())
        });
        cancel.cancel();
        tasks.join().await.expect("a clean drain");
        assert_eq!(*order.lock().expect("lock"), ["loop", "admin"]);
        assert!(readiness.is_ready(), "a clean drain leaves `tasks` on");
    }
}
