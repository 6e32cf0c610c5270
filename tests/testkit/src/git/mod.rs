//! A Git server for the tests: bare repositories in a temp dir served over HTTPS smart HTTP
//! (git's own `git http-backend` behind token authentication, see [`http`]) and, on demand,
//! over ssh by a loopback `sshd` ([`SshGitServer`]). Test helpers read and write the
//! repositories directly, protect a branch with a declining hook, and race a client's push.

mod fixture;
mod http;
mod repo;
mod ssh;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::tls::{TestCa, serve_https};

pub use fixture::GitFixture;
pub use ssh::SshGitServer;

/// A bare repository the server holds.
#[derive(Debug, Clone)]
pub struct RepoHandle {
    /// The name in URLs, without `.git`.
    pub name: String,
    /// `https://127.0.0.1:<port>/<name>.git`
    pub url: String,
    /// The bare repository on disk.
    pub path: PathBuf,
}

/// One request the HTTPS server answered: tests count a client's round trips and connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRequest {
    /// The client's address; one per connection.
    pub peer: Option<SocketAddr>,
    pub method: String,
    /// The path after the repository, with its query: `info/refs?service=git-upload-pack`,
    /// `git-upload-pack`, `git-receive-pack`, …
    pub what: String,
    /// The token it carried, `"push"` or `"read"`; `None` without a known one.
    pub token: Option<&'static str>,
    pub status: u16,
}

/// State the request handlers share with the test's handle.
pub(crate) struct Shared {
    root: PathBuf,
    push_token: String,
    read_token: String,
    /// Repo name → branch that the next push advertisement of that repo moves first.
    races: Mutex<HashMap<String, String>>,
    /// Every request answered, in order.
    requests: Mutex<Vec<GitRequest>>,
}

impl Shared {
    fn repo_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.git"))
    }
}

/// The HTTPS Git server. Dropping it stops serving and removes the repositories.
pub struct GitServer {
    shared: Arc<Shared>,
    ca: Arc<TestCa>,
    port: u16,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl GitServer {
    /// Starts serving on a free loopback port with two random tokens, its certificate signed
    /// by the CA all Git servers of this process share.
    ///
    /// Why shared: libgit2 trusts an extra CA by adding it to one process-wide OpenSSL store,
    /// where CAs with the same name shadow each other; one CA keeps every server trusted.
    pub async fn start() -> anyhow::Result<GitServer> {
        static SHARED_CA: OnceLock<Arc<TestCa>> = OnceLock::new();
        if SHARED_CA.get().is_none() {
            // A lost race generates a CA that is dropped: harmless.
            let _ = SHARED_CA.set(Arc::new(TestCa::generate()?));
        }
        Self::start_with_ca(SHARED_CA.get().expect("set above").clone()).await
    }

    /// Like [`GitServer::start`] but with a CA of its own that no client trusts yet, for
    /// tests of untrusted certificates.
    pub async fn start_with_own_ca() -> anyhow::Result<GitServer> {
        Self::start_with_ca(Arc::new(TestCa::generate()?)).await
    }

    async fn start_with_ca(ca: Arc<TestCa>) -> anyhow::Result<GitServer> {
        let dir = tempfile::tempdir().context("creating the repositories dir")?;
        let root = dir.path().join("repos");
        std::fs::create_dir_all(&root)?;
        let tls = ca.server_config()?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("binding the Git server's port")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            root,
            push_token: format!("push-{}", uuid::Uuid::new_v4().simple()),
            read_token: format!("read-{}", uuid::Uuid::new_v4().simple()),
            races: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(serve_https(
            listener,
            tls,
            http::router(shared.clone()),
            shutdown.clone().cancelled_owned(),
        ));
        Ok(GitServer {
            shared,
            ca,
            port,
            shutdown,
            _dir: dir,
        })
    }

    /// Creates an empty bare repository `<name>.git` whose HEAD names `main`.
    pub fn create_repo(&self, name: &str) -> anyhow::Result<RepoHandle> {
        let path = self.shared.repo_path(name);
        repo::init_bare(&path)?;
        Ok(RepoHandle {
            name: name.to_string(),
            url: self.url(name),
            path,
        })
    }

    /// `https://127.0.0.1:<port>/<name>.git`
    pub fn url(&self, name: &str) -> String {
        format!("https://127.0.0.1:{}/{name}.git", self.port)
    }

    /// The directory holding the bare repositories (`<name>.git`), for [`SshGitServer`].
    pub fn repos_dir(&self) -> &Path {
        &self.shared.root
    }

    /// The CA that signed the server's certificate, in PEM.
    pub fn ca_pem(&self) -> &str {
        self.ca.ca_pem()
    }

    /// Writes the CA PEM to `path` (what a client's `ca_file` points at).
    pub fn write_ca_file(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.ca_pem()).with_context(|| format!("writing {}", path.display()))
    }

