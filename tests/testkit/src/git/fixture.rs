//! A [`GitServer`] with its CA written to a file and a scratch dir, the shape most tests want.

use std::path::PathBuf;

use super::GitServer;

/// A Git server plus a temp dir for its CA file, known_hosts files and working clones.
pub struct GitFixture {
    pub server: GitServer,
    pub dir: tempfile::TempDir,
    pub ca_file: PathBuf,
}

impl GitFixture {
    /// A server trusted through the CA every Git server of this process shares.
    pub async fn start() -> anyhow::Result<GitFixture> {
        GitFixture::around(GitServer::start().await?)
    }

    /// A server with a CA of its own (that no test has trusted).
    pub async fn start_with_own_ca() -> anyhow::Result<GitFixture> {
        GitFixture::around(GitServer::start_with_own_ca().await?)
    }

    fn around(server: GitServer) -> anyhow::Result<GitFixture> {
        let dir = tempfile::tempdir()?;
        let ca_file = dir.path().join("git-ca.pem");
        server.write_ca_file(&ca_file)?;
        Ok(GitFixture {
            server,
            dir,
            ca_file,
        })
    }

    /// A fresh directory for a working clone.
    pub fn clone_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("clones").join(name)
    }

    /// A repository seeded with one commit on `main`; returns that commit's sha.
    pub fn seeded_repo(&self, name: &str) -> anyhow::Result<String> {
        self.server.create_repo(name)?;
        self.server
            .commit_files(name, "main", &[("README.md", "seed\n")], "seed")
    }
}
