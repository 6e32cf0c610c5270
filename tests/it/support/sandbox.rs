//! A whole sandbox for the product binary: the test cluster with Flux stand-ins, an HTTPS Git
//! server holding a GitOps repository seeded with the shipped `profiles/`, and a config file
//! for env `dev` on `terraform/existing`. Runs `gitops-bootstrap` as a child process, as a user
//! would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use gitops_bootstrap::cluster::ownership::{self, RECORD_ANNOTATIONS};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use testkit::cluster::TestCluster;
use testkit::env_config::{ConfigFile, EnvConfig, Push, Repository};
use testkit::flux::{Controllers, FluxOptions};
use testkit::git::GitServer;

use testkit::shared::Cleanup;

pub const REPO: &str = "gitops";
pub const BRANCH: &str = "main";
pub const ENV: &str = "dev";
pub const FLUX_VERSION: &str = "v2.4.0";
const FLUX: &str = "flux-system";
/// Test runs of the binary are killed after this: a hang fails the test instead of CI.
const RUN_LIMIT: Duration = Duration::from_secs(300);

pub struct Sandbox {
    pub cluster: TestCluster,
    pub git: GitServer,
    /// `None` only while the sandbox is dropped.
    flux: Option<Controllers>,
    pub dir: tempfile::TempDir,
    pub push_token: String,
    /// On a shared cluster: what it held before, restored when the sandbox ends.
    _cleanup: Cleanup,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Stop the Flux stand-ins before the fields (the cleanup among them) go.
        self.flux = None;
    }
}

/// What a run of the binary printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// What a person reads of a text run: the result on stdout, then stderr without the
    /// progress lines between the steps (what a terminal shows on its spinners: how many there
    /// are depends on timing). Its lines keep their timestamps, for the snapshot filters.
    pub fn shown(&self) -> String {
        // A progress line is indented under its timestamp; a step's, a notice's or an error's
        // first line is not, and the rest of a multi-line error has no timestamp.
        let progress = regex::Regex::new(r"^\d\d:\d\d:\d\d   ").unwrap();
        let stderr: Vec<&str> = self
            .stderr
            .lines()
            .filter(|line| !progress.is_match(line))
            .collect();
        let mut shown = String::new();
        for (stream, text) in [
            ("stdout", self.stdout.trim_end()),
            ("stderr", &stderr.join("\n")),
        ] {
            if !text.is_empty() {
                shown.push_str(&format!("[{stream}]\n{text}\n"));
            }
        }
        shown
    }

    /// The error on stderr and its hint, without the progress before it.
    pub fn error_report(&self) -> String {
        let start = self
            .stderr
            .find("✘ error")
            .unwrap_or_else(|| panic!("an error report: {}", self.output()));
        self.stderr[start..].trim_end().to_owned()
    }

    /// The events of a `--output json` run but its progress (as many as the timing gives),
    /// one pretty-printed JSON array for a snapshot.
    pub fn events(&self) -> String {
        let events: Vec<serde_json::Value> = self
            .stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("every stdout line is JSON"))
            .filter(|event: &serde_json::Value| event["event"] != "progress")
            .collect();
        serde_json::to_string_pretty(&events).unwrap()
    }
}

impl Sandbox {
    pub async fn start() -> Sandbox {
        Sandbox::start_with(FluxOptions::default()).await
    }

    /// A sandbox whose Flux stand-ins run with `flux` (e.g. Flux's own pace).
    pub async fn start_with(flux: FluxOptions) -> Sandbox {
        let cluster = TestCluster::start()
            .await
            .expect("starting the test cluster");
        Sandbox::with_cluster(cluster, flux).await
    }

    /// A sandbox whose repository holds `seed` (committed under the directory's own name)
    /// instead of the shipped `profiles/`.
    pub async fn start_seeded(seed: &Path) -> Sandbox {
        Sandbox::start_seeded_with(seed, FluxOptions::default()).await
    }

