//! What can go wrong with the GitOps repository, each failure with the step the user takes
//! next. Messages carry libgit2's own text and URLs without passwords; tokens never reach
//! either (they travel through the credential callback only).

use std::path::PathBuf;

use crate::error::{Diagnose, ExitStatus};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("invalid repository URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("repository {url} cannot be reached with {credentials}")]
    CredentialsMismatch {
        url: String,
        credentials: &'static str,
    },
    #[error("authentication to {url} failed: {detail}")]
    AuthFailed { url: String, detail: String },
    #[error("access to {url} denied: {detail}")]
    AccessDenied { url: String, detail: String },
    #[error("repository {url} not found: {detail}")]
    NotFound { url: String, detail: String },
    #[error("repository {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error(
        "the Git server of {url} did not answer within {} (waiting for {waiting_for})",
        crate::report::duration(*after)
    )]
    TimedOut {
        url: String,
        waiting_for: &'static str,
        after: std::time::Duration,
    },
    #[error("TLS connection to {url} failed: {detail}")]
    Tls { url: String, detail: String },
    #[error("host key of {host} is not in {}", known_hosts.display())]
    UnknownHostKey { host: String, known_hosts: PathBuf },
    #[error("host key of {host} does not match the one in {}", known_hosts.display())]
    HostKeyMismatch { host: String, known_hosts: PathBuf },
    #[error("failed to read known_hosts file {}: {detail}", path.display())]
    KnownHosts { path: PathBuf, detail: String },
    #[error("failed to trust the CA file {}: {detail}", path.display())]
    CaFile { path: PathBuf, detail: String },
    #[error("push to branch {branch} of {url} was rejected by the server: {status}")]
    PushRejected {
        url: String,
        branch: String,
        status: String,
    },
    #[error("push to branch {branch} of {url} lost the race to other commits {attempts} times")]
    PushRaced {
        url: String,
        branch: String,
        attempts: u32,
    },
    #[error(
        "branch {branch} of {url} holds commits that are not gitops-bootstrap's proposal for env \
         {env}: {}",
        super::workspace::listed(commits)
    )]
    ForeignProposal {
        url: String,
        branch: String,
        env: String,
        commits: Vec<super::Unmerged>,
    },
    #[error(
        "{branch} merged the proposal {} but no longer holds it at {}: a later commit changed \
         {dir}/",
        &commit[..7.min(commit.len())],
        &tip[..7.min(tip.len())]
    )]
    MergedThenChanged {
        branch: String,
        commit: String,
        tip: String,
        dir: String,
    },
    #[error("failed to {op} {url}: {detail}")]
    Remote {
        op: &'static str,
        url: String,
        detail: String,
    },
    #[error("failed to {op} in the working clone {}: {source}", dir.display())]
    Local {
        op: &'static str,
        dir: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a Git working clone", dir.display())]
    NotAClone { dir: PathBuf },
    #[error("refusing to change {path:?} in the repository: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("commit {sha} is not known after fetching {url}")]
    UnknownCommit { sha: String, url: String },
    #[error("failed to {op} deploy key {}: {detail}", path.display())]
    DeployKey {
        op: &'static str,
        path: PathBuf,
        detail: String,
    },
}

