//! What the bench runs the product against: a Git server holding the shipped `profiles/`, test
//! clusters (in-process API servers, with or without the Flux stand-ins), a config file per
//! env through `terraform/existing`, and the product binary run in a private directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use kube::Client;
use testkit::apiserver::{Admin, ApiServer, ServerOptions};
use testkit::env_config::{ConfigFile, EnvConfig, Flux, Push, Repository};
use testkit::flux::{Controllers, FluxOptions};
use testkit::git::GitServer;

pub const FLUX_VERSION: &str = "v2.4.0";
const REPO: &str = "gitops";
const BRANCH: &str = "main";
/// The bench's own clients say who they are, so the server counts the product's requests apart.
pub const CONTROLLER_AGENT: &str = "gitops-bootstrap-bench-controller";
pub const POLLER_AGENT: &str = "gitops-bootstrap-bench-poller";

/// How an env's Flux is installed: the classic components, or the Flux Operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Components,
    Operator,
}

pub struct Bench {
    dir: tempfile::TempDir,
    git: GitServer,
    product: PathBuf,
    /// The ~1 MB Flux components file both appliers get.
    pub components: PathBuf,
    /// The stand-in Flux Operator's install manifest, for operator-mode envs.
    operator: PathBuf,
}

/// One test cluster; `flux` runs the stand-ins for Flux's controllers and the kubelet.
pub struct Cluster {
    pub server: ApiServer,
    pub kubeconfig: PathBuf,
    flux: Option<Controllers>,
}

impl Cluster {
    pub fn admin(&self) -> Admin {
        self.server.admin()
    }

    /// A client that identifies itself as `agent` (user agent) to the server's counters.
    pub async fn client(&self, agent: &'static str) -> anyhow::Result<Client> {
        testkit::tls::install_crypto_provider();
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.server.kubeconfig_yaml())?;
        let mut config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(agent),
        ));
        Ok(Client::try_from(config)?)
    }

    /// Stops the Flux stand-ins: from now on the bench writes the Flux objects' status itself.
    pub async fn stop_flux(&mut self) {
        if let Some(flux) = self.flux.take() {
            flux.shutdown().await;
        }
    }
}

impl Bench {
    pub async fn start(product: PathBuf, components_yaml: &str) -> anyhow::Result<Bench> {
        anyhow::ensure!(
            product.is_file(),
            "no gitops-bootstrap binary at {} (build it: cargo build --release --workspace --bins)",
            product.display()
        );
        let dir = tempfile::tempdir()?;
        let git = GitServer::start().await?;
        git.create_repo(REPO)?;
        git.commit_dir(REPO, BRANCH, &repo_root().join("profiles"), "seed")?;
        git.write_ca_file(&dir.path().join("git-ca.pem"))?;
        let components = dir.path().join("gotk-components.yaml");
        std::fs::write(&components, components_yaml)?;
        let operator = dir.path().join("flux-operator.yaml");
        std::fs::write(&operator, testkit::flux::operator_manifest())?;
        Ok(Bench {
            dir,
            git,
            product,
            components,
            operator,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A fresh, empty test cluster named `name` (its kubeconfig is `<name>.kubeconfig`), with
    /// the Flux stand-ins for `flux` (and the stand-in operator for [`Method::Operator`]).
    pub async fn cluster(&self, name: &str, flux: Option<Method>) -> anyhow::Result<Cluster> {
        let server = ApiServer::start(ServerOptions::default()).await?;
        let kubeconfig = self.path(&format!("{name}.kubeconfig"));
        server.write_kubeconfig(&kubeconfig)?;
        let flux = match flux {
            Some(method) => Some(Controllers::start(
                server.client().await?,
                FluxOptions {
                    operator: method == Method::Operator,
                    ..FluxOptions::default()
                },
            )),
            None => None,
        };
        Ok(Cluster {
            server,
            kubeconfig,
            flux,
        })
    }

    /// Writes `<env>.toml`: env `env` through `terraform/existing` on `cluster`, profile
    /// `standard`, the bench's repository and Flux installed by `method` (the components
    /// file, or the operator manifest).
    pub fn write_config(
        &self,
        env: &str,
        cluster: &Cluster,
        method: Method,
    ) -> anyhow::Result<PathBuf> {
        let (manifests, install) = match method {
            Method::Components => (&self.components, "components"),
            Method::Operator => (&self.operator, "operator"),
        };
        let repository = Repository {
            branch: Some(BRANCH.to_owned()),
            ca_file: Some(self.path("git-ca.pem")),
            ..Repository::new(
                &self.git.url(REPO),
                ("gitops-bootstrap bench", "bench@example.test"),
                Push::token("BENCH_GIT_PUSH_TOKEN"),
            )
            .with_read_token("BENCH_GIT_READ_TOKEN")
        };
        let config = EnvConfig {
            flux_manifests: Some(manifests.display().to_string()),
            flux: Some(Flux {
                install: install.to_owned(),
            }),
            ..EnvConfig::on_module(repo_root().join("terraform/existing"), "standard")
        }
        .with_flux_version(FLUX_VERSION)
        .with_variable("cluster_name", env)
        .with_variable("kubeconfig_path", cluster.kubeconfig.display().to_string())
        .with_variable(
            "cluster_config",
            serde_json::json!({"base_domain": "bench.example.test"}),
        )
        .with_secret_variable("cluster_secrets", "BENCH_CLUSTER_SECRETS")
        .with_repository(repository);
        let path = self.path(&format!("{env}.toml"));
        ConfigFile::of_env(env, config)
            .write(&path)
            .context("writing the config")?;
        Ok(path)
    }

    /// `gitops-bootstrap <args>` with `config`, in the bench's directory.
    pub fn product(&self, config: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.product);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("GITOPS_BOOTSTRAP_CONFIG", config)
            .env("BENCH_GIT_PUSH_TOKEN", self.git.push_token())
            .env("BENCH_GIT_READ_TOKEN", self.git.read_token())
            .env(
                "BENCH_CLUSTER_SECRETS",
                r#"{"dns_api_token" = "bench-dns-token"}"#,
            )
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("NO_COLOR", "1");
        command
    }
}

/// The repository's root (this crate lives in tests/testkit).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
