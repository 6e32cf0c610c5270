//! Helpers around the testkit's Git server: a fixture, and the git CLI run hermetically.

use std::path::Path;

pub use testkit::git::{GitFixture, SshGitServer};

pub async fn start() -> GitFixture {
    GitFixture::start().await.expect("starting the Git server")
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
