//! `apps.<name>.rate_limit`: a token bucket per app, in this worker process only (N replicas
//! allow N times the rate).
//!
//! A job reserves its token and sleeps until the token is due: reservations are served in
//! arrival order, so waiters cannot starve one another. The bucket starts full.

use std::{sync::Mutex, time::Duration};

use prometheus_client::metrics::counter::Counter;
use sked_core::config::AppRateLimitOptions;
use tokio::time::Instant;

/// Seconds spent waiting for tokens, as a float counter.
pub type WaitCounter = Counter<f64, std::sync::atomic::AtomicU64>;

/// One app's token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// (tokens, when they were counted). Negative tokens are reservations not yet due.
    bucket: Mutex<(f64, Instant)>,
    waited: WaitCounter,
}

impl RateLimiter {
    /// A full bucket of `burst` tokens refilled at `per_second`; time spent waiting is added
    /// to `waited`.
    pub fn new(per_second: f64, burst: u32, waited: WaitCounter) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            bucket: Mutex::new((f64::from(burst.max(1)), Instant::now())),
            waited,
        }
    }

    /// The limiter of an app's `rate_limit` table.
    pub fn from_options(options: &AppRateLimitOptions, waited: WaitCounter) -> Self {
        Self::new(options.per_second, options.effective_burst(), waited)
    }

    /// Takes one token at `now`: how long until it is ours (zero when one is available).
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, at) = *bucket;
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        let tokens = (tokens + elapsed * self.per_second).min(self.burst) - 1.0;
        *bucket = (tokens, now.max(at));
        if tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-tokens / self.per_second)
        }
    }

    /// Waits for a token. A token reserved by a wait that is dropped (shutdown) is lost.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
            self.waited.inc_by(wait.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole milliseconds, rounded (the bucket counts in floating point).
    fn ms(d: Duration) -> u128 {
        (d.as_secs_f64() * 1000.0).round() as u128
    }

    #[test]
    fn a_full_bucket_serves_burst_at_once_then_one_token_per_interval() {
        let limiter = RateLimiter::new(10.0, 3, WaitCounter::default());
        let t0 = Instant::now();
        let waits: Vec<u128> = (0..6).map(|_| ms(limiter.reserve(t0))).collect();
        // Three free tokens, then reservations 100 ms apart, in arrival order.
        assert_eq!(waits, [0, 0, 0, 100, 200, 300]);
        // 300 ms later every reservation is due and the bucket is empty again.
        assert_eq!(ms(limiter.reserve(t0 + Duration::from_millis(300))), 100);
    }

    #[test]
    fn the_bucket_refills_at_the_rate_up_to_burst_only() {
        let limiter = RateLimiter::new(4.0, 2, WaitCounter::default());
        let t0 = Instant::now();
        assert_eq!(ms(limiter.reserve(t0)), 0);
        assert_eq!(ms(limiter.reserve(t0)), 0);
        assert_eq!(ms(limiter.reserve(t0)), 250);
        // A long quiet period refills at most `burst` tokens.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(ms(limiter.reserve(later)), 0);
        assert_eq!(ms(limiter.reserve(later)), 0);
        assert_eq!(ms(limiter.reserve(later)), 250);
        // Half an interval later the next token is half as far.
        let limiter = RateLimiter::new(4.0, 1, WaitCounter::default());
        assert_eq!(ms(limiter.reserve(t0)), 0);
        assert_eq!(ms(limiter.reserve(t0 + Duration::from_millis(125))), 125);
    }

    #[test]
    fn fractional_rates_and_the_default_burst() {
        let options = AppRateLimitOptions {
            per_second: 2.5,
            burst: None,
        };
        assert_eq!(options.effective_burst(), 3);
        let slow = AppRateLimitOptions {
            per_second: 0.5,
            burst: None,
        };
        assert_eq!(slow.effective_burst(), 1);
        let limiter = RateLimiter::from_options(&slow, WaitCounter::default());
        let t0 = Instant::now();
        assert_eq!(ms(limiter.reserve(t0)), 0);
        assert_eq!(ms(limiter.reserve(t0)), 2000);
    }

    #[tokio::test]
    async fn acquire_sleeps_for_the_reservation_and_counts_the_wait() {
        let waited = WaitCounter::default();
        let limiter = RateLimiter::new(50.0, 1, waited.clone());
        let start = std::time::Instant::now();
        for _ in 0..6 {
            limiter.acquire().await;
        }
        let took = start.elapsed();
        // One free token, then five 20 ms intervals.
        assert!(took >= Duration::from_millis(95), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        // Each wait is shortened by the previous sleep's overshoot.
        assert!(waited.get() >= 0.05, "{}", waited.get());
    }
}
