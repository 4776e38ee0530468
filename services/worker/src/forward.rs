//! The built-in `kafka` handler: "deliver this message at that time". Produces the raw payload
//! to `apps.<name>.target_topic`, keyed by the job id (or the label `apps.<name>.key_label`),
//! with the fire's sked headers.

use std::sync::Arc;

use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use sked_core::{
    config::AppOptions,
    kafka::{headers as h, produce},
};
use tokio_util::sync::CancellationToken;

use crate::handler::{BoxFuture, Handler, HandlerError, Job};

/// The `kafka` handler of one app.
#[derive(Clone)]
pub struct KafkaHandler {
    producer: FutureProducer,
    topic: Arc<str>,
    key_label: Option<Arc<str>>,
}

impl KafkaHandler {
    /// The handler of app `name`; `None` when `apps.<name>.target_topic` is missing.
    pub fn new(app: &AppOptions, producer: FutureProducer) -> Option<Self> {
        Some(Self {
            producer,
            topic: Arc::from(app.target_topic.as_deref()?),
            key_label: app.key_label.as_deref().map(Arc::from),
        })
    }
}

impl Handler for KafkaHandler {
    fn handle(&self, job: Job) -> BoxFuture<Result<(), HandlerError>> {
        let this = self.clone();
        Box::pin(async move {
            let key = this
                .key_label
                .as_deref()
                .and_then(|label| job.labels.get(label))
                .unwrap_or(&job.job_id);
            let attempt = job.attempt.to_string();
            let headers = OwnedHeaders::new_with_capacity(5)
                .insert(Header {
                    key: h::SKED_JOB_ID,
                    value: Some(job.job_id.as_bytes()),
                })
                .insert(Header {
                    key: h::SKED_FIRE_ID,
                    value: Some(job.fire_id.as_bytes()),
                })
                .insert(Header {
                    key: h::SKED_APP,
                    value: Some(job.app.as_bytes()),
                })
                .insert(Header {
                    key: h::SKED_ATTEMPT,
                    value: Some(attempt.as_bytes()),
                })
                .insert(Header {
                    key: h::TRACEPARENT,
                    value: Some(job.traceparent.as_bytes()),
                });
            let record = FutureRecord::to(&this.topic)
                .key(key.as_bytes())
                .payload(job.payload.as_bytes())
                .headers(headers);
            // A full queue waits (back-pressure); the handler's timeout bounds the whole call.
            produce::produce(&this.producer, record, &CancellationToken::new())
                .await
                .map_err(|err| {
                    HandlerError::transient(format!("produce to {} failed: {err}", this.topic))
                })
        })
    }
}
