//! Dead-letter records as built: the original bytes and key, every original header, and the
//! header set of ARCHITECTURE.md. [`super::fit`] cuts one that is too large to produce.

use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

use crate::kafka::headers as h;

/// Where the failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Stage {
    /// The request could not be scheduled.
    Ingest,
    /// The job failed when run.
    Execute,
}

/// What is known about a failure, beyond the record itself.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// Where.
    pub stage: Stage,
    /// Why, machine-readable: a `sked-reason` value (ingest's [`crate::reason::Reason`], or
    /// the worker's execution reasons).
    pub reason: &'a str,
    /// Why, for people.
    pub message: &'a str,
    /// When.
    pub at: DateTime<Utc>,
    /// Executions so far (0 for ingest).
    pub attempts: u32,
    /// The job's app, when known.
    pub app: Option<&'a str>,
    /// The job id, when known.
    pub job_id: Option<&'a str>,
    /// The job's tenant, when known (`sked-tenant`: the DLQ API shows a letter only to
    /// callers acting for its tenant).
    pub tenant: Option<&'a str>,
}

/// An owned copy of a dead letter, ready to produce.
#[derive(Debug, Clone)]
pub struct Record {
    /// Original key.
    pub key: Option<Vec<u8>>,
    /// Original value, unchanged (cut by [`super::fit`] when the letter is too large).
    pub payload: Option<Vec<u8>>,
    /// Original headers followed by sked's.
    pub headers: OwnedHeaders,
}

/// Builds the dead letter of `msg` (a borrowed or a detached message). `sked-app` and
/// `sked-job-id` are added only when the original record does not carry them already (fired
/// records do).
pub fn record<M: Message>(msg: &M, failure: &Failure<'_>) -> Record {
    let mut headers = OwnedHeaders::new();
    let original: Vec<(String, Option<Vec<u8>>)> = msg
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|x| (x.key.to_owned(), x.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    for (key, value) in &original {
        headers = headers.insert(Header {
            key,
            value: value.as_deref(),
        });
    }
    let carried = |name: &str| original.iter().any(|(k, _)| k == name);
    let partition = msg.partition().to_string();
    let offset = msg.offset().to_string();
    let millis = failure.at.timestamp_millis().to_string();
    let iso = failure.at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let attempts = failure.attempts.to_string();
    let stage: &str = failure.stage.into();
    let mut add = |key: &str, value: &str| {
        headers = std::mem::take(&mut headers).insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    };
    add(h::ORIGINAL_TOPIC, msg.topic());
    add(h::ORIGINAL_PARTITION, &partition);
    add(h::ORIGINAL_OFFSET, &offset);
    add(h::ERROR_MESSAGE, failure.message);
    add(h::ERROR_TIMESTAMP, &millis);
    add(h::FAILED_AT, &iso);
    add(h::ERROR_REASON, failure.reason);
    add(h::SKED_STAGE, stage);
    add(h::SKED_REASON, failure.reason);
    add(h::SKED_ATTEMPTS, &attempts);
    if let Some(app) = failure.app
        && !carried(h::SKED_APP)
    {
        add(h::SKED_APP, app);
    }
    if let Some(id) = failure.job_id
        && !carried(h::SKED_JOB_ID)
    {
        add(h::SKED_JOB_ID, id);
    }
    if let Some(tenant) = failure.tenant
        && !carried(h::SKED_TENANT)
    {
        add(h::SKED_TENANT, tenant);
    }
    Record {
        key: msg.key().map(<[u8]>::to_vec),
        payload: msg.payload().map(<[u8]>::to_vec),
        headers,
    }
}
