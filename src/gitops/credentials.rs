//! Everything a connection needs besides the URL: the credential callback (the only way a token
//! or key reaches libgit2), the ssh host key check against the spec's known_hosts, the extra CA
//! for https, and turning libgit2's errors into [`GitError`]s using what the callbacks saw.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::{Cred, CredentialType, RemoteCallbacks};
use secrecy::ExposeSecret as _;
use ssh_key::known_hosts::{Entry, HostPatterns, KnownHosts, Marker};

use super::url::{RemoteUrl, Transport};
use super::{GitCredentials, GitError, RepoSpec};

/// The user name when an ssh URL names none (what Git hosts expect).
const DEFAULT_SSH_USER: &str = "git";

/// What the callbacks of one operation saw, read when libgit2 reports an error.
#[derive(Default)]
pub(super) struct Observed {
    credentials_given: Cell<u32>,
    host_key_error: RefCell<Option<GitError>>,
    /// The status the server gave a pushed reference, when it refused it.
    pub push_status: RefCell<Option<String>>,
}

/// Callbacks authenticating as `spec` says and checking ssh host keys.
pub(super) fn callbacks<'a>(
    spec: &'a RepoSpec,
    url: &'a RemoteUrl,
    observed: &'a Observed,
) -> Result<RemoteCallbacks<'a>, GitError> {
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |_url, user_from_url, allowed| {
        credential(&spec.credentials, user_from_url, allowed, observed)
    });
    if let Some(known_hosts) = spec.credentials.known_hosts() {
        let entries = read_known_hosts(known_hosts)?;
        callbacks.certificate_check(move |cert, _host| {
            let Some(hostkey) = cert.as_hostkey().and_then(|key| key.hostkey()) else {
                // Not an ssh host key: let libgit2's own verification decide.
                return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
            };
            check_host_key(&entries, url, known_hosts, hostkey)
                .map(|()| git2::CertificateCheckStatus::CertificateOk)
                .map_err(|err| {
                    let message = git2::Error::from_str(&err.to_string());
                    observed.host_key_error.replace(Some(err));
                    message
                })
        });
    }
    callbacks.push_update_reference(move |_reference, status| {
        if let Some(status) = status {
            observed.push_status.replace(Some(status.to_string()));
        }
        Ok(())
    });
    if url.transport == Transport::Http
        && let Some(ca_file) = &spec.ca_file
    {
        trust_extra_ca(ca_file)?;
    }
    Ok(callbacks)
}

fn credential(
    credentials: &GitCredentials,
    user_from_url: Option<&str>,
    allowed: CredentialType,
    observed: &Observed,
) -> Result<Cred, git2::Error> {
    let user = user_from_url.unwrap_or(DEFAULT_SSH_USER);
    if allowed.contains(CredentialType::USERNAME) {
        return Cred::username(user);
    }
    // libgit2 asks again after the server refused what it was given: refuse to loop.
    let given = observed.credentials_given.get();
    observed.credentials_given.set(given + 1);
    if given > 0 {
        return Err(git2::Error::from_str("the server rejected the credentials"));
    }
    match credentials {
        GitCredentials::Token { username, token }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
        {
            Cred::userpass_plaintext(username, token.expose_secret())
        }
        GitCredentials::SshKey { key_file, .. } if allowed.contains(CredentialType::SSH_KEY) => {
            Cred::ssh_key(user, None, key_file, None)
        }
        GitCredentials::SshAgent { .. } if allowed.contains(CredentialType::SSH_KEY) => {
            Cred::ssh_key_from_agent(user)
        }
        other => Err(git2::Error::from_str(&format!(
            "the server asks for {allowed:?} credentials, but {} is configured",
            other.kind()
        ))),
    }
}

/// Adds `ca_file` to the certificates libgit2's OpenSSL context trusts.
///
/// Why this way: libgit2 verifies the server's chain and host name itself against one
/// process-wide OpenSSL store that already holds the system roots; `set_ssl_cert_file` loads
/// the file into that store (`SSL_CTX_load_verify_locations` adds, it does not replace), so
/// verification stays on and the system roots stay trusted. Verifying in `certificate_check`
/// instead would see the leaf only, not the chain. Each file is loaded once per process.
fn trust_extra_ca(ca_file: &Path) -> Result<(), GitError> {
    static LOADED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let path = std::fs::canonicalize(ca_file).map_err(|err| GitError::CaFile {
        path: ca_file.to_path_buf(),
        detail: err.to_string(),
    })?;
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let loaded = loaded.get_or_insert_with(HashSet::new);
    if loaded.contains(&path) {
        return Ok(());
    }
    // SAFETY: libgit2 options are process-wide and unsynchronised; the mutex above serialises
    // our calls, and OpenSSL locks the certificate store against concurrent handshakes.
    unsafe { git2::opts::set_ssl_cert_file(&path) }.map_err(|err| GitError::CaFile {
        path: ca_file.to_path_buf(),
        detail: err.message().to_string(),
    })?;
    loaded.insert(path);
    Ok(())
}

