//! Helpers around the testkit's Git server for integration tests: start it with its CA in a
//! file, and describe its repositories as the product's [`RepoSpec`]s.

use std::path::{Path, PathBuf};

use gitops_bootstrap::gitops::{GitCredentials, RepoSpec};
pub use testkit::git::{GitServer, SshGitServer};

/// A Git server plus a temp dir for the CA file, known_hosts files and working clones.
pub struct GitFixture {
    pub server: GitServer,
    pub dir: tempfile::TempDir,
    pub ca_file: PathBuf,
}

pub async fn start() -> GitFixture {
    fixture(GitServer::start().await.expect("starting the Git server"))
}

/// A fixture whose server has a CA of its own (that no test has trusted).
pub async fn start_with_own_ca() -> GitFixture {
    fixture(
        GitServer::start_with_own_ca()
            .await
            .expect("starting the Git server"),
    )
}

fn fixture(server: GitServer) -> GitFixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("git-ca.pem");
    server.write_ca_file(&ca_file).expect("writing the CA file");
    GitFixture {
        server,
        dir,
        ca_file,
    }
}

impl GitFixture {
    /// A spec for `repo` over HTTPS with `token`, trusting the server's CA.
    pub fn https_spec(&self, repo: &str, token: &str) -> RepoSpec {
        RepoSpec {
            url: self.server.url(repo),
            branch: "main".into(),
            path_prefix: String::new(),
            author_name: "gitops-bootstrap tests".into(),
            author_email: "tests@example.invalid".into(),
            ca_file: Some(self.ca_file.clone()),
            credentials: GitCredentials::Token {
                username: "x-access-token".into(),
                token: token.into(),
            },
        }
    }

    /// A fresh directory for a working clone.
    pub fn clone_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("clones").join(name)
    }

    /// A repository seeded with one commit on `main`.
    pub fn seeded_repo(&self, name: &str) -> String {
        self.server.create_repo(name).expect("creating the repo");
        self.server
            .commit_files(name, "main", &[("README.md", "seed\n")], "seed")
            .expect("seeding the repo")
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

/// Runs `git <args>` hermetically (no user or system config) and returns its output.
pub fn git(args: &[&str], cwd: &Path, envs: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .envs(envs.iter().copied())
        .output()
        .expect("running git")
}
