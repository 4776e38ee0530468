//! Dead letters: how one is built ([`record`]), cut to fit the size limit ([`fit`]), produced
//! ([`Sender`], services only) and, for the batch consumers, parked while Kafka does not
//! acknowledge it ([`Backlog`], services only). Every service dead-letters through these.

#[cfg(feature = "server")]
mod backlog;
pub mod fit;
mod record;
#[cfg(feature = "server")]
mod sender;

#[cfg(feature = "server")]
pub use backlog::{Backlog, MAX_PARKED, MAX_PARKED_BYTES, Origin};
pub use record::{Failure, Record, Stage, record};
#[cfg(feature = "server")]
pub use sender::{Counters, Sender, Sent};