    /// [`Sandbox::start_seeded`] with Flux's stand-ins run with `flux`.
    pub async fn start_seeded_with(seed: &Path, flux: FluxOptions) -> Sandbox {
        let cluster = TestCluster::start()
            .await
            .expect("starting the test cluster");
        Sandbox::seeded(cluster, flux, seed).await
    }

    /// A sandbox with an API server of its own, for tests that act on a whole cluster (a
    /// teardown deletes every LoadBalancer Service and PVC in it).
    pub async fn start_isolated() -> Sandbox {
        let cluster = TestCluster::start_in_process(testkit::apiserver::ServerOptions::default())
            .await
            .expect("starting an in-process test cluster");
        Sandbox::with_cluster(cluster, FluxOptions::default()).await
    }

    /// The repository holds the shipped `profiles/`.
    async fn with_cluster(cluster: TestCluster, flux: FluxOptions) -> Sandbox {
        let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        Sandbox::seeded(cluster, flux, &profiles).await
    }

    async fn seeded(cluster: TestCluster, flux: FluxOptions, seed: &Path) -> Sandbox {
        release(&cluster.client()).await;
        let cleanup = Cleanup::of(&cluster).await;
        let flux = Controllers::start(cluster.client(), flux);
        let git = GitServer::start().await.expect("starting the Git server");
        git.create_repo(REPO)
            .expect("creating the GitOps repository");
        git.commit_dir(REPO, BRANCH, seed, "seed")
            .expect("seeding the repository");
        let dir = tempfile::tempdir().expect("sandbox dir");
        git.write_ca_file(&dir.path().join("git-ca.pem"))
            .expect("writing the Git CA");
        std::fs::write(
            dir.path().join("gotk-components.yaml"),
            testkit::flux::components_manifest(FLUX_VERSION),
        )
        .expect("writing the Flux components");
        let push_token = git.push_token().to_owned();
        Sandbox {
            cluster,
            git,
            flux: Some(flux),
            dir,
            push_token,
            _cleanup: cleanup,
        }
    }

