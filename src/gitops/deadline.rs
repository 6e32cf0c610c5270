//! Deadlines for talking to the Git server. libgit2 waits forever by default: a host that
//! accepts the TCP connection and never answers would hang the run. Its socket streams (http
//! and https) honour process-wide connect and read timeouts, set once here before any thread
//! starts; its ssh transport does not, so an ssh server's greeting is awaited under the same
//! deadline before libgit2 is handed the connection.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

use super::GitError;
use super::url::{RemoteUrl, Transport};

/// How long the server may stay silent (connecting, or between two reads) by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

static TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// Sets the deadline of every Git connection of this process. Call it once, before any thread
/// is started (libgit2's options are unsynchronised globals).
pub fn set_network_timeout(timeout: Duration) {
    let millis = i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1);
    // SAFETY: called from `main` before the async runtime or any other thread exists.
    unsafe {
        // Both calls only store an integer; they cannot fail.
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(millis);
        let _ = git2::opts::set_server_timeout_in_milliseconds(millis);
    }
    let _ = TIMEOUT.set(timeout);
}

/// The deadline in force: the one set, else libgit2's own (none) shown as the default we would
/// have set; only unit tests and library callers run without `set_network_timeout`.
pub(super) fn network_timeout() -> Duration {
    TIMEOUT.get().copied().unwrap_or(DEFAULT_TIMEOUT)
}

/// For ssh, waits for the server's `SSH-` greeting under the deadline, so a server that
/// accepts and stays silent fails here with a clear error instead of hanging in libssh2.
pub(super) fn await_ssh_greeting(url: &RemoteUrl) -> Result<(), GitError> {
    if url.transport != Transport::Ssh {
        return Ok(());
    }
    let timeout = network_timeout();
    let port = url.port.unwrap_or(22);
    let unreachable = |detail: String| GitError::Unreachable {
        url: url.text.clone(),
        detail,
    };
    let addresses: Vec<_> = (url.host.as_str(), port)
        .to_socket_addrs()
        .map_err(|err| unreachable(format!("cannot resolve {}: {err}", url.host)))?
        .collect();
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return read_greeting(stream, url, timeout),
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                return Err(GitError::TimedOut {
                    url: url.text.clone(),
                    waiting_for: "the TCP connection",
                    after: timeout,
                });
            }
            Err(err) => last_error = Some(err),
        }
    }
    Err(unreachable(last_error.map_or_else(
        || format!("{} has no address", url.host),
        |err| err.to_string(),
    )))
}

fn read_greeting(
    mut stream: TcpStream,
    url: &RemoteUrl,
    timeout: Duration,
) -> Result<(), GitError> {
    let timed_out = || GitError::TimedOut {
        url: url.text.clone(),
        waiting_for: "the ssh server's greeting",
        after: timeout,
    };
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|_| timed_out())?;
    let mut greeting = [0u8; 4];
    let mut read = 0;
    while read < greeting.len() {
        match stream.read(&mut greeting[read..]) {
            Ok(0) => {
                return Err(GitError::Unreachable {
                    url: url.text.clone(),
                    detail: "the server closed the connection before greeting".into(),
                });
            }
            Ok(n) => read += n,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out());
            }
            Err(err) => {
                return Err(GitError::Unreachable {
                    url: url.text.clone(),
                    detail: err.to_string(),
                });
            }
        }
    }
    // Servers may send other lines before the version line (RFC 4253 4.2); any answer at all
    // shows the server is alive, and libssh2 checks the rest.
    Ok(())
}

/// Whether a libgit2 error is one of its socket deadlines running out.
pub(super) fn is_timeout(err: &git2::Error) -> bool {
    let message = err.message().to_lowercase();
    // Through OpenSSL, the socket's read deadline surfaces as EAGAIN, not as libgit2's timeout.
    err.code() == git2::ErrorCode::Timeout
        || message.contains("timed out")
        || message.contains("resource temporarily unavailable")
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn a_silent_ssh_server_times_out_naming_what_it_waited_for() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = RemoteUrl::parse(&format!("ssh://git@127.0.0.1:{port}/r.git")).unwrap();
        let _held = std::thread::spawn(move || {
            listener.accept().map(|(s, _)| {
                std::thread::sleep(Duration::from_secs(3));
                drop(s)
            })
        });
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let err = read_greeting(stream, &url, Duration::from_millis(200)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the Git server of ssh://git@127.0.0.1:{port}/r.git did not answer within 200ms \
                 (waiting for the ssh server's greeting)"
            )
        );
    }
}
