//! Example: a custom handler for the `sms` app, as a team would write it for its own worker
//! (the Infinite-Scheduler seed's `registerApp("sms", handler)`).
//!
//! The payload is `{"phone": "+8801712345678", "text": "Your order shipped"}`. A payload that
//! is not that shape can never succeed, so it is a permanent error (straight to the DLQ); a
//! gateway failure is transient (retried with backoff). The handler is idempotent per fire id:
//! the gateway is given the fire id as its deduplication key.

use serde::Deserialize;
use sked_worker::{BoxFuture, Handler, HandlerError, Job};

/// The `sms` payload.
#[derive(Debug, Deserialize)]
pub struct Sms {
    /// Recipient, E.164.
    pub phone: String,
    /// Message text.
    pub text: String,
}

/// Sends SMS through a gateway (here: logs them).
#[derive(Debug, Clone, Default)]
pub struct SmsHandler;

impl SmsHandler {
    /// Parses the payload; a bad one is permanent.
    pub fn parse(job: &Job) -> Result<Sms, HandlerError> {
        let sms: Sms = serde_json::from_str(&job.payload)
            .map_err(|e| HandlerError::permanent(format!("not an sms payload: {e}")))?;
        if !sms.phone.starts_with('+') {
            return Err(HandlerError::permanent("phone is not in E.164 form"));
        }
        Ok(sms)
    }
}

impl Handler for SmsHandler {
    fn handle(&self, job: Job) -> BoxFuture<Result<(), HandlerError>> {
        Box::pin(async move {
            let sms = Self::parse(&job)?;
            // A real handler calls its gateway here, with `job.fire_id` as the dedupe key,
            // and maps gateway errors: 5xx / timeouts → transient, rejections → permanent.
            tracing::info!(
                sked.job.id = %job.job_id,
                sked.fire.id = %job.fire_id,
                attempt = job.attempt,
                phone = %sms.phone,
                chars = sms.text.chars().count(),
                "sms sent"
            );
            Ok(())
        })
    }
}