    /// Replaces the cluster by a new, empty one with Flux stand-ins of its own, as after a
    /// disaster; the old API server stops. The config must be written again to point at it.
    pub async fn wipe_cluster(&mut self) {
        let cluster = TestCluster::start_in_process(testkit::apiserver::ServerOptions::default())
            .await
            .expect("starting an in-process test cluster");
        self.flux = Some(Controllers::start(cluster.client(), FluxOptions::default()));
        self.cluster = cluster;
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn repo_url(&self) -> String {
        self.git.url(REPO)
    }

    /// Where runs in the sandbox keep the age key of env `dev` of the sandbox's repository:
    /// under the sandbox's XDG config dir, in the repository's own directory.
    pub fn age_key_file(&self) -> PathBuf {
        self.age_key_file_for(&self.repo_url())
    }

    /// Where runs in the sandbox keep the age key of env `dev` of the repository at `url`.
    pub fn age_key_file_for(&self, url: &str) -> PathBuf {
        let owner = gitops_bootstrap::keys::KeyOwner::new(ENV, url, "");
        self.path("xdg/gitops-bootstrap/age")
            .join(owner.repository)
            .join("dev.agekey")
    }

    /// The config of one env on the sandbox's settings: `terraform/existing` with cluster
    /// `cluster_name` at `kubeconfig`, profile `standard`, the offline Flux components, and the
    /// repository at `repo_url` with the sandbox's CA and tokens.
    pub fn env_config(&self, cluster_name: &str, kubeconfig: &Path, repo_url: &str) -> EnvConfig {
        let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/existing");
        let repository = Repository {
            branch: Some(BRANCH.to_owned()),
            ca_file: Some(self.path("git-ca.pem")),
            ..Repository::new(
                repo_url,
                ("gitops-bootstrap tests", "tests@example.test"),
                Push::token("SANDBOX_GIT_PUSH_TOKEN"),
            )
            .with_read_token("SANDBOX_GIT_READ_TOKEN")
        };
        EnvConfig {
            flux_manifests: Some(self.path("gotk-components.yaml").display().to_string()),
            ..EnvConfig::on_module(module, "standard")
        }
        .with_flux_version(FLUX_VERSION)
        .with_variable("cluster_name", cluster_name)
        .with_variable("kubeconfig_path", kubeconfig.display().to_string())
        .with_variable(
            "cluster_config",
            serde_json::json!({"base_domain": "sandbox.example.test"}),
        )
        .with_secret_variable("cluster_secrets", "SANDBOX_CLUSTER_SECRETS")
        .with_repository(repository)
    }

    /// Env `dev` on the sandbox's own cluster and repository.
    pub fn dev_config(&self) -> EnvConfig {
        self.env_config("sandbox", self.cluster.kubeconfig_path(), &self.repo_url())
    }

    /// Writes the config file the runs read.
    pub fn write_config_file(&self, file: &ConfigFile) {
        file.write(&self.path("gitops-bootstrap.toml"))
            .expect("writing the config");
    }

    /// Writes a config file holding env `dev` alone, as `env`.
    pub fn write_dev_config(&self, env: EnvConfig) {
        self.write_config_file(&ConfigFile::of_env(ENV, env));
    }

    /// Writes the config for the sandbox's own cluster and repository.
    pub fn write_config(&self) {
        self.write_dev_config(self.dev_config());
    }

    /// Writes the config of env `dev` and env `other`, both given the sandbox's one cluster
    /// (`other` misconfigured with `dev`'s kubeconfig).
    pub fn write_config_sharing_the_cluster(&self, other: &str) {
        let file = ConfigFile::of_env(ENV, self.dev_config()).with_env(other, self.dev_config());
        self.write_config_file(&file);
    }

    /// Writes the config of env `dev` on an existing root (a copy of tests/fixtures/eks-root at
    /// `dir` in the sandbox: its own backend `path`, its own addresses, outputs named like the
    /// public EKS module's and mapped), run in place; returns the root's path.
    pub fn write_eks_root_config(&self, dir: &str) -> PathBuf {
        let root = self.path(dir);
        std::fs::create_dir_all(&root).unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eks-root");
        std::fs::copy(fixture.join("main.tf"), root.join("main.tf")).unwrap();
        let mut env = EnvConfig {
            module: None,
            root: Some(PathBuf::from(dir)),
            ..self.dev_config()
        }
        .with_output(
            "cluster_ca_certificate",
            "cluster_certificate_authority_data",
        )
        .with_output(
            "cluster_config",
            serde_json::json!({
                "vpc_id": "vpc_id",
                "node_count": "eks_managed_node_groups.default.desired_size",
                "spot": "eks_managed_node_groups.default.spot",
            }),
        );
        env.variables.remove("cluster_config");
        env.secret_variables.clear();
        self.write_dev_config(env);
        root
    }

    /// Runs `gitops-bootstrap <args>` in the sandbox dir with the sandbox's credentials.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[]).await
    }

