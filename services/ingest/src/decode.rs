//! Turns one Kafka record into what ingest does with it: store a job, cancel one, or
//! dead-letter the record with a reason.

use chrono::{DateTime, Utc};
use rdkafka::message::{BorrowedMessage, Message};
use sked_core::{
    config::IngestOptions,
    job::JobId,
    reason::Reason,
    request::{self, JobSpec, Limits, Origin},
    store::Op,
};

/// What to do with one record.
#[derive(Debug)]
pub enum Decision {
    /// A valid request or cancel.
    Apply(Op),
    /// Invalid input: goes to the DLQ, never retried.
    Reject(request::Error),
}

/// The reference instant of a record: its Kafka timestamp (so a redelivery resolves `delay`
/// the same way), or now when it has none.
pub fn record_time(msg: &BorrowedMessage<'_>, now: DateTime<Utc>) -> DateTime<Utc> {
    msg.timestamp()
        .to_millis()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(now)
}

/// Decodes one record. A record without a value (tombstone) cancels the job named by its key.
/// `tenants` gives the tenant of a request that names none, by topic.
pub fn decide(
    msg: &BorrowedMessage<'_>,
    limits: &Limits,
    tenants: &IngestOptions,
    now: DateTime<Utc>,
) -> Decision {
    let Some(payload) = msg.payload() else {
        return match msg.key().map(std::str::from_utf8) {
            Some(Ok(key)) => match JobId::parse(key) {
                Ok(id) => Decision::Apply(Op::Cancel(id)),
                Err(e) => Decision::Reject(request::Error::new(
                    Reason::InvalidId,
                    format!("tombstone key is not a job id: {e}"),
                )),
            },
            Some(Err(_)) => Decision::Reject(request::Error::new(
                Reason::InvalidId,
                "tombstone key is not utf-8",
            )),
            None => Decision::Reject(request::Error::new(
                Reason::MissingField,
                "tombstone without a key: nothing to cancel",
            )),
        };
    };
    let origin = Origin {
        now: record_time(msg, now),
        fallback_id: Some(JobId::derived(msg.topic(), msg.partition(), msg.offset())),
        tenant: tenants.tenant_of_topic(msg.topic()),
    };
    match request::parse(payload, limits, &origin) {
        Ok(spec) => Decision::Apply(Op::insert(spec, payload)),
        Err(e) => Decision::Reject(e),
    }
}

/// The job id and app of a spec, for DLQ headers and logs.
pub fn describe(spec: &JobSpec) -> (&str, &str, Option<&str>) {
    (spec.id.as_str(), spec.app.as_str(), spec.tenant.as_deref())
}