fn read_known_hosts(path: &Path) -> Result<Vec<Entry>, GitError> {
    let text = std::fs::read_to_string(path).map_err(|err| GitError::KnownHosts {
        path: path.to_path_buf(),
        detail: err.to_string(),
    })?;
    parse_known_hosts(&text).map_err(|detail| GitError::KnownHosts {
        path: path.to_path_buf(),
        detail,
    })
}

fn parse_known_hosts(text: &str) -> Result<Vec<Entry>, String> {
    KnownHosts::new(text)
        .enumerate()
        .map(|(index, entry)| entry.map_err(|err| format!("entry {}: {err}", index + 1)))
        .collect()
}

/// OpenSSH's rule: the key must be listed for the host (`host`, or `[host]:port` off port 22),
/// and not revoked. Hashed names (`|1|…`) and `@cert-authority` lines never match.
fn check_host_key(
    entries: &[Entry],
    url: &RemoteUrl,
    known_hosts: &Path,
    hostkey: &[u8],
) -> Result<(), GitError> {
    let host = url.known_hosts_name();
    let same_key = |entry: &Entry| {
        entry
            .public_key()
            .to_bytes()
            .is_ok_and(|bytes| bytes == hostkey)
    };
    let for_host: Vec<&Entry> = entries
        .iter()
        .filter(|entry| patterns_match(entry.host_patterns(), &host))
        .collect();
    let revoked = entries
        .iter()
        .any(|entry| entry.marker() == Some(&Marker::Revoked) && same_key(entry));
    let listed = for_host
        .iter()
        .any(|entry| entry.marker().is_none() && same_key(entry));
    match (revoked, listed, for_host.is_empty()) {
        (false, true, _) => Ok(()),
        (false, false, true) => Err(GitError::UnknownHostKey {
            host,
            known_hosts: known_hosts.to_path_buf(),
        }),
        _ => Err(GitError::HostKeyMismatch {
            host,
            known_hosts: known_hosts.to_path_buf(),
        }),
    }
}

