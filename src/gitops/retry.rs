//! The one retry helper of the gitops module: a bounded number of attempts with the tool's
//! backoff ([`crate::backoff`]) between them, for operations that lose a race (a push
//! overtaken by another commit). Blocking, like the git2 calls it wraps.

use std::time::Duration;

/// How many attempts, and the pauses between them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    pub max_attempts: u32,
    pub pauses: crate::backoff::Backoff,
}

impl Backoff {
    pub fn attempts(max_attempts: u32) -> Backoff {
        Backoff {
            max_attempts: max_attempts.max(1),
            pauses: crate::backoff::Backoff {
                first: Duration::from_millis(250),
                cap: Duration::from_secs(4),
            },
        }
    }
}

/// How a retried operation ended without success.
#[derive(Debug)]
pub(super) enum RetryFailure<E> {
    /// The error was not worth retrying.
    Permanent(E),
    /// Every attempt failed with a retryable error; how many were made.
    Exhausted { attempts: u32 },
}

/// Runs `attempt(n)` (n from 1) until it succeeds, fails with an error `is_retryable` rejects,
/// or `backoff.max_attempts` attempts are spent.
pub(super) fn retry<T, E>(
    backoff: Backoff,
    is_retryable: impl Fn(&E) -> bool,
    mut attempt: impl FnMut(u32) -> Result<T, E>,
) -> Result<T, RetryFailure<E>> {
    let mut number = 1;
    loop {
        match attempt(number) {
            Ok(value) => return Ok(value),
            Err(err) if !is_retryable(&err) => return Err(RetryFailure::Permanent(err)),
            Err(_) if number >= backoff.max_attempts => {
                return Err(RetryFailure::Exhausted { attempts: number });
            }
            Err(_) => {
                let delay = backoff.pauses.delay(number, None);
                tracing::debug!(attempt = number, ?delay, "retrying after a lost race");
                std::thread::sleep(delay);
                number += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(max_attempts: u32) -> Backoff {
        Backoff {
            max_attempts,
            pauses: crate::backoff::Backoff {
                first: Duration::from_millis(1),
                cap: Duration::from_millis(2),
            },
        }
    }

    #[test]
    fn retries_until_success() {
        let result = retry(
            quick(5),
            |_: &&str| true,
            |n| if n < 3 { Err("race") } else { Ok(n) },
        );
        assert_eq!(result.unwrap(), 3);
    }

    #[test]
    fn stops_at_the_attempt_bound() {
        let mut calls = 0;
        let result: Result<(), _> = retry(
            quick(3),
            |_: &&str| true,
            |_| {
                calls += 1;
                Err("race")
            },
        );
        assert!(matches!(
            result,
            Err(RetryFailure::Exhausted { attempts: 3 })
        ));
        assert_eq!(calls, 3);
    }

    #[test]
    fn permanent_errors_end_at_once() {
        let mut calls = 0;
        let result: Result<(), _> = retry(
            quick(3),
            |e: &&str| *e == "race",
            |_| {
                calls += 1;
                Err("denied")
            },
        );
        assert!(matches!(result, Err(RetryFailure::Permanent("denied"))));
        assert_eq!(calls, 1);
    }
}
