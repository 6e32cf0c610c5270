//! The `cluster_exec` credential plugin, run as kubectl runs it (`KUBERNETES_EXEC_INFO`, no
//! prompt) and its token kept until shortly before it expires. kube's own exec auth renews a
//! token once it is within 60 s of its expiry, on every request: a plugin whose tokens live
//! less than a minute ran once per API request. Here a token is renewed a minute before it
//! expires, or after three quarters of its life when that comes later.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, header::AUTHORIZATION};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use tower::{BoxError, Layer, Service};

use crate::contract::ExecCredential;

/// Renewal starts this long before a long-lived token expires (kubectl's margin too).
const MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ExecAuthError {
    #[error("the credential plugin `{command}` failed: {detail}")]
    Failed { command: String, detail: String },
    #[error("the credential plugin `{command}` printed no ExecCredential with a token: {detail}")]
    Unreadable { command: String, detail: String },
}

/// A token the plugin gave, and when to ask it again (`None`: it gave no expiry).
struct Cached {
    token: SecretString,
    renew_at: Option<Timestamp>,
}

/// The plugin and its cached token, shared by every clone of the client.
#[derive(Clone)]
pub struct ExecToken {
    exec: Arc<ExecCredential>,
    cached: Arc<tokio::sync::Mutex<Option<Cached>>>,
}

impl ExecToken {
    pub fn new(exec: &ExecCredential) -> ExecToken {
        ExecToken {
            exec: Arc::new(exec.clone()),
            cached: Arc::default(),
        }
    }

    /// `Bearer <token>`, running the plugin only when there is no token yet or it is due.
    async fn header(&self) -> Result<HeaderValue, BoxError> {
        let mut cached = self.cached.lock().await;
        let due = match cached.as_ref() {
            None => true,
            Some(Cached { renew_at, .. }) => renew_at.is_some_and(|at| Timestamp::now() >= at),
        };
        if due {
            let exec = self.exec.clone();
            let fresh = tokio::task::spawn_blocking(move || run_plugin(&exec)).await??;
            *cached = Some(fresh);
        }
        let token = &cached.as_ref().expect("a token was just cached").token;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// When a token fetched at `now` that expires at `expiry` is asked for again.
fn renew_at(now: Timestamp, expiry: Timestamp) -> Timestamp {
    let life = expiry.duration_since(now);
    if life.is_negative() {
        return now;
    }
    let three_quarters = now + life * 3 / 4;
    let before_expiry = expiry - jiff::SignedDuration::try_from(MARGIN).expect("a minute");
    three_quarters.max(before_expiry)
}

fn run_plugin(exec: &ExecCredential) -> Result<Cached, ExecAuthError> {
    let command = exec.command_line();
    let info = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "spec": {"interactive": false},
    });
    let output = std::process::Command::new(&exec.command)
        .args(&exec.args)
        .envs(&exec.env)
        .env("KUBERNETES_EXEC_INFO", info.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| ExecAuthError::Failed {
            command: command.clone(),
            detail: err.to_string(),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(ExecAuthError::Failed {
            command,
            detail: format!("{}: {}", output.status, stderr.trim()),
        });
    }
    let unreadable = |detail: String| ExecAuthError::Unreadable {
        command: command.clone(),
        detail,
    };
    // The whole output may hold the token: only serde's message (no input) is kept.
    let credential: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|err| unreadable(err.to_string()))?;
    let status = &credential["status"];
    let token = status["token"]
        .as_str()
        .filter(|token| !token.is_empty())
        .ok_or_else(|| unreadable("status.token is missing".to_owned()))?;
    let renew = match status["expirationTimestamp"].as_str() {
        None => None,
        Some(text) => {
            let expiry: Timestamp = text
                .parse()
                .map_err(|err| unreadable(format!("status.expirationTimestamp: {err}")))?;
            Some(renew_at(Timestamp::now(), expiry))
        }
    };
    Ok(Cached {
        token: SecretString::from(token.to_owned()),
        renew_at: renew,
    })
}

/// Puts the plugin's token on every request; passes requests through without a plugin.
#[derive(Clone)]
pub struct ExecAuthLayer(pub Option<ExecToken>);

impl<S> Layer<S> for ExecAuthLayer {
    type Service = ExecAuth<S>;

    fn layer(&self, inner: S) -> ExecAuth<S> {
        ExecAuth {
            inner,
            token: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ExecAuth<S> {
    inner: S,
    token: Option<ExecToken>,
}

type Answer<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

impl<S, B> Service<Request<B>> for ExecAuth<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Answer<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The service polled ready is the one that takes the request.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let token = self.token.clone();
        Box::pin(async move {
            if let Some(token) = token {
                request
                    .headers_mut()
                    .insert(AUTHORIZATION, token.header().await?);
            }
            inner.call(request).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn short_tokens_are_kept_three_quarters_of_their_life_long_ones_until_a_minute_before() {
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(
            renew_at(now, at("2026-01-01T00:00:40Z")),
            at("2026-01-01T00:00:30Z")
        );
        assert_eq!(
            renew_at(now, at("2026-01-01T00:15:00Z")),
            at("2026-01-01T00:14:00Z")
        );
        assert_eq!(renew_at(now, at("2000-01-01T00:00:00Z")), now, "expired");
    }
}