fn patterns_match(patterns: &HostPatterns, host: &str) -> bool {
    let HostPatterns::Patterns(patterns) = patterns else {
        return false;
    };
    let mut matched = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob_match(negated, host) {
                return false;
            }
        } else if glob_match(pattern, host) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` wildcards, case-insensitive, as in OpenSSH host patterns.
fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, at)) = backtrack {
            p = star + 1;
            t = at + 1;
            backtrack = Some((star, at + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Turns a libgit2 error from talking to the remote into the failure the user can act on.
pub(super) fn classify(
    err: git2::Error,
    op: &'static str,
    url: &RemoteUrl,
    observed: &Observed,
) -> GitError {
    if let Some(host_key_error) = observed.host_key_error.take() {
        return host_key_error;
    }
    let url_text = url.text.clone();
    let detail = err.message().to_string();
    let lower = detail.to_lowercase();
    if super::deadline::is_timeout(&err) {
        let waiting_for = if lower.contains("connect") {
            "the connection"
        } else {
            "an answer"
        };
        return GitError::TimedOut {
            url: url_text,
            waiting_for,
            after: super::deadline::network_timeout(),
        };
    }
    let rejected_credentials = observed.credentials_given.get() > 1;
    // Only the status phrase: a bare "404" could be part of a port number.
    let http_status = |code: &str| lower.contains(&format!("status code: {code}"));
    if rejected_credentials
        || err.code() == git2::ErrorCode::Auth
        || http_status("401")
        || lower.contains("authentication")
    {
        GitError::AuthFailed {
            url: url_text,
            detail,
        }
    } else if http_status("403") || lower.contains("permission denied") {
        GitError::AccessDenied {
            url: url_text,
            detail,
        }
    } else if http_status("404")
        || lower.contains("repository not found")
        || lower.contains("does not appear to be a git repository")
    {
        GitError::NotFound {
            url: url_text,
            detail,
        }
    } else if err.code() == git2::ErrorCode::Certificate || err.class() == git2::ErrorClass::Ssl {
        GitError::Tls {
            url: url_text,
            detail,
        }
    } else if matches!(
        err.class(),
        git2::ErrorClass::Net
            | git2::ErrorClass::Os
            | git2::ErrorClass::Ssh
            | git2::ErrorClass::Http
    ) {
        GitError::Unreachable {
            url: url_text,
            detail,
        }
    } else {
        GitError::Remote {
            op,
            url: url_text,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_key() -> String {
        let key = ssh_key::PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            ssh_key::Algorithm::Ed25519,
        )
        .unwrap();
        key.public_key().to_openssh().unwrap()
    }

    fn raw(key: &str) -> Vec<u8> {
        ssh_key::PublicKey::from_openssh(key)
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    fn check(known_hosts: &str, url: &str, key: &str) -> Result<(), GitError> {
        let entries = parse_known_hosts(known_hosts).unwrap();
        let url = RemoteUrl::parse(url).unwrap();
        check_host_key(&entries, &url, Path::new("/kh"), &raw(key))
    }

    #[test]
    fn known_hosts_accepts_the_listed_key_for_host_and_port() {
        let (key_a, key_b) = (random_key(), random_key());
        let file = format!("[127.0.0.1]:2222 {key_a}\ngithub.com {key_b}\n");
        assert!(check(&file, "ssh://git@127.0.0.1:2222/r.git", &key_a).is_ok());
        assert!(check(&file, "ssh://git@github.com/o/r.git", &key_b).is_ok());
    }

    #[test]
    fn known_hosts_refuses_unknown_hosts_and_other_keys() {
        let (key_a, key_b) = (random_key(), random_key());
        let file = format!("[127.0.0.1]:2222 {key_a}\n");
        let unknown = check(&file, "ssh://git@127.0.0.1:2223/r.git", &key_a).unwrap_err();
        assert!(
            matches!(&unknown, GitError::UnknownHostKey { host, .. } if host == "[127.0.0.1]:2223")
        );
        let mismatch = check(&file, "ssh://git@127.0.0.1:2222/r.git", &key_b).unwrap_err();
        assert!(matches!(mismatch, GitError::HostKeyMismatch { .. }));
    }

    #[test]
    fn known_hosts_honours_wildcards_negation_and_revocation() {
        let (key_a, key_b) = (random_key(), random_key());
        let file = format!("*.example.com,!bad.example.com {key_a}\n@revoked * {key_b}\n");
        assert!(check(&file, "ssh://git@git.example.com/r.git", &key_a).is_ok());
        assert!(check(&file, "ssh://git@bad.example.com/r.git", &key_a).is_err());
        let revoked = check(
            &format!("git.example.com {key_b}\n@revoked * {key_b}\n"),
            "ssh://git@git.example.com/r.git",
            &key_b,
        );
        assert!(matches!(revoked, Err(GitError::HostKeyMismatch { .. })));
    }

    #[test]
    fn malformed_known_hosts_names_the_entry() {
        let err = parse_known_hosts("github.com ssh-ed25519 not-base64!\n").unwrap_err();
        assert!(err.contains("entry 1"), "{err}");
    }

    #[test]
    fn glob_matches_like_openssh() {
        assert!(glob_match("*.Example.com", "git.example.com"));
        assert!(glob_match("10.0.0.?", "10.0.0.7"));
        assert!(!glob_match("10.0.0.?", "10.0.0.17"));
        assert!(glob_match("[127.0.0.1]:*", "[127.0.0.1]:2222"));
    }

    fn url() -> RemoteUrl {
        RemoteUrl::parse("https://127.0.0.1:1/r.git").unwrap()
    }

    #[test]
    fn classifies_libgit2_errors() {
        let observed = Observed::default();
        let http = |message: &str| {
            git2::Error::new(
                git2::ErrorCode::GenericError,
                git2::ErrorClass::Http,
                message,
            )
        };
        let cases = [
            (http("unexpected http status code: 403"), "AccessDenied"),
            (http("unexpected http status code: 404"), "NotFound"),
            (
                git2::Error::new(
                    git2::ErrorCode::Certificate,
                    git2::ErrorClass::Ssl,
                    "bad cert",
                ),
                "Tls",
            ),
            (
                git2::Error::new(
                    git2::ErrorCode::GenericError,
                    git2::ErrorClass::Net,
                    "refused",
                ),
                "Unreachable",
            ),
            (
                git2::Error::new(git2::ErrorCode::Auth, git2::ErrorClass::Ssh, "publickey"),
                "AuthFailed",
            ),
        ];
        for (err, expected) in cases {
            let classified = classify(err, "fetch", &url(), &observed);
            assert!(
                format!("{classified:?}").starts_with(expected),
                "{classified:?}"
            );
        }
    }

    #[test]
    fn a_second_credential_request_is_refused_and_classified_as_auth() {
        let observed = Observed::default();
        let token = GitCredentials::Token {
            username: "x".into(),
            token: "secret-token".into(),
        };
        let plain = CredentialType::USER_PASS_PLAINTEXT;
        assert!(credential(&token, None, plain, &observed).is_ok());
        let Err(again) = credential(&token, None, plain, &observed) else {
            panic!("a second request got credentials");
        };
        assert!(!again.message().contains("secret-token"));
        let classified = classify(again, "fetch", &url(), &observed);
        assert!(matches!(classified, GitError::AuthFailed { .. }));
    }
}
