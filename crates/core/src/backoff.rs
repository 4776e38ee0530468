//! The one retry helper of the services' IO loops: a jittered exponential [`Backoff`], a
//! cancel-aware [`Backoff::sleep`] and [`retry`], which runs an operation until it succeeds,
//! fails permanently or its token is cancelled.
//!
//! The jitter (each delay drawn in ±25 % of its nominal value, never past the cap) keeps many
//! replicas that lost Redis or Kafka at the same instant from retrying in lockstep. How long
//! a *job* waits before its next attempt is a different policy: [`crate::retry`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The first nominal delay of every [`Backoff`].
const FIRST: Duration = Duration::from_millis(100);

/// Exponential backoff with jitter for reconnect and retry loops: nominal delays of 100 ms
/// doubling up to `max`, each drawn in ±25 % of its nominal value and never above `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at 100 ms, caps at `max`.
    pub fn new(max: Duration) -> Self {
        Self { next: FIRST, max }
    }

    /// The delay to wait now (jittered); the next nominal delay doubles.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        jittered(nominal, unit()).min(self.max)
    }

    /// Back to the first delay after a success.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }

    /// Waits the next delay; `false` (at once) when `cancel` is cancelled first.
    pub async fn sleep(&mut self, cancel: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            biased;
            () = cancel.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

/// How one attempt of [`retry`] failed. The operation classifies (and logs, and counts) its
/// own errors; the helper only decides when to try again.
#[derive(Debug)]
pub enum Failure<E> {
    /// Worth another attempt after a backoff.
    Transient(E),
    /// Not worth another attempt: [`retry`] returns it.
    Permanent(E),
}

/// Why [`retry`] gave up.
#[derive(Debug)]
pub enum Stop<E> {
    /// The token was cancelled (during an attempt, which is abandoned, or a backoff).
    Cancelled,
    /// The operation failed permanently.
    Permanent(E),
}

/// Runs `op` until it succeeds, fails permanently, or `cancel` is cancelled, waiting
/// `backoff`'s next delay between attempts. An attempt still running when `cancel` fires is
/// dropped. `backoff` is not reset on success: callers that keep one across calls reset it.
pub async fn retry<T, E, F, Fut>(
    cancel: &CancellationToken,
    backoff: &mut Backoff,
    mut op: F,
) -> Result<T, Stop<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure<E>>>,
{
    loop {
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Stop::Cancelled),
            result = op() => result,
        };
        match result {
            Ok(value) => return Ok(value),
            Err(Failure::Permanent(err)) => return Err(Stop::Permanent(err)),
            Err(Failure::Transient(_)) => {
                if !backoff.sleep(cancel).await {
                    return Err(Stop::Cancelled);
                }
            }
        }
    }
}

/// `nominal` scaled by a factor in `[0.75, 1.25)` chosen by `unit` in `[0, 1)`.
fn jittered(nominal: Duration, unit: f64) -> Duration {
    nominal.mul_f64(0.75 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A number in `[0, 1)`, different per call: a hash of a process-wide counter and the clock
/// (no cryptographic quality needed, only spread across replicas and calls).
fn unit() -> f64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let calls = CALLS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let mut seed = [0u8; 16];
    seed[..8].copy_from_slice(&calls.to_le_bytes());
    seed[8..].copy_from_slice(&nanos.to_le_bytes());
    (xxhash_rust::xxh3::xxh3_64(&seed) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn within(d: Duration, nominal_ms: u64, cap_ms: u64) -> bool {
        let ms = d.as_secs_f64() * 1000.0;
        ms >= nominal_ms as f64 * 0.75 - 1e-6 && ms <= (nominal_ms as f64 * 1.25).min(cap_ms as f64)
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap_and_resets() {
        for _ in 0..200 {
            let mut b = Backoff::new(Duration::from_millis(500));
            for nominal in [100, 200, 400, 500, 500, 500] {
                let d = b.next_delay();
                assert!(within(d, nominal, 500), "{d:?} for nominal {nominal} ms");
            }
            b.reset();
            assert!(within(b.next_delay(), 100, 500));
        }
    }

    #[test]
    fn backoff_never_exceeds_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(150));
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_millis(150));
        }
    }

    #[test]
    fn jitter_stays_within_a_quarter_of_the_nominal_delay() {
        let nominal = Duration::from_secs(4);
        assert_eq!(jittered(nominal, 0.0), Duration::from_secs(3));
        assert!(jittered(nominal, 0.999_999) < Duration::from_secs(5));
        for _ in 0..1000 {
            let u = unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    // The workspace's tokio has no `test-util` (paused time): these tests need no clock. A
    // cancelled token must end the wait at once, and a 1 ms cap keeps the retries instant.

    #[tokio::test]
    async fn sleep_returns_false_at_once_when_cancelled() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut b = Backoff::new(Duration::from_secs(3600));
        for _ in 0..20 {
            b.next_delay();
        }
        let started = std::time::Instant::now();
        assert!(!b.sleep(&cancel).await);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            Backoff::new(Duration::from_millis(1))
                .sleep(&CancellationToken::new())
                .await
        );
    }

    #[tokio::test]
    async fn retry_tries_again_after_transient_failures() {
        let cancel = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let got = retry(
            &cancel,
            &mut Backoff::new(Duration::from_millis(1)),
            || async {
                match calls.fetch_add(1, Ordering::Relaxed) {
                    0..=2 => Err(Failure::Transient("down")),
                    n => Ok(n),
                }
            },
        )
        .await;
        assert!(matches!(got, Ok(3)));
    }

    #[tokio::test]
    async fn retry_stops_on_a_permanent_failure() {
        let cancel = CancellationToken::new();
        let got: Result<(), _> = retry(
            &cancel,
            &mut Backoff::new(Duration::from_millis(1)),
            || async { Err(Failure::Permanent("bad")) },
        )
        .await;
        assert!(matches!(got, Err(Stop::Permanent("bad"))));
    }

    #[tokio::test]
    async fn retry_returns_at_once_when_cancelled() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let started = std::time::Instant::now();
        let got: Result<(), _> = retry(
            &cancel,
            &mut Backoff::new(Duration::from_secs(3600)),
            || std::future::ready(Err(Failure::Transient(()))),
        )
        .await;
        assert!(matches!(got, Err(Stop::Cancelled)));
        // An attempt that never ends is abandoned too.
        let got: Result<(), Stop<()>> = retry(
            &cancel,
            &mut Backoff::new(Duration::from_secs(1)),
            std::future::pending,
        )
        .await;
        assert!(matches!(got, Err(Stop::Cancelled)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn retry_stops_when_cancelled_during_its_backoff() {
        let cancel = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let got: Result<(), Stop<()>> = retry(
            &cancel,
            &mut Backoff::new(Duration::from_secs(3600)),
            || {
                // The second attempt never comes: the token is cancelled during the wait.
                assert_eq!(calls.fetch_add(1, Ordering::Relaxed), 0);
                cancel.cancel();
                std::future::ready(Err(Failure::Transient(())))
            },
        )
        .await;
        assert!(matches!(got, Err(Stop::Cancelled)));
    }
}
