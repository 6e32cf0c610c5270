//! The GitOps repository through git2: checking access, a disposable working clone kept at the
//! remote branch tip, committing rendered files and pushing them (never forced, retried when
//! another commit races ours), and the per-env ssh deploy key.
//!
//! It knows Git only: the workflow maps the config onto [`RepoSpec`] and decides what to
//! render. Credentials reach libgit2 through its credential callbacks only, never through URLs,
//! argv or logs; ssh host keys are checked against the spec's known_hosts file.
//!
//! git2 is blocking: async callers run these functions in `spawn_blocking`.

mod credentials;
mod deadline;
mod deploy_key;
mod error;
mod remote;
mod retry;
mod url;
mod workspace;

use std::path::PathBuf;

use secrecy::SecretString;

pub use deadline::{DEFAULT_TIMEOUT as DEFAULT_NETWORK_TIMEOUT, set_network_timeout};
pub use deploy_key::{DeployKey, generate_deploy_key};
pub use error::GitError;
pub use remote::{RemoteInfo, check_access, check_push_access};
pub use url::compare_url;
pub use workspace::{FileChange, Proposal, ProposalMark, SyncOutcome, Unmerged, Workspace};

/// Where the GitOps repository is and how to reach it.
#[derive(Debug, Clone)]
pub struct RepoSpec {
    /// `https://…`, `http://…` or `ssh://[user@]host[:port]/path` (what Flux accepts).
    pub url: String,
    pub branch: String,
    /// Directory inside the repository holding `clusters/` and `profiles/`; empty for the root.
    pub path_prefix: String,
    pub author_name: String,
    pub author_email: String,
    /// A CA trusted for https in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    pub credentials: GitCredentials,
}

impl RepoSpec {
    /// `rel` under the path prefix, as a path from the repository root.
    pub fn prefixed(&self, rel: &str) -> String {
        let prefix = self.path_prefix.trim_matches('/');
        let rel = rel.trim_start_matches('/');
        if prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{prefix}/{rel}")
        }
    }
}

/// How the tool authenticates to the repository.
#[derive(Debug, Clone)]
pub enum GitCredentials {
    /// https: HTTP Basic with the token as the password.
    Token {
        username: String,
        token: SecretString,
    },
    /// ssh with a private key file (OpenSSH format, no passphrase).
    SshKey {
        key_file: PathBuf,
        known_hosts: PathBuf,
    },
    /// ssh through the keys of the running ssh-agent.
    SshAgent { known_hosts: PathBuf },
}

impl GitCredentials {
    fn kind(&self) -> &'static str {
        match self {
            GitCredentials::Token { .. } => "a token",
            GitCredentials::SshKey { .. } => "an ssh key",
            GitCredentials::SshAgent { .. } => "the ssh agent",
        }
    }

    fn known_hosts(&self) -> Option<&PathBuf> {
        match self {
            GitCredentials::Token { .. } => None,
            GitCredentials::SshKey { known_hosts, .. }
            | GitCredentials::SshAgent { known_hosts } => Some(known_hosts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_joins_with_and_without_a_prefix() {
        let mut spec = RepoSpec {
            url: "https://example.invalid/r.git".into(),
            branch: "main".into(),
            path_prefix: String::new(),
            author_name: "a".into(),
            author_email: "a@example.invalid".into(),
            ca_file: None,
            credentials: GitCredentials::SshAgent {
                known_hosts: "kh".into(),
            },
        };
        assert_eq!(spec.prefixed("clusters/dev"), "clusters/dev");
        spec.path_prefix = "/platform/".into();
        assert_eq!(spec.prefixed("/clusters/dev"), "platform/clusters/dev");
    }
}
