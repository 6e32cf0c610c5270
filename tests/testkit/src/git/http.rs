//! Smart HTTP: token authentication in front of git's own `git http-backend`, run as a CGI
//! program per request, so clients talk to the real protocol implementation.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use super::{GitRequest, Shared};

/// What a request's credentials allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Push,
}

impl Access {
    fn token(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Push => "push",
        }
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response {
    let mut record = GitRequest {
        peer: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0),
        method: request.method().to_string(),
        what: what_of(request.uri()),
        token: access_of(&shared, request.headers()).map(Access::token),
        status: 0,
    };
    let response = match serve(&shared, request).await {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(error = %format!("{err:#}"), "git request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}\n")).into_response()
        }
    };
    record.status = response.status().as_u16();
    shared.requests.lock().expect("request log").push(record);
    response
}

/// The request's path after the repository, with the service asked for: `info/refs?service=
/// git-upload-pack`, `git-upload-pack`, …
fn what_of(uri: &axum::http::Uri) -> String {
    let path = uri.path().trim_start_matches('/');
    let rest = path.split_once('/').map_or("", |(_, rest)| rest);
    match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    }
}

async fn serve(shared: &Shared, request: Request<Body>) -> anyhow::Result<Response> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let wants_push =
        query.contains("service=git-receive-pack") || path.ends_with("/git-receive-pack");
    let access = match access_of(shared, request.headers()) {
        Some(access) => access,
        None => return Ok(unauthorized()),
    };
    if wants_push && access != Access::Push {
        return Ok((StatusCode::FORBIDDEN, "this token may not push\n").into_response());
    }
    let repo = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".git")
        .to_string();
    // The race fires on the advertisement that starts a push, so the client sees the other
    // commit as the remote tip and its own push is not a fast-forward.
    if wants_push && request.method() == Method::GET {
        let branch = shared.races.lock().expect("race table").remove(&repo);
        if let Some(branch) = branch {
            let repo_path = shared.repo_path(&repo);
            tokio::task::spawn_blocking(move || {
                super::repo::commit_racing_change(&repo_path, &branch)
            })
            .await??;
        }
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await?;
    run_cgi(
        shared,
        &parts.method,
        &path,
        &query,
        &parts.headers,
        access,
        body,
    )
    .await
}

fn unauthorized() -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"testkit-git\""),
    );
    response
}

/// HTTP Basic with the token as the password; the username is ignored, as hosting services do
/// for tokens.
fn access_of(shared: &Shared, headers: &HeaderMap) -> Option<Access> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (_user, password) = decoded.split_once(':')?;
    if password == shared.push_token {
        Some(Access::Push)
    } else if password == shared.read_token {
        Some(Access::Read)
    } else {
        None
    }
}

async fn run_cgi(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    access: Access,
    body: Bytes,
) -> anyhow::Result<Response> {
    let header_text = |name: HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut command = Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header_text(header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env(
            "HTTP_CONTENT_ENCODING",
            header_text(header::CONTENT_ENCODING),
        )
        .env(
            "GIT_PROTOCOL",
            header_text(HeaderName::from_static("git-protocol")),
        )
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // http-backend serves receive-pack only to an authenticated user.
    if access == Access::Push {
        command.env("REMOTE_USER", "testkit");
    }
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Feed the body while the output is drained, so large packs cannot deadlock the pipes.
    let writer = tokio::spawn(async move {
        let written = stdin.write_all(&body).await;
        drop(stdin);
        written
    });
    let output = child.wait_with_output().await?;
    writer.await??;
    if !output.stderr.is_empty() {
        tracing::debug!(stderr = %String::from_utf8_lossy(&output.stderr), "git http-backend");
    }
    parse_cgi_output(&output.stdout)
}

/// Splits CGI output into a status, headers and a body.
fn parse_cgi_output(output: &[u8]) -> anyhow::Result<Response> {
    let (head_len, separator_len) = find_header_end(output)
        .ok_or_else(|| anyhow::anyhow!("git http-backend wrote no CGI header"))?;
    let head = std::str::from_utf8(&output[..head_len])?;
    let mut builder = Response::builder().status(StatusCode::OK);
    for line in head.lines().filter(|line| !line.trim().is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("bad CGI header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            builder = builder.status(code.parse::<u16>()?);
        } else {
            builder = builder.header(name.trim(), value);
        }
    }
    let body = output[head_len + separator_len..].to_vec();
    Ok(builder.body(Body::from(body))?)
}

fn find_header_end(output: &[u8]) -> Option<(usize, usize)> {
    let crlf = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = output.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_status_headers_and_body() {
        let response =
            parse_cgi_output(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope")
                .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["content-type"], "text/plain");
        let body = axum::body::to_bytes(response.into_body(), 100)
            .await
            .unwrap();
        assert_eq!(&body[..], b"nope");
    }

    #[test]
    fn output_without_header_is_an_error() {
        assert!(parse_cgi_output(b"no header here").is_err());
    }
}
