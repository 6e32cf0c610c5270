//! The cluster a test talks to: an already running API server named by
//! `GITOPS_BOOTSTRAP_TEST_KUBECONFIG`, or else a fresh in-process [`ApiServer`].

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::apiserver::{self, Admin, ApiServer, ServerOptions};

/// Names a kubeconfig of a running API server to test against instead of an in-process one.
pub const KUBECONFIG_ENV: &str = "GITOPS_BOOTSTRAP_TEST_KUBECONFIG";

pub struct TestCluster {
    server: Option<ApiServer>,
    admin: Option<Admin>,
    client: kube::Client,
    kubeconfig_yaml: String,
    kubeconfig_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("in_process", &self.server.is_some())
            .field("kubeconfig_path", &self.kubeconfig_path)
            .finish_non_exhaustive()
    }
}

impl TestCluster {
    /// Connects to the cluster named by [`KUBECONFIG_ENV`], else starts an in-process server.
    pub async fn start() -> anyhow::Result<TestCluster> {
        match std::env::var_os(KUBECONFIG_ENV) {
            Some(path) => {
                let yaml = std::fs::read_to_string(&path).with_context(|| {
                    format!("reading {KUBECONFIG_ENV}={}", Path::new(&path).display())
                })?;
                TestCluster::assemble(None, yaml).await
            }
            None => TestCluster::start_in_process(ServerOptions::default()).await,
        }
    }

    /// Always starts an in-process server (for tests that need [`TestCluster::admin`]).
    pub async fn start_in_process(options: ServerOptions) -> anyhow::Result<TestCluster> {
        let server = ApiServer::start(options).await?;
        let yaml = server.kubeconfig_yaml();
        TestCluster::assemble(Some(server), yaml).await
    }

    async fn assemble(
        server: Option<ApiServer>,
        kubeconfig_yaml: String,
    ) -> anyhow::Result<TestCluster> {
        let dir = tempfile::tempdir().context("creating a temp dir for the kubeconfig")?;
        let kubeconfig_path = dir.path().join("kubeconfig");
        apiserver::write_private(&kubeconfig_path, &kubeconfig_yaml)?;
        let client = apiserver::client_from_kubeconfig(&kubeconfig_yaml).await?;
        Ok(TestCluster {
            admin: server.as_ref().map(ApiServer::admin),
            server,
            client,
            kubeconfig_yaml,
            kubeconfig_path,
            _dir: dir,
        })
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A 0600 kubeconfig file for child processes (the product binary, kubectl).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    pub fn kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig_yaml
    }

    /// Fault injection and counters; only for an in-process server.
    pub fn admin(&self) -> Option<&Admin> {
        self.admin.as_ref()
    }

    pub fn server(&self) -> Option<&ApiServer> {
        self.server.as_ref()
    }
}