    /// The token that may fetch and push (test-only: a plain string).
    pub fn push_token(&self) -> &str {
        &self.shared.push_token
    }

    /// The token that may only fetch; pushes with it get 403.
    pub fn read_token(&self) -> &str {
        &self.shared.read_token
    }

    /// Declines every push to `branch` of `repo` from now on, like a protected branch.
    pub fn protect_branch(&self, repo: &str, branch: &str) -> anyhow::Result<()> {
        repo::protect_branch(&self.shared.repo_path(repo), branch)
    }

    /// Merges `source` into `target` of `repo` as a hosting service's merge button does
    /// (past a protected branch's hook); returns the new tip of `target`.
    pub fn merge_branch(&self, repo: &str, source: &str, target: &str) -> anyhow::Result<String> {
        Ok(repo::merge_branch(&self.shared.repo_path(repo), source, target)?.to_string())
    }

    /// On the next push to `repo`, the server first commits another change to `branch`
    /// itself, so the client's push is not a fast-forward.
    pub fn race_next_push(&self, repo: &str, branch: &str) {
        self.shared
            .races
            .lock()
            .expect("race table")
            .insert(repo.to_string(), branch.to_string());
    }

    /// The commit sha `branch` of `repo` points at, if it exists.
    pub fn head(&self, repo: &str, branch: &str) -> anyhow::Result<Option<String>> {
        Ok(repo::head(&self.shared.repo_path(repo), branch)?.map(|oid| oid.to_string()))
    }

    /// The content of `path` at the tip of `branch`; `None` when absent.
    pub fn read_file(
        &self,
        repo: &str,
        branch: &str,
        path: &str,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        repo::read_file(&self.shared.repo_path(repo), branch, path)
    }

    /// Commits `files` (path, content) to `branch` (created when absent); returns the sha.
    pub fn commit_files(
        &self,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> anyhow::Result<String> {
        Ok(repo::commit_files(&self.shared.repo_path(repo), branch, files, message)?.to_string())
    }

    /// Commits every file under `dir` to `branch`, at paths starting with the directory's own
    /// name (`profiles/…` for a `…/profiles` dir); returns the sha.
    pub fn commit_dir(
        &self,
        repo: &str,
        branch: &str,
        dir: &Path,
        message: &str,
    ) -> anyhow::Result<String> {
        let files = files_under(dir)?;
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        self.commit_files(repo, branch, &files, message)
    }

    /// Stops serving, as a Git server that is down: clients get connection refused, while
    /// the test still reads the repositories ([`GitServer::log`], …).
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// Every request answered so far, in order (all repositories).
    pub fn requests(&self) -> Vec<GitRequest> {
        self.shared.requests.lock().expect("request log").clone()
    }

    /// The shas of `branch`'s history, newest first.
    pub fn log(&self, repo: &str, branch: &str) -> anyhow::Result<Vec<String>> {
        repo::log(&self.shared.repo_path(repo), branch)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The text files under `dir` as (path starting with the directory's own name, content).
fn files_under(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let base = dir.parent().unwrap_or(Path::new("/"));
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let content = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                files.push((
                    path.strip_prefix(base)?.to_string_lossy().into_owned(),
                    content,
                ));
            }
        }
    }
    files.sort();
    Ok(files)
}
