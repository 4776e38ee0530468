//! The worker's consumer: records of the due topics into concurrent, per-key ordered
//! executions of the [`Executor`], on the shared concurrent pipeline
//! ([`sked_core::kafka::keyed`], whose doc comment states the protocol). The drain ends at
//! `worker.drain_timeout` after the first SIGTERM.

use rdkafka::message::OwnedMessage;
use sked_core::kafka::keyed::{Execute, Keyed};

use crate::execute::Executor;

/// The worker consumer's context: rebalance logs and commit-error counts.
pub use sked_core::kafka::Context;
/// Settings of the consumer loop.
pub use sked_core::kafka::keyed::Settings;

/// The running consumer.
pub type WorkerConsumer = Keyed<Executor>;

impl Execute for Executor {
    fn execute(&self, msg: &OwnedMessage) -> impl Future<Output = bool> + Send {
        Executor::execute(self, msg)
    }
}
