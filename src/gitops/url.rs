//! Repository URLs: the forms Flux's GitRepository accepts (http, https, ssh), checked before
//! any connection, and the host name known_hosts entries are matched against.

use super::{GitCredentials, GitError, RepoSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    Http,
    Ssh,
}

/// A validated repository URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RemoteUrl {
    pub transport: Transport,
    pub host: String,
    pub port: Option<u16>,
    /// The URL as given (it holds no password: [`RemoteUrl::parse`] refuses those).
    pub text: String,
}

impl RemoteUrl {
    pub fn parse(text: &str) -> Result<RemoteUrl, GitError> {
        let invalid = |reason: &str| GitError::InvalidUrl {
            url: redact(text),
            reason: reason.to_string(),
        };
        if !text.contains("://") && text.contains(':') {
            return Err(invalid(
                "scp-like addresses are not accepted by Flux; write ssh://git@host/owner/repo.git",
            ));
        }
        let parsed = ::url::Url::parse(text).map_err(|err| invalid(&err.to_string()))?;
        let transport = match parsed.scheme() {
            "https" | "http" => Transport::Http,
            "ssh" => Transport::Ssh,
            other => {
                return Err(invalid(&format!(
                    "scheme {other} is not http, https or ssh"
                )));
            }
        };
        if parsed.password().is_some() {
            return Err(invalid(
                "credentials do not belong in the URL; configure a token or key instead",
            ));
        }
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| invalid("it names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(RemoteUrl {
            transport,
            host,
            port: parsed.port(),
            text: text.to_string(),
        })
    }

    /// The host as known_hosts writes it: `host`, or `[host]:port` off port 22.
    pub fn known_hosts_name(&self) -> String {
        match self.port {
            Some(port) if port != 22 => format!("[{}]:{port}", self.host),
            _ => self.host.clone(),
        }
    }
}

/// Checks the URL and that the credentials fit its transport.
pub(super) fn validate(spec: &RepoSpec) -> Result<RemoteUrl, GitError> {
    let url = RemoteUrl::parse(&spec.url)?;
    let fits = matches!(
        (&spec.credentials, url.transport),
        (GitCredentials::Token { .. }, Transport::Http)
            | (
                GitCredentials::SshKey { .. } | GitCredentials::SshAgent { .. },
                Transport::Ssh
            )
    );
    if !fits {
        return Err(GitError::CredentialsMismatch {
            url: url.text.clone(),
            credentials: spec.credentials.kind(),
        });
    }
    Ok(url)
}

/// The URL without any password, for messages about a URL that was refused.
pub(super) fn redact(text: &str) -> String {
    match ::url::Url::parse(text) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => text.to_string(),
    }
}

/// Where to open the pull request that merges `branch` into `target`, derived from the
/// repository URL: GitHub's compare page (`github` in the host name), GitLab's new merge
/// request (`gitlab` in the host name), and the compare page Gitea, Forgejo and others serve
/// at the same path as GitHub's for any other host. An ssh URL maps to https on the same host
/// (its port dropped: it is ssh's). `None` when the URL names no host or path.
pub fn compare_url(repo_url: &str, target: &str, branch: &str) -> Option<String> {
    let parsed = ::url::Url::parse(repo_url).ok()?;
    let host = parsed.host_str().filter(|host| !host.is_empty())?;
    let port = match (parsed.scheme(), parsed.port()) {
        ("http" | "https", Some(port)) => format!(":{port}"),
        _ => String::new(),
    };
    let scheme = if parsed.scheme() == "http" {
        "http"
    } else {
        "https"
    };
    let path = parsed.path().trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    if path.is_empty() {
        return None;
    }
    let project = format!("{scheme}://{host}{port}/{path}");
    let host = host.to_lowercase();
    Some(if host.contains("gitlab") {
        format!(
            "{project}/-/merge_requests/new?merge_request%5Bsource_branch%5D={branch}\
             &merge_request%5Btarget_branch%5D={target}"
        )
    } else if host.contains("github") {
        format!("{project}/compare/{target}...{branch}?expand=1")
    } else {
        format!("{project}/compare/{target}...{branch}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_https_and_ssh() {
        let https = RemoteUrl::parse("https://git.example.com/org/repo.git").unwrap();
        assert_eq!(https.transport, Transport::Http);
        assert_eq!(https.known_hosts_name(), "git.example.com");
        let ssh = RemoteUrl::parse("ssh://git@127.0.0.1:2222/srv/repo.git").unwrap();
        assert_eq!(ssh.transport, Transport::Ssh);
        assert_eq!(ssh.known_hosts_name(), "[127.0.0.1]:2222");
        let default_port = RemoteUrl::parse("ssh://git@github.com:22/o/r.git").unwrap();
        assert_eq!(default_port.known_hosts_name(), "github.com");
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "git@github.com:org/repo.git",
            "file:///tmp/repo.git",
            "git://example.com/r.git",
            "not a url",
        ] {
            assert!(
                matches!(RemoteUrl::parse(bad), Err(GitError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_a_password_without_repeating_it() {
        let err = RemoteUrl::parse("https://me:hunter2@example.com/r.git").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("REDACTED"), "{text}");
    }

    #[test]
    fn compare_urls_follow_the_host() {
        let branch = "gitops-bootstrap/dev";
        let cases = [
            (
                "https://github.com/acme/fleet.git",
                "https://github.com/acme/fleet/compare/main...gitops-bootstrap/dev?expand=1",
            ),
            (
                "ssh://git@github.com/acme/fleet.git",
                "https://github.com/acme/fleet/compare/main...gitops-bootstrap/dev?expand=1",
            ),
            (
                "https://gitlab.example.com/platform/infra/fleet.git",
                "https://gitlab.example.com/platform/infra/fleet/-/merge_requests/new?\
                 merge_request%5Bsource_branch%5D=gitops-bootstrap/dev\
                 &merge_request%5Btarget_branch%5D=main",
            ),
            (
                "ssh://git@gitea.example.com:2222/acme/fleet.git",
                "https://gitea.example.com/acme/fleet/compare/main...gitops-bootstrap/dev",
            ),
            (
                "https://127.0.0.1:8443/gitops.git",
                "https://127.0.0.1:8443/gitops/compare/main...gitops-bootstrap/dev",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(
                compare_url(url, "main", branch).as_deref(),
                Some(expected),
                "{url}"
            );
        }
        assert_eq!(
            compare_url("https://git.example.com/", "main", branch),
            None
        );
    }
}
