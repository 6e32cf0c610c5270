//! The testkit's acceptance walkthrough, done as a new user would, through processes only: the
//! built `test-cluster --flux` binary with its HTTPS Git server seeded from a directory, then
//! the real `kubectl` against the kubeconfig it writes: `kubectl create namespace|configmap|
//! deployment`, `get --watch` and `delete namespace --wait`, a CRD and a custom resource applied
//! server-side, the generated Flux components installed, and a GitRepository, Kustomization
//! and HelmRelease (cert-manager from the chart catalogue) waited for until Ready.
//! README "Try it by hand" shows the same steps as shell commands.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::support::cluster::WIDGET_CRD;

/// Budget for one `kubectl` call; `kubectl wait` itself is given [`WAIT_FLAG`], less than this.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(75);
const WAIT_FLAG: &str = "--timeout=60s";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

const WIDGET: &str = "\
apiVersion: example.com/v1
kind: Widget
metadata:
  name: hello
  namespace: default
spec:
  size: 3
";

/// The seeded app: `seed/apps/demo/` in the repository, since the seed directory is committed
/// under its own name.
const SEED_APP: &[(&str, &str)] = &[
    (
        "kustomization.yaml",
        "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - namespace.yaml
  - helmrepository.yaml
  - helmrelease.yaml
",
    ),
    (
        "namespace.yaml",
        "\
apiVersion: v1
kind: Namespace
metadata:
  name: cert-manager
",
    ),
    (
        "helmrepository.yaml",
        "\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: jetstack
  namespace: cert-manager
spec:
  interval: 1h
  url: https://charts.jetstack.io
",
    ),
    (
        "helmrelease.yaml",
        "\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: cert-manager
  namespace: cert-manager
spec:
  interval: 10m
  chart:
    spec:
      chart: cert-manager
      version: v1.17.2
      sourceRef:
        kind: HelmRepository
        name: jetstack
",
    ),
];

/// The running `test-cluster`, its stderr in a file for failure messages.
struct Sandbox {
    child: Child,
    log: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    git: HashMap<String, String>,
}

impl Sandbox {
    async fn start(binary: &Path, dir: &Path) -> Sandbox {
        let seed_app = dir.join("seed/apps/demo");
        std::fs::create_dir_all(&seed_app).unwrap();
        for (name, content) in SEED_APP {
            std::fs::write(seed_app.join(name), content).unwrap();
        }
        let log = dir.join("test-cluster.log");
        let kubeconfig = dir.join("kubeconfig");
        let child = Command::new(binary)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--flux")
            .arg("--git-dir")
            .arg(dir.join("git"))
            .arg("--seed-repo")
            .arg(dir.join("seed"))
            .arg("--flux-manifests-out")
            .arg(dir.join("gotk-components.yaml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("starting test-cluster");
        let mut sandbox = Sandbox {
            child,
            log,
            kubeconfig,
            // A discovery cache of our own: another run may have used the same port.
            cache_dir: dir.join("kube-cache"),
            git: HashMap::new(),
        };
        sandbox.git = sandbox
            .wait_for_connection_env(&dir.join("git/connection.env"))
            .await;
        sandbox
    }

    /// Polls for `connection.env`, written last, once the API and Git servers are up.
    async fn wait_for_connection_env(&mut self, path: &Path) -> HashMap<String, String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(content) = std::fs::read_to_string(path)
                && content.ends_with('\n')
            {
                return content
                    .lines()
                    .filter_map(|line| line.split_once('='))
                    .map(|(key, value)| (key.to_owned(), value.to_owned()))
                    .collect();
            }
            if let Some(status) = self.child.try_wait().expect("polling test-cluster") {
                panic!("test-cluster exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no {} after {STARTUP_TIMEOUT:?}:\n{}",
                path.display(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn git_setting(&self, key: &str) -> &str {
        self.git
            .get(key)
            .unwrap_or_else(|| panic!("connection.env lacks {key}: {:?}", self.git.keys()))
    }

    /// `kubectl --kubeconfig <ours> <args>` with `stdin` as input; panics on failure or
    /// timeout with kubectl's output and the server's log. Returns stdout.
    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("running kubectl");
        let mut input = child.stdin.take().expect("kubectl stdin");
        let content = stdin.unwrap_or_default().to_owned();
        // Written beside the wait so a large manifest cannot block on a full pipe.
        let write = async move {
            tokio::io::AsyncWriteExt::write_all(&mut input, content.as_bytes()).await
        };
        let (written, output) = tokio::time::timeout(KUBECTL_TIMEOUT, async {
            tokio::join!(write, child.wait_with_output())
        })
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} timed out:\n{}", self.log()));
        written.expect("writing kubectl's stdin");
        let output = output.expect("waiting for kubectl");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}):\n{stdout}{}\ntest-cluster log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        stdout
    }

    async fn apply(&self, manifest: &str) -> String {
        self.kubectl(&["apply", "--server-side", "-f", "-"], Some(manifest))
            .await
    }

    /// SIGTERM, as Ctrl-C would; the exit status once it is gone.
    async fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().expect("test-cluster still running");
        let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits i32"));
        kill(pid, Signal::SIGTERM).expect("sending SIGTERM");
        tokio::time::timeout(SHUTDOWN_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("test-cluster ignored SIGTERM:\n{}", self.log()))
            .expect("waiting for test-cluster")
    }
}

/// The Secret in Flux's https format, in `data` (base64) as `kubectl get -o yaml` shows it.
fn git_auth_secret(read_token: &str, ca_pem: &str) -> String {
    let encode = |value: &str| base64::engine::general_purpose::STANDARD.encode(value);
    format!(
        "\
apiVersion: v1
kind: Secret
metadata:
  name: gitops-auth
  namespace: flux-system
type: Opaque
data:
  username: {}
  password: {}
  ca.crt: {}
",
        encode("git"),
        encode(read_token.trim()),
        encode(ca_pem)
    )
}

