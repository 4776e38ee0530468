//! The one way a service produces a record and awaits Kafka's acknowledgement.
//!
//! A full producer queue (`RDKafkaErrorCode::QueueFull`) is back-pressure, never a failure:
//! [`enqueue`] waits for room (librdkafka drains the queue at the broker's pace) for as long as
//! it takes, until its token is cancelled. Only what Kafka itself answers (a delivery error, a
//! record too large, a delivery timeout) is an [`Error::Kafka`], for the caller to classify.
//!
//! [`enqueue`] and [`Delivery::acked`] are separate so that a caller producing many records
//! (replay, the scheduler's fires) enqueues them one after another, in order, and awaits their
//! acknowledgements together.

use std::time::Duration;

use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    message::ToBytes,
    producer::{DeliveryFuture, FutureProducer, FutureRecord},
};
use tokio_util::sync::CancellationToken;

/// How long to wait between two attempts to enqueue into a full queue.
const QUEUE_FULL_STEP: Duration = Duration::from_millis(5);

/// Why a record was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token was cancelled before Kafka acknowledged the record (it may still land).
    #[error("stopped before kafka acknowledged the record")]
    Stopped,
    /// Kafka refused or did not acknowledge the record.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

impl Error {
    /// The Kafka error, if Kafka answered one.
    pub fn kafka(&self) -> Option<&KafkaError> {
        match self {
            Self::Stopped => None,
            Self::Kafka(err) => Some(err),
        }
    }

    /// This error as a [`KafkaError`] (`Canceled` when stopped), for callers that speak it.
    pub fn into_kafka(self) -> KafkaError {
        match self {
            Self::Stopped => KafkaError::Canceled,
            Self::Kafka(err) => err,
        }
    }
}

/// A record in the producer's queue, waiting for Kafka's acknowledgement.
#[must_use = "a delivery not awaited is fire-and-forget"]
pub struct Delivery(DeliveryFuture);

impl Delivery {
    /// Resolves when Kafka acknowledged the record, or with the error it answered. Drop it
    /// to stop waiting (the record may still land).
    pub async fn acked(self) -> Result<(), Error> {
        match self.0.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((err, _))) => Err(Error::Kafka(err)),
            // The producer dropped the delivery (it is being torn down).
            Err(_) => Err(Error::Kafka(KafkaError::Canceled)),
        }
    }
}

/// Puts `record` into the producer's queue, waiting while the queue is full, until `cancel`.
pub async fn enqueue<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
    cancel: &CancellationToken,
) -> Result<Delivery, Error>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(Delivery(delivery)),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(Error::Stopped),
                    () = tokio::time::sleep(QUEUE_FULL_STEP) => {}
                }
            }
            Err((err, _)) => return Err(Error::Kafka(err)),
        }
    }
}

/// Produces `record` and awaits Kafka's acknowledgement ([`enqueue`], then
/// [`Delivery::acked`]), until `cancel`.
pub async fn produce<K, P>(
    producer: &FutureProducer,
    record: FutureRecord<'_, K, P>,
    cancel: &CancellationToken,
) -> Result<(), Error>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    let delivery = enqueue(producer, record, cancel).await?;
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Error::Stopped),
        acked = delivery.acked() => acked,
    }
}
