//! Helpers around the testkit's [`TestCluster`] for integration tests: start one, run
//! kubectl against it with a timeout, build typed APIs.

use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
pub use testkit::cluster::TestCluster;
use testkit::shared::Cleanup;

/// A namespaced custom resource type `Widget` (short name `wd`) with a status subresource and
/// a free-form schema.
pub const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

/// A test's cluster with a namespace of the test's own, which kubectl uses by default; a shared
/// cluster (`GITOPS_BOOTSTRAP_TEST_KUBECONFIG`) is left as the test found it. Declare the Flux
/// stand-ins after it, so they stop before it is restored.
pub struct Cluster {
    cluster: TestCluster,
    namespace: String,
    /// A kubeconfig whose context defaults to `namespace`.
    kubectl_config: tempfile::TempDir,
    _cleanup: Cleanup,
}

impl std::ops::Deref for Cluster {
    type Target = TestCluster;

    fn deref(&self) -> &TestCluster {
        &self.cluster
    }
}

impl Cluster {
    async fn around(cluster: TestCluster) -> Cluster {
        let cleanup = Cleanup::of(&cluster).await;
        let namespace = format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let namespaces: Api<Namespace> = Api::all(cluster.client());
        let mut object = Namespace::default();
        object.metadata.name = Some(namespace.clone());
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .expect("creating the test's namespace");
        let mut kubeconfig: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(cluster.kubeconfig_yaml()).expect("the kubeconfig");
        for context in kubeconfig["contexts"]
            .as_sequence_mut()
            .expect("kubeconfig contexts")
        {
            context["context"]["namespace"] = namespace.clone().into();
        }
        let kubectl_config = tempfile::tempdir().expect("a dir for the kubeconfig");
        testkit::apiserver::write_private(
            &kubectl_config.path().join("kubeconfig"),
            &serde_yaml_ng::to_string(&kubeconfig).expect("a kubeconfig"),
        )
        .expect("writing the kubeconfig");
        Cluster {
            cluster,
            namespace,
            kubectl_config,
            _cleanup: cleanup,
        }
    }

    /// The test's own namespace (removed with a shared cluster's leftovers).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn kubectl_config(&self) -> std::path::PathBuf {
        self.kubectl_config.path().join("kubeconfig")
    }
}

/// Starts the test cluster (in-process unless `GITOPS_BOOTSTRAP_TEST_KUBECONFIG` is set).
pub async fn start() -> Cluster {
    Cluster::around(
        TestCluster::start()
            .await
            .expect("starting the test cluster"),
    )
    .await
}

/// Starts an in-process cluster, for tests that need its admin handle.
pub async fn start_in_process() -> Cluster {
    Cluster::around(
        TestCluster::start_in_process(Default::default())
            .await
            .expect("starting the in-process test cluster"),
    )
    .await
}

/// Runs `kubectl <args>` against `cluster` with `stdin`, killed after `timeout`.
pub async fn kubectl_with_input(
    cluster: &Cluster,
    args: &[&str],
    stdin: Option<&str>,
    timeout: Duration,
) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let mut command = tokio::process::Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(cluster.kubectl_config())
        .args(["--request-timeout", "20s"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .env("HOME", std::env::temp_dir())
        .env(
            "KUBECACHEDIR",
            tempfile::tempdir().expect("cache dir").keep(),
        );
    let mut child = command.spawn().expect("spawning kubectl");
    let mut input = child.stdin.take().expect("kubectl stdin");
    if let Some(text) = stdin {
        input
            .write_all(text.as_bytes())
            .await
            .expect("writing kubectl stdin");
    }
    drop(input);
    tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} took longer than {timeout:?}"))
        .expect("running kubectl")
}

/// Runs `kubectl <args>` with a 30 s limit.
pub async fn kubectl(cluster: &Cluster, args: &[&str]) -> Output {
    kubectl_with_input(cluster, args, None, Duration::from_secs(30)).await
}

/// Runs kubectl and returns stdout, failing the test with stderr when kubectl fails.
pub async fn kubectl_ok(cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> String {
    let output = kubectl_with_input(cluster, args, stdin, Duration::from_secs(30)).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A namespaced typed API.
pub fn api<K>(cluster: &Cluster, namespace: &str) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::namespaced(cluster.client(), namespace)
}
