//! Helpers around the testkit's Git server for integration tests: start it with its CA in a
//! file, and describe its repositories as the product's [`RepoSpec`]s.

use std::path::Path;

use gitops_bootstrap::gitops::{GitCredentials, RepoSpec};
pub use testkit::git::{GitFixture, SshGitServer};

pub async fn start() -> GitFixture {
    GitFixture::start().await.expect("starting the Git server")
}

/// A fixture whose server has a CA of its own (that no test has trusted).
pub async fn start_with_own_ca() -> GitFixture {
    GitFixture::start_with_own_ca()
        .await
        .expect("starting the Git server")
}

/// A spec for `repo` of `fixture` over HTTPS with `token`, trusting the server's CA.
pub fn https_spec(fixture: &GitFixture, repo: &str, token: &str) -> RepoSpec {
    RepoSpec {
        url: fixture.server.url(repo),
        branch: "main".into(),
        path_prefix: String::new(),
        author_name: "gitops-bootstrap tests".into(),
        author_email: "tests@example.invalid".into(),
        ca_file: Some(fixture.ca_file.clone()),
        credentials: GitCredentials::Token {
            username: "x-access-token".into(),
            token: token.into(),
        },
    }
}

/// A spec for `repo` over ssh with the server's client key and `known_hosts`.
pub fn ssh_spec(ssh: &SshGitServer, repo: &str, known_hosts: &Path) -> RepoSpec {
    RepoSpec {
        url: ssh.url(repo),
        branch: "main".into(),
        path_prefix: String::new(),
        author_name: "gitops-bootstrap tests".into(),
        author_email: "tests@example.invalid".into(),
        ca_file: None,
        credentials: GitCredentials::SshKey {
            key_file: ssh.client_key_path().to_path_buf(),
            known_hosts: known_hosts.to_path_buf(),
        },
    }
}
