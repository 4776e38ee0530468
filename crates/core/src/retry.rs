//! When to retry: the backoff of a [`RetryPolicy`]. Whether to retry is the caller's
//! classification (transient or permanent); this module only says when.

use std::time::Duration;

use crate::request::{Backoff, RetryPolicy};

/// The delay before attempt `next_attempt` (2 = the first retry). `unit` is a uniform random
/// number in `[0, 1)` that spreads the delay by ±`jitter`. Never more than `max_ms`.
pub fn delay(policy: &RetryPolicy, next_attempt: u32, unit: f64) -> Duration {
    let base = match policy.backoff {
        Backoff::Fixed => policy.initial_ms as f64,
        Backoff::Exponential => {
            let exp = next_attempt.saturating_sub(2).min(62);
            (policy.initial_ms as f64) * 2f64.powi(exp as i32)
        }
    };
    let jitter = policy.jitter.clamp(0.0, 1.0);
    let spread = 1.0 + jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    let ms = (base * spread).clamp(0.0, policy.max_ms as f64);
    Duration::from_millis(ms as u64)
}

/// True when `attempt` executions used up the policy.
pub fn exhausted(policy: &RetryPolicy, attempt: u32) -> bool {
    attempt >= policy.max_attempts.get()
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use proptest::prelude::*;

    use super::*;

    fn policy(initial_ms: u64, max_ms: u64, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: NonZeroU32::new(5).unwrap(),
            backoff: Backoff::Exponential,
            initial_ms,
            max_ms,
            jitter,
        }
    }

    #[test]
    fn exponential_doubles_from_initial_up_to_max() {
        let p = policy(1000, 5000, 0.0);
        let d: Vec<u128> = (2..=6).map(|a| delay(&p, a, 0.5).as_millis()).collect();
        assert_eq!(d, vec![1000, 2000, 4000, 5000, 5000]);
        assert!(exhausted(&p, 5));
        assert!(!exhausted(&p, 4));
    }

    #[test]
    fn fixed_stays_at_initial() {
        let mut p = policy(700, 5000, 0.0);
        p.backoff = Backoff::Fixed;
        assert_eq!(delay(&p, 9, 0.3).as_millis(), 700);
    }

    proptest! {
        #[test]
        fn backoff_never_exceeds_its_cap(initial in 0u64..100_000, extra in 0u64..1_000_000, jitter in 0.0f64..=1.0, attempt in 0u32..200, unit in 0.0f64..1.0) {
            let p = policy(initial, initial + extra, jitter);
            let d = delay(&p, attempt, unit).as_millis() as u64;
            prop_assert!(d <= p.max_ms);
        }

        #[test]
        fn jitter_stays_within_its_fraction(initial in 1u64..10_000, jitter in 0.0f64..=1.0, unit in 0.0f64..1.0) {
            let p = policy(initial, u64::MAX / 4, jitter);
            let d = delay(&p, 2, unit).as_millis() as f64;
            prop_assert!(d >= (initial as f64) * (1.0 - jitter) - 1.0);
            prop_assert!(d <= (initial as f64) * (1.0 + jitter) + 1.0);
        }
    }
}