impl Diagnose for GitError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            GitError::InvalidUrl { .. }
            | GitError::CredentialsMismatch { .. }
            | GitError::AuthFailed { .. }
            | GitError::AccessDenied { .. }
            | GitError::NotFound { .. }
            | GitError::Tls { .. }
            | GitError::UnknownHostKey { .. }
            | GitError::HostKeyMismatch { .. }
            | GitError::KnownHosts { .. }
            | GitError::CaFile { .. }
            | GitError::PushRejected { .. }
            | GitError::ForeignProposal { .. }
            | GitError::NotAClone { .. } => ExitStatus::BadInput,
            GitError::TimedOut { .. } => ExitStatus::TimedOut,
            _ => ExitStatus::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        let hint = match self {
            GitError::InvalidUrl { .. } => {
                "use https://host/owner/repo.git or ssh://git@host/owner/repo.git".to_string()
            }
            GitError::CredentialsMismatch { .. } => {
                "https repositories take a token; ssh repositories take a key file or the ssh agent"
                    .to_string()
            }
            GitError::AuthFailed { .. } => "check the token (value, expiry, scopes) or that the \
                ssh key is registered as a deploy key of this repository"
                .to_string(),
            GitError::AccessDenied { .. } => "the credentials are valid but may not do this: \
                pushing needs a token or deploy key with write access"
                .to_string(),
            GitError::NotFound { .. } => {
                "check the repository URL and that the credentials may see the repository"
                    .to_string()
            }
            GitError::Unreachable { .. } => {
                "check the network path to the Git host (DNS, proxy, firewall) and retry"
                    .to_string()
            }
            GitError::TimedOut { .. } => "check that the URL points at a Git server (host and \
                port) and that it is up; a slow link may need a longer --git-timeout"
                .to_string(),
            GitError::Tls { .. } => "if the server's certificate comes from a private CA, set \
                the repository's ca_file to that CA's PEM certificate"
                .to_string(),
            GitError::UnknownHostKey { host, known_hosts } => format!(
                "add {host}'s host key to {} (e.g. from `ssh-keyscan`), after checking its \
                 fingerprint with the Git host's published one",
                known_hosts.display()
            ),
            GitError::HostKeyMismatch { known_hosts, .. } => format!(
                "if the host key really changed, replace its line in {}; otherwise the \
                 connection may be intercepted",
                known_hosts.display()
            ),
            GitError::KnownHosts { .. } => {
                "point known_hosts at a readable file in OpenSSH known_hosts format".to_string()
            }
            GitError::CaFile { .. } => "ca_file must be a PEM certificate".to_string(),
            GitError::PushRejected { branch, .. } => format!(
                "the server declines pushes to {branch} (a protected branch or a hook): allow \
                 the tool's credentials to push to it, or configure a branch the tool may push \
                 to and merge it with a pull request"
            ),
            GitError::PushRaced { .. } => {
                "something else keeps committing to the branch; retry when it is quiet".to_string()
            }
            GitError::ForeignProposal { branch, .. } => format!(
                "the tool proposes on {branch} alone and neither waits for nor discards anyone \
                 else's work there: merge those commits or move them to a branch of your own, \
                 or delete the branch (`git push origin --delete {branch}`), then rerun"
            ),
            GitError::MergedThenChanged { .. } => "rerun: it proposes the change again on the \
                branch as it is now"
                .to_string(),
            GitError::NotAClone { dir } => format!(
                "the tool keeps its working clone there; move {} away and rerun",
                dir.display()
            ),
            _ => return None,
        };
        Some(hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_and_host_key_problems_are_bad_input_with_hints() {
        let unknown = GitError::UnknownHostKey {
            host: "[127.0.0.1]:2222".into(),
            known_hosts: "/tmp/kh".into(),
        };
        assert_eq!(unknown.exit_status(), ExitStatus::BadInput);
        assert!(unknown.to_string().contains("[127.0.0.1]:2222"));
        assert!(unknown.hint().unwrap().contains("/tmp/kh"));
        let auth = GitError::AuthFailed {
            url: "https://h/r.git".into(),
            detail: "401".into(),
        };
        assert_eq!(auth.exit_status(), ExitStatus::BadInput);
        assert!(auth.hint().is_some());
    }

    #[test]
    fn network_trouble_is_a_failure() {
        let err = GitError::Unreachable {
            url: "https://h/r.git".into(),
            detail: "connection refused".into(),
        };
        assert_eq!(err.exit_status(), ExitStatus::Failure);
        let rejected = GitError::PushRejected {
            url: "u".into(),
            branch: "main".into(),
            status: "pre-receive hook declined".into(),
        };
        assert!(rejected.hint().unwrap().contains("pull request"));
    }
}
