//! The one backoff of the tool: capped exponential pauses with jitter, and a server's
//! `Retry-After` honoured. The cluster client's retries, connecting to a new cluster and Git's
//! push races all pause through it.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

/// A server's `Retry-After` is honoured up to this; a longer one is treated as this long, so
/// one answer cannot park a run for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Exponential pauses from `first`, doubling up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The pause before retry number `retry` (1 for the first retry). "Equal jitter": half of
    /// the exponential step is fixed and half random, so clients that failed together do not
    /// retry together, and no pause is shorter than half its step. A `Retry-After` the server
    /// sent is a floor (bounded by [`MAX_RETRY_AFTER`]).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let step = self.step(retry);
        let jittered = step / 2 + step.mul_f64(random_fraction() / 2.0);
        match retry_after {
            Some(server) => jittered.max(server.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    /// The un-jittered pause before retry number `retry`: `first * 2^(retry-1)`, at most `cap`.
    pub fn step(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }
}

/// A value in [0, 1): std's per-instance random hash keys are seeded from the OS, which is
/// all jitter needs (no cryptographic quality, no extra crate).
fn random_fraction() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        first: Duration::from_millis(200),
        cap: Duration::from_secs(5),
    };

    #[test]
    fn steps_double_up_to_the_cap() {
        let steps: Vec<_> = (1..=7).map(|n| BACKOFF.step(n).as_millis()).collect();
        assert_eq!(steps, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(BACKOFF.step(u32::MAX), BACKOFF.cap, "no overflow");
    }

    #[test]
    fn jitter_stays_within_half_a_step_and_the_step() {
        for retry in 1..=8 {
            let step = BACKOFF.step(retry);
            let delays: Vec<_> = (0..200).map(|_| BACKOFF.delay(retry, None)).collect();
            assert!(
                delays.iter().all(|d| *d >= step / 2 && *d <= step),
                "retry {retry}: {delays:?} outside [{:?}, {step:?}]",
                step / 2
            );
            let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
            assert!(distinct.len() > 100, "retry {retry}: jittered, not fixed");
        }
    }

    #[test]
    fn the_cap_bounds_every_delay() {
        assert!((0..1000).all(|_| BACKOFF.delay(40, None) <= BACKOFF.cap));
    }

    #[test]
    fn retry_after_is_a_floor_bounded_by_its_own_cap() {
        let server = Duration::from_secs(3);
        assert!((0..100).all(|_| BACKOFF.delay(1, Some(server)) == server));
        // Longer than the jittered step stays as the server said; shorter ones lose to it.
        let short = Duration::from_millis(1);
        assert!((0..100).all(|_| BACKOFF.delay(6, Some(short)) >= BACKOFF.step(6) / 2));
        assert_eq!(
            BACKOFF.delay(1, Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }
}