    pub async fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let output = tokio::time::timeout(RUN_LIMIT, command.output())
            .await
            .expect("gitops-bootstrap ran past the test limit")
            .expect("running gitops-bootstrap");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `gitops-bootstrap <args>` ready to run in the sandbox dir with the sandbox's
    /// credentials, its output piped.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gitops-bootstrap"));
        command.args(args);
        self.prepare(command)
    }

    /// `gitops-bootstrap <args>` in a terminal of its own: util-linux `script` gives it a pty
    /// for stdin, stdout and stderr, and what the test writes to the returned command's stdin
    /// is typed at that terminal. Its stdout carries everything the terminal showed.
    pub fn in_terminal(&self, args: &[&str]) -> tokio::process::Command {
        let binary = env!("CARGO_BIN_EXE_gitops-bootstrap");
        let line = shlex::try_join(std::iter::once(binary).chain(args.iter().copied()))
            .expect("arguments a shell can quote");
        let mut command = tokio::process::Command::new("script");
        command.args(["--quiet", "--return", "--command", &line, "/dev/null"]);
        let mut command = self.prepare(command);
        command.stdin(Stdio::piped());
        command
    }

    /// `command` run in the sandbox dir with the sandbox's config and credentials, its output
    /// piped.
    fn prepare(&self, mut command: tokio::process::Command) -> tokio::process::Command {
        command
            .env(
                "GITOPS_BOOTSTRAP_CONFIG",
                self.path("gitops-bootstrap.toml"),
            )
            .env("SANDBOX_GIT_PUSH_TOKEN", &self.push_token)
            .env("SANDBOX_GIT_READ_TOKEN", self.git.read_token())
            .env(
                "SANDBOX_CLUSTER_SECRETS",
                r#"{"dns_api_token" = "sandbox-dns-token"}"#,
            );
        super::isolated(command, self.dir.path())
    }

    /// Commits one file to the GitOps branch, as someone else would.
    pub fn commit_file(&self, path: &str, content: &str, message: &str) {
        self.git
            .commit_files(REPO, BRANCH, &[(path, content)], message)
            .expect("committing to the GitOps branch");
    }

    /// The `git` CLI run in `dir` as a user with push access to the sandbox's repository: the
    /// server's CA and the push token (in an `Authorization` header from the environment, never
    /// argv) configured for it.
    pub fn git_cli(&self, dir: &Path) -> std::process::Command {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("x-access-token:{}", self.push_token));
        let mut command = std::process::Command::new("git");
        command
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.path("git-home"))
            .env("GIT_SSL_CAINFO", self.path("git-ca.pem"))
            .env("GIT_CONFIG_COUNT", "3")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            )
            .env("GIT_CONFIG_KEY_1", "user.name")
            .env("GIT_CONFIG_VALUE_1", "a user")
            .env("GIT_CONFIG_KEY_2", "user.email")
            .env("GIT_CONFIG_VALUE_2", "user@example.test");
        command
    }

    /// The commits of the GitOps branch, newest first.
    pub fn log(&self) -> Vec<String> {
        self.git.log(REPO, BRANCH).expect("reading the branch log")
    }

    pub fn committed(&self, path: &str) -> Option<String> {
        self.git
            .read_file(REPO, BRANCH, path)
            .expect("reading the repository")
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Commits `path` with `from` replaced by `to`, as a user fixing (or breaking) it would.
    pub fn replace_in_repo(&self, path: &str, from: &str, to: &str) {
        let content = self.committed(path).expect("file in the repository");
        assert!(content.contains(from), "{path} holds {from}");
        self.git
            .commit_files(
                REPO,
                BRANCH,
                &[(path, &content.replace(from, to))],
                "test change",
            )
            .expect("committing the change");
    }
}

/// A long-lived test cluster (`GITOPS_BOOTSTRAP_TEST_KUBECONFIG`) still holds the env of the
/// test before, whose ownership record would refuse this sandbox's env as another env's:
/// release it as a teardown would — the record, and Flux's sync objects (their finalizers
/// dropped: no controller runs between two tests, and Flux's own would prune the apps). A fresh
/// cluster has none of it.
async fn release(client: &kube::Client) {
    let params = PatchParams::default();
    let record: serde_json::Map<String, serde_json::Value> = RECORD_ANNOTATIONS
        .iter()
        .map(|key| (key.to_string(), serde_json::Value::Null))
        .collect();
    let unrecord = serde_json::json!({"metadata": {
        "annotations": record,
        "labels": {ownership::MANAGED_BY_LABEL: null},
    }});
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces
        .get_opt(FLUX)
        .await
        .expect("reading flux-system")
        .is_none()
    {
        return;
    }
    namespaces
        .patch(FLUX, &params, &Patch::Merge(&unrecord))
        .await
        .expect("removing the ownership record");
    for (group, kind, plural, name) in ownership::SYNC_KINDS {
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), FLUX, &resource);
        let Ok(Some(_)) = api.get_opt(name).await else {
            continue;
        };
        let unfinalize = serde_json::json!({"metadata": {"finalizers": null}});
        api.patch(name, &params, &Patch::Merge(&unfinalize))
            .await
            .expect("dropping the finalizers of a sync object");
        api.delete(name, &DeleteParams::default())
            .await
            .expect("deleting a sync object");
    }
}
