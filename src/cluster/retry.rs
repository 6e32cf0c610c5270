//! The one retry helper of the cluster module, over the tool's backoff ([`crate::backoff`]):
//! [`retry`] runs an operation again within a time budget, for the moments the API server is
//! expected to be briefly unable to answer (just created, or discovery catching up with a new
//! CRD); [`TransientRetry`] is the policy of the client's retry layer, under every request the
//! tool sends, for the answers a healthy API server gives under load (429 with `Retry-After`,
//! 500, 502, 503, 504).

use std::future::Future;
use std::time::Duration;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use kube::client::Body;
use tokio::time::Instant;

use crate::backoff::Backoff;

const BUDGET_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(200),
    cap: Duration::from_secs(5),
};

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
    let mut attempts = 0;
    loop {
        attempts += 1;
        let err = match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) if !is_transient(&err) => return Err(RetryFailure::Permanent(err)),
            Err(err) => err,
        };
        let delay = BUDGET_BACKOFF.delay(attempts, None);
        if Instant::now() + delay > deadline {
            return Err(RetryFailure::Exhausted {
                last: err,
                attempts,
            });
        }
        tracing::debug!(attempts, ?delay, "transient failure, retrying");
        tokio::time::sleep(delay).await;
    }
}

/// Watches object `name` until `cond` holds, like kube-runtime's `wait::await_condition`,
/// which ends at the first watch error. Here a watch that ends is resumed from its last
/// resourceVersion, one whose history expired (410 Gone) is listed again, and transient
/// answers (429, 5xx, a dropped connection, a request the server left unanswered) are retried
/// after kube-runtime's default backoff; only a refusal (another 4xx) ends the wait. The
/// caller bounds it with its timeout.
pub(crate) async fn await_condition<K>(
    api: kube::Api<K>,
    name: &str,
    cond: impl kube::runtime::wait::Condition<K>,
) -> Result<Option<K>, kube::runtime::wait::Error>
where
    K: Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + kube::Resource + 'static,
{
    use futures::StreamExt as _;
    use kube::runtime::WatchStreamExt as _;

    let mut events =
        std::pin::pin!(kube::runtime::watcher::watch_object(api, name).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(object) if cond.matches_object(object.as_ref()) => return Ok(object),
            Ok(_) => {}
            Err(err) if refused(&err) => return Err(kube::runtime::wait::Error::ProbeFailed(err)),
            Err(err) => tracing::debug!(name, error = %err, "watch interrupted, resuming"),
        }
    }
    unreachable!("a watch with backoff never ends")
}

/// A watch error no retry can mend: the server refused the request itself.
fn refused(err: &kube::runtime::watcher::Error) -> bool {
    use kube::runtime::watcher::Error;
    let code = match err {
        Error::InitialListFailed(kube::Error::Api(status))
        | Error::WatchStartFailed(kube::Error::Api(status))
        | Error::WatchFailed(kube::Error::Api(status)) => status.code,
        Error::WatchError(status) => status.code,
        _ => return false,
    };
    (400..500).contains(&code) && !matches!(code, 408 | 410 | 429)
}

/// Attempts of one request, the first included: at a 20 % fault rate, ten failures in a row
/// happen once in ten million requests; the pauses between them add up to about half a minute.
pub(crate) const MAX_ATTEMPTS: u32 = 10;
const REQUEST_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(200),
    cap: Duration::from_secs(5),
};

/// The retry policy of the cluster client (a `tower::retry::Policy`, one per request). A 429
/// is retried for every request: the server refused it before doing anything. 500, 502, 503
/// and 504 only for idempotent requests (reads, server-side apply and merge patches, replace,
/// delete: the callers treat a 404 after a delete as done), never a create (POST) that may
/// have happened. Transport errors are left to the callers: connecting has its own budget,
/// and a request that got no answer within the client's timeout is an error to report, not
/// to repeat.
#[derive(Debug, Clone, Default)]
pub(crate) struct TransientRetry {
    retries: u32,
}

