//! The one retry helper of the cluster module: exponential backoff within a time budget, for
//! the moments the API server is expected to be briefly unable to answer (just created, or
//! discovery catching up with a new CRD).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

const FIRST_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// How a retried operation ended without success.
#[derive(Debug)]
pub(crate) enum RetryFailure<E> {
    /// The error was not worth retrying.
    Permanent(E),
    /// The budget ran out; the last error and how many attempts were made.
    Exhausted { last: E, attempts: u32 },
}

/// Runs `attempt` until it succeeds, fails with an error `is_transient` rejects, or `budget`
/// is spent. One attempt is always made.
pub(crate) async fn retry<T, E, F, Fut>(
    budget: Duration,
    is_transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, RetryFailure<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + budget;
    let mut delay = FIRST_DELAY;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let err = match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) if !is_transient(&err) => return Err(RetryFailure::Permanent(err)),
            Err(err) => err,
        };
        let now = Instant::now();
        if now + delay > deadline {
            return Err(RetryFailure::Exhausted {
                last: err,
                attempts,
            });
        }
        tracing::debug!(attempts, ?delay, "transient failure, retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let calls = Cell::new(0);
        let result: Result<u32, RetryFailure<&str>> = retry(
            Duration::from_secs(10),
            |_| true,
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { if n < 3 { Err("not yet") } else { Ok(n) } }
            },
        )
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test]
    async fn permanent_errors_stop_at_once() {
        let calls = Cell::new(0);
        let result: Result<(), _> = retry(
            Duration::from_secs(10),
            |e: &&str| *e != "denied",
            || {
                calls.set(calls.get() + 1);
                async { Err("denied") }
            },
        )
        .await;
        assert!(matches!(result, Err(RetryFailure::Permanent("denied"))));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn the_budget_bounds_the_attempts() {
        let result: Result<(), _> =
            retry(Duration::from_secs(1), |_| true, || async { Err("down") }).await;
        match result {
            Err(RetryFailure::Exhausted { last, attempts }) => {
                assert_eq!(last, "down");
                assert!((2..=5).contains(&attempts), "{attempts} attempts");
            }
            other => panic!("expected exhaustion, got {other:?}"),
        }
    }
}
