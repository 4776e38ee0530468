//! The handler API: what a job looks like to a handler ([`Job`]), the [`Handler`] trait that
//! custom Rust handlers implement, and how failures are classified ([`HandlerError`]).

use std::{collections::BTreeMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sked_core::envelope::Envelope;

/// A boxed, sendable future: what [`Handler::handle`] returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One execution of a fired job, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job id (also the Kafka key of the fire).
    pub job_id: String,
    /// The fire id: the same for every attempt and redelivery of one fire. Handlers that are
    /// idempotent per fire id make execution effectively-once.
    pub fire_id: String,
    /// The job's app.
    pub app: String,
    /// Execution attempt, 1 for the first.
    pub attempt: u32,
    /// When the fire was due.
    pub due_at: DateTime<Utc>,
    /// The payload as submitted: raw JSON text, unchanged.
    pub payload: Arc<str>,
    /// The job's labels.
    pub labels: BTreeMap<String, String>,
    /// W3C trace context of the fire.
    pub traceparent: String,
    /// How long this execution may take; the worker abandons it after that.
    pub timeout: Duration,
}

impl Job {
    /// A job from a fired envelope.
    pub(crate) fn new(
        envelope: &Envelope,
        attempt: u32,
        traceparent: String,
        timeout: Duration,
    ) -> Self {
        Self {
            job_id: envelope.job_id.clone(),
            fire_id: envelope.fire_id.clone(),
            app: envelope.app.clone(),
            attempt,
            due_at: envelope.due_at,
            payload: Arc::from(envelope.payload.get()),
            labels: envelope.labels.clone(),
            traceparent,
            timeout,
        }
    }

    /// The payload bytes.
    pub fn payload_bytes(&self) -> &[u8] {
        self.payload.as_bytes()
    }
}

/// Why a handler failed. The classification decides *whether* the job is retried; the retry
/// policy decides *when*.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// May succeed later (timeouts, 5xx, 429, connection errors): retried while attempts last.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help (bad request, unknown recipient): dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl HandlerError {
    /// A transient failure.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient(message.into())
    }

    /// A permanent failure.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }
}

/// Runs the jobs of one app. Implement it for your own type, or pass a closure
/// `Fn(Job) -> impl Future<Output = Result<(), HandlerError>>`.
///
/// ```
/// use sked_worker::{BoxFuture, Handler, HandlerError, Job};
///
/// struct Sms;
///
/// impl Handler for Sms {
///     fn handle(&self, job: Job) -> BoxFuture<Result<(), HandlerError>> {
///         Box::pin(async move {
///             if job.payload.is_empty() {
///                 return Err(HandlerError::permanent("empty payload"));
///             }
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Runs one execution of `job`. The worker bounds it by the job's timeout.
    fn handle(&self, job: Job) -> BoxFuture<Result<(), HandlerError>>;
}

impl<F, Fut> Handler for F
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn handle(&self, job: Job) -> BoxFuture<Result<(), HandlerError>> {
        Box::pin(self(job))
    }
}

/// Custom handlers by name (`apps.<name>.handler = "<name>"`, or the app's own name when the
/// app is not configured).
#[derive(Clone, Default)]
pub struct Handlers {
    by_name: BTreeMap<String, Arc<dyn Handler>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Handlers {
    /// No custom handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `name`, replacing any earlier one.
    pub fn register(&mut self, name: impl Into<String>, handler: impl Handler) -> &mut Self {
        self.by_name.insert(name.into(), Arc::new(handler));
        self
    }

    /// Registers `handler` under `name`, builder style.
    pub fn with(mut self, name: impl Into<String>, handler: impl Handler) -> Self {
        self.register(name, handler);
        self
    }

    /// The handler named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Handler>> {
        self.by_name.get(name).cloned()
    }

    /// Registered names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