impl<B, E> tower::retry::Policy<Request<Body>, Response<B>, E> for TransientRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut Request<Body>,
        result: &mut Result<Response<B>, E>,
    ) -> Option<Self::Future> {
        let response = result.as_ref().ok()?;
        let delay = self.next_delay(request, response.status(), response.headers())?;
        tracing::debug!(
            method = %request.method(),
            path = request.uri().path(),
            status = response.status().as_u16(),
            retry = self.retries,
            ?delay,
            "transient API answer, retrying"
        );
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        // A streamed body cannot be sent twice: such a request is not retried.
        let body = request.body().try_clone()?;
        let mut copy = Request::new(body);
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

impl TransientRetry {
    /// The pause before sending `request` again after `status`, or `None` to give up.
    fn next_delay<B>(
        &mut self,
        request: &Request<B>,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Duration> {
        let transient = status == StatusCode::TOO_MANY_REQUESTS
            || (idempotent(request) && matches!(status.as_u16(), 500 | 502 | 503 | 504));
        if !transient || self.retries + 1 >= MAX_ATTEMPTS {
            return None;
        }
        self.retries += 1;
        Some(REQUEST_BACKOFF.delay(self.retries, retry_after(headers)))
    }
}

/// Sending it twice has the effect of sending it once.
fn idempotent<B>(request: &Request<B>) -> bool {
    match *request.method() {
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE => true,
        // Server-side apply and merge patches set values; a JSON patch may add to a list.
        Method::PATCH => request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_none_or(|kind| kind != "application/json-patch+json"),
        _ => false,
    }
}

/// `Retry-After` in seconds, as the API server sends it (the HTTP-date form is not used by
/// Kubernetes).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn request(method: Method, content_type: Option<&str>) -> Request<()> {
        let mut builder = Request::builder()
            .method(method)
            .uri("/api/v1/namespaces/x/configmaps/y");
        if let Some(kind) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, kind);
        }
        builder.body(()).unwrap()
    }

    fn throttled(seconds: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, seconds.parse().unwrap());
        headers
    }

    #[test]
    fn server_errors_are_retried_only_for_idempotent_requests() {
        let apply = request(Method::PATCH, Some("application/apply-patch+yaml"));
        let create = request(Method::POST, Some("application/json"));
        let json_patch = request(Method::PATCH, Some("application/json-patch+json"));
        let none = HeaderMap::new();
        for status in [500, 502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            for idempotent in [
                &apply,
                &request(Method::GET, None),
                &request(Method::DELETE, None),
            ] {
                assert!(
                    TransientRetry::default()
                        .next_delay(idempotent, status, &none)
                        .is_some()
                );
            }
            assert!(
                TransientRetry::default()
                    .next_delay(&create, status, &none)
                    .is_none(),
                "never re-POST a create"
            );
            assert!(
                TransientRetry::default()
                    .next_delay(&json_patch, status, &none)
                    .is_none()
            );
        }
        // A 429 was refused before anything happened: even a create is sent again.
        assert!(
            TransientRetry::default()
                .next_delay(&create, StatusCode::TOO_MANY_REQUESTS, &none)
                .is_some()
        );
        for status in [400, 401, 403, 404, 409, 422, 501] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                TransientRetry::default()
                    .next_delay(&apply, status, &none)
                    .is_none(),
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_and_attempts_are_bounded() {
        let get = request(Method::GET, None);
        let mut policy = TransientRetry::default();
        let delays: Vec<_> = std::iter::from_fn(|| {
            policy.next_delay(&get, StatusCode::TOO_MANY_REQUESTS, &throttled("2"))
        })
        .collect();
        assert_eq!(
            delays.len() as u32,
            MAX_ATTEMPTS - 1,
            "retries after the first attempt"
        );
        assert!(
            delays.iter().all(|d| *d >= Duration::from_secs(2)),
            "{delays:?}"
        );
        assert!(
            delays.iter().all(|d| *d <= REQUEST_BACKOFF.cap),
            "{delays:?}"
        );
        assert_eq!(retry_after(&throttled(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(&throttled("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }

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