fn sync_manifest(git_url: &str) -> String {
    format!(
        "\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: gitops
  namespace: flux-system
spec:
  interval: 1m
  url: {git_url}
  ref:
    branch: main
  secretRef:
    name: gitops-auth
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: demo
  namespace: flux-system
spec:
  interval: 10m
  path: ./seed/apps/demo
  prune: true
  sourceRef:
    kind: GitRepository
    name: gitops
"
    )
}

async fn custom_resource_round_trip(sandbox: &Sandbox) {
    sandbox.apply(WIDGET_CRD).await;
    sandbox
        .kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "crd/widgets.example.com",
                WAIT_FLAG,
            ],
            None,
        )
        .await;
    sandbox.apply(WIDGET).await;
    let size = sandbox
        .kubectl(
            &[
                "get",
                "widget",
                "hello",
                "-n",
                "default",
                "-o",
                "jsonpath={.spec.size}",
            ],
            None,
        )
        .await;
    assert_eq!(size, "3", "the custom resource read back");
}

/// The imperative commands a user types first (kubectl sends protobuf bodies for them), a
/// watch that ends at its request timeout, and a namespace deletion waited for.
async fn imperative_commands(sandbox: &Sandbox) {
    let ns = ["-n", "walk"];
    sandbox
        .kubectl(&["create", "namespace", "walk"], None)
        .await;
    let created = sandbox
        .kubectl(
            &[
                &[
                    "create",
                    "configmap",
                    "greeting",
                    "--from-literal=hello=world",
                ][..],
                &ns,
            ]
            .concat(),
            None,
        )
        .await;
    assert_eq!(created.trim(), "configmap/greeting created");
    sandbox
        .kubectl(
            &[
                &["create", "deployment", "web", "--image=nginx:1.27"][..],
                &ns,
            ]
            .concat(),
            None,
        )
        .await;
    let strategy = sandbox
        .kubectl(
            &[
                &[
                    "get",
                    "deployment",
                    "web",
                    "-o",
                    "jsonpath={.spec.strategy.type}",
                ][..],
                &ns,
            ]
            .concat(),
            None,
        )
        .await;
    assert_eq!(strategy, "RollingUpdate", "the server's defaults");
    let watched = sandbox
        .kubectl(
            &[
                &["get", "configmaps", "--watch", "--request-timeout=2s"][..],
                &ns,
            ]
            .concat(),
            None,
        )
        .await;
    assert!(watched.contains("greeting"), "{watched}");
    sandbox
        .kubectl(&["delete", "namespace", "walk", "--wait", WAIT_FLAG], None)
        .await;
    let left = sandbox
        .kubectl(&["get", "namespaces", "-o", "name"], None)
        .await;
    assert!(!left.contains("namespace/walk\n"), "{left}");
}

async fn install_flux(sandbox: &Sandbox, components: &Path) {
    let manifest = std::fs::read_to_string(components).expect("the Flux components manifest");
    assert!(
        manifest.starts_with("# Flux version: v2.4.0"),
        "{manifest:.80}"
    );
    sandbox.apply(&manifest).await;
    sandbox
        .kubectl(
            &[
                "wait",
                "--for=condition=Available",
                "deployment",
                "--all",
                "-n",
                "flux-system",
                WAIT_FLAG,
            ],
            None,
        )
        .await;
}

async fn sync_from_git(sandbox: &Sandbox) {
    let read_token = std::fs::read_to_string(sandbox.git_setting("GIT_READ_TOKEN_FILE"))
        .expect("the read token file");
    let ca_pem = std::fs::read_to_string(sandbox.git_setting("GIT_CA_FILE")).expect("the CA");
    sandbox.apply(&git_auth_secret(&read_token, &ca_pem)).await;
    sandbox
        .apply(&sync_manifest(sandbox.git_setting("GIT_URL")))
        .await;
    for (namespace, object) in [
        ("flux-system", "gitrepository/gitops"),
        ("flux-system", "kustomization/demo"),
        ("cert-manager", "helmrelease/cert-manager"),
    ] {
        sandbox
            .kubectl(
                &[
                    "wait",
                    "--for=condition=Ready",
                    object,
                    "-n",
                    namespace,
                    WAIT_FLAG,
                ],
                None,
            )
            .await;
    }
    let revision = sandbox
        .kubectl(
            &[
                "get",
                "gitrepository/gitops",
                "-n",
                "flux-system",
                "-o",
                "jsonpath={.status.artifact.revision}",
            ],
            None,
        )
        .await;
    assert!(revision.starts_with("main@sha1:"), "revision {revision:?}");
    let deployments = sandbox
        .kubectl(
            &[
                "get",
                "deployments",
                "-n",
                "cert-manager",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
            None,
        )
        .await;
    assert_eq!(
        deployments.split_whitespace().collect::<Vec<_>>(),
        [
            "cert-manager",
            "cert-manager-cainjector",
            "cert-manager-webhook"
        ],
        "the chart's Deployments"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn new_user_reaches_ready_flux_objects_with_kubectl_against_test_cluster() {
    // Cargo builds the package's binaries before its integration tests.
    let binary = Path::new(env!("CARGO_BIN_EXE_test-cluster"));
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = Sandbox::start(binary, dir.path()).await;
    imperative_commands(&sandbox).await;
    custom_resource_round_trip(&sandbox).await;
    install_flux(&sandbox, &dir.path().join("gotk-components.yaml")).await;
    sync_from_git(&sandbox).await;
    let log = sandbox.log();
    let status = sandbox.stop().await;
    assert!(status.success(), "test-cluster exit {status}:\n{log}");
}
