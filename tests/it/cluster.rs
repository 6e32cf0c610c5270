//! The `cluster` module against the testkit's in-process API server, Git server and Flux
//! stand-ins: connecting (kubeconfig, endpoint + token, rejected and unreachable), server-side
//! apply and its created/changed/unchanged report, the bootstrap objects in Flux's formats,
//! installing and syncing Flux, and waiting for the apps (Ready, fail-fast, timeout, status).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitops_bootstrap::ExitStatus;
use gitops_bootstrap::cluster::apply::{self, ApplyOptions, ApplyOutcome, CONFIG_MANAGER};
use gitops_bootstrap::cluster::bootstrap::{self, BootstrapInputs, GitReadCredentials, SopsAgeKey};
use gitops_bootstrap::cluster::flux::{self, Components, ComponentsOrigin};
use gitops_bootstrap::cluster::wait::conditions::WantedRevision;
use gitops_bootstrap::cluster::wait::{self, Snapshot, WaitError, WaitTarget};
use gitops_bootstrap::cluster::{ClusterError, ObjectName, Owner, connect};
use gitops_bootstrap::config::{FluxInstall, SubstitutionConfig};
use gitops_bootstrap::contract::{ClusterAccess, Contract, ExecCredential};
use gitops_bootstrap::error::Diagnose as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use secrecy::SecretString;
use testkit::cluster::TestCluster;
use testkit::flux::{Controllers, FluxOptions, components_manifest};
use testkit::git::GitServer;

use testkit::shared::Cleanup;

use crate::support::{snapshot, told};

const FLUX_VERSION: &str = "v2.5.1";
const REPO: &str = "fleet";
const WAIT: Duration = Duration::from_secs(30);

fn endpoint_access(cluster: &TestCluster, token: &str) -> ClusterAccess {
    let server = cluster.server().expect("an in-process API server");
    ClusterAccess::Endpoint {
        endpoint: server.url().to_owned(),
        ca_certificate_pem: server.ca_pem().to_owned(),
        token: SecretString::from(token),
    }
}

#[tokio::test]
async fn connects_with_a_kubeconfig_and_with_endpoint_and_token() {
    let cluster = TestCluster::start_in_process(Default::default())
        .await
        .unwrap();
    let kubeconfig = ClusterAccess::Kubeconfig(SecretString::from(cluster.kubeconfig_yaml()));
    let client = connect(&kubeconfig, WAIT).await.unwrap().client;
    client.apiserver_version().await.unwrap();

    let token = cluster.server().unwrap().token().to_owned();
    let client = connect(&endpoint_access(&cluster, &token), WAIT)
        .await
        .unwrap()
        .client;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    namespaces.get("default").await.unwrap();
}

/// Issue 8 item 12: with endpoint access, a credential plugin (as `aws eks get-token`) is run
/// for the token, and run again once the token it gave expires.
#[tokio::test]
async fn connects_with_endpoint_and_a_credential_plugin_that_is_run_again_on_expiry() {
    let cluster = TestCluster::start_in_process(Default::default())
        .await
        .unwrap();
    let server = cluster.server().unwrap();
    // The fixture's plugin gives a token that expired long ago: every request needs a new run.
    let plugin = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures/exec-access/get-token.sh");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), server.token()).unwrap();
    let access = ClusterAccess::EndpointExec {
        endpoint: server.url().to_owned(),
        ca_certificate_pem: server.ca_pem().to_owned(),
        exec: ExecCredential {
            command: plugin.display().to_string(),
            args: vec!["--cluster-name".to_owned(), "test".to_owned()],
            env: [("PLUGIN_DIR".to_owned(), dir.path().display().to_string())].into(),
        },
    };
    let client = connect(&access, WAIT).await.unwrap().client;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    namespaces.get("default").await.unwrap();
    namespaces.get("default").await.unwrap();
    let count = std::fs::read_to_string(dir.path().join("runs"))
        .unwrap()
        .lines()
        .count();
    assert!(
        count >= 2,
        "the plugin ran again for an expired token ({count} runs)"
    );
}

#[tokio::test]
async fn a_wrong_token_is_rejected_at_once() {
    let cluster = TestCluster::start_in_process(Default::default())
        .await
        .unwrap();
    let started = Instant::now();
    let err = connect(&endpoint_access(&cluster, "not-the-token"), WAIT)
        .await
        .err()
        .expect("connecting should fail");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, ClusterError::Rejected { code: 401, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-token"));
    assert_eq!(err.exit_status(), ExitStatus::BadInput);
    snapshot!("wrong_token_error", told(err));
}

#[tokio::test]
async fn an_api_server_that_never_answers_times_out_within_the_budget() {
    let cluster = TestCluster::start_in_process(Default::default())
        .await
        .unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let access = ClusterAccess::Endpoint {
        endpoint: format!("https://127.0.0.1:{closed_port}"),
        ca_certificate_pem: cluster.server().unwrap().ca_pem().to_owned(),
        token: SecretString::from("token"),
    };
    let started = Instant::now();
    let err = connect(&access, Duration::from_secs(2))
        .await
        .err()
        .expect("connecting should fail");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, ClusterError::Unreachable { attempts: 2.., .. }),
        "{err}"
    );
    assert_eq!(err.exit_status(), ExitStatus::TimedOut);
}

const APP_CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team}
data: {color: blue}
---
apiVersion: v1
kind: Namespace
metadata: {name: team}
";

#[tokio::test]
async fn applying_again_reports_unchanged_and_edits_as_changed() {
    let cluster = TestCluster::start().await.unwrap();
    let _cleanup = Cleanup::of(&cluster).await;
    let client = cluster.client();
    let options = ApplyOptions::new(CONFIG_MANAGER);
    let first = apply::apply_yaml(&client, APP_CONFIG, &options)
        .await
        .unwrap();
    let outcomes: Vec<(String, ApplyOutcome)> = first
        .objects
        .iter()
        .map(|o| (o.object.to_string(), o.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("Namespace team".to_owned(), ApplyOutcome::Created),
            ("ConfigMap team/settings".to_owned(), ApplyOutcome::Created),
        ]
    );
    let again = apply::apply_yaml(&client, APP_CONFIG, &options)
        .await
        .unwrap();
    assert!(again.is_up_to_date(), "{again:?}");

    let edited = APP_CONFIG.replace("blue", "green");
    let changed = apply::apply_yaml(&client, &edited, &options).await.unwrap();
    assert_eq!(changed.count(ApplyOutcome::Changed), 1);
    let settings: Api<ConfigMap> = Api::namespaced(client, "team");
    assert_eq!(
        settings.get("settings").await.unwrap().data.unwrap()["color"],
        "green"
    );
}

#[tokio::test]
async fn custom_resources_wait_for_their_crd_in_the_same_manifest() {
    let cluster = TestCluster::start().await.unwrap();
    let _cleanup = Cleanup::of(&cluster).await;
    let manifest = "apiVersion: example.dev/v1
kind: Widget
metadata: {name: w, namespace: default}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.dev}
spec:
  group: example.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";
    let summary = apply::apply_yaml(
        &cluster.client(),
        manifest,
        &ApplyOptions::new(CONFIG_MANAGER),
    )
    .await
    .unwrap();
    let kinds: Vec<&str> = summary
        .objects
        .iter()
        .map(|o| o.object.kind.as_str())
        .collect();
    assert_eq!(kinds, ["CustomResourceDefinition", "Widget"]);

    let unknown =
        "apiVersion: nowhere.dev/v1\nkind: Gadget\nmetadata: {name: g, namespace: default}\n";
    let err = apply::apply_yaml(
        &cluster.client(),
        unknown,
        &ApplyOptions::new(CONFIG_MANAGER),
    )
    .await
    .unwrap_err();
    snapshot!("unknown_kind_error", told(err));
}

fn contract(kubeconfig: &str) -> Contract {
    Contract {
        contract_version: 1,
        cluster_name: "dev".to_owned(),
        access: ClusterAccess::Kubeconfig(SecretString::from(kubeconfig)),
        network: [("network_vpc_id".to_owned(), "vpc-1".to_owned())].into(),
        cluster_config: [("domain".to_owned(), "dev.example.org".to_owned())].into(),
        cluster_secrets: [("dns_token".to_owned(), SecretString::from("s3cret"))].into(),
        ca_certificate_base64: false,
    }
}

async fn apply_bootstrap(
    client: &Client,
    contract: &Contract,
    git: &GitReadCredentials,
) -> apply::ApplySummary {
    let age_key = SopsAgeKey {
        env_name: "dev".to_owned(),
        identity: SecretString::from("AGE-SECRET-KEY-1TESTKEY"),
    };
    bootstrap::apply_bootstrap_objects(
        client,
        BootstrapInputs {
            contract,
            names: &SubstitutionConfig::default(),
            git,
            age_key: &age_key,
            owner: &Owner {
                env: "dev".to_owned(),
                repository: "https://git.example/gitops.git".to_owned(),
                branch: "main".to_owned(),
                path: "clusters/dev".to_owned(),
            },
            install: FluxInstall::Components,
            flux_version: FLUX_VERSION,
        },
    )
    .await
    .unwrap()
}

fn secret_keys(secret: &Secret) -> Vec<String> {
    secret
        .data
        .as_ref()
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn bootstrap_objects_use_flux_key_names_and_rerun_up_to_date() {
    let cluster = TestCluster::start().await.unwrap();
    let _cleanup = Cleanup::of(&cluster).await;
    let client = cluster.client();
    let contract = contract(cluster.kubeconfig_yaml());
    let git = GitReadCredentials::Ssh {
        identity: SecretString::from("-----BEGIN OPENSSH PRIVATE KEY-----"),
        identity_pub: "ssh-ed25519 AAAA test".to_owned(),
        known_hosts: "[127.0.0.1]:2222 ssh-ed25519 AAAA".to_owned(),
    };
    let first = apply_bootstrap(&client, &contract, &git).await;
    assert_eq!(first.count(ApplyOutcome::Created), 5, "{first:?}");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "flux-system");
    let git_secret = secrets.get(bootstrap::GIT_CREDENTIALS).await.unwrap();
    assert_eq!(
        secret_keys(&git_secret),
        ["identity", "identity.pub", "known_hosts"]
    );
    assert_eq!(
        secret_keys(&secrets.get(bootstrap::SOPS_AGE).await.unwrap()),
        ["dev.agekey"]
    );
    let cluster_secrets = secrets
        .get(&SubstitutionConfig::default().secret)
        .await
        .unwrap();
    assert_eq!(cluster_secrets.data.unwrap()["dns_token"].0, b"s3cret");
    let config: Api<ConfigMap> = Api::namespaced(client.clone(), "flux-system");
    let data = config
        .get(&SubstitutionConfig::default().config_map)
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(data["cluster_name"], "dev");
    assert_eq!(data["domain"], "dev.example.org");
    assert_eq!(data["network_vpc_id"], "vpc-1");

    let again = apply_bootstrap(&client, &contract, &git).await;
    assert!(again.is_up_to_date(), "{again:?}");
}

fn testkit_components() -> Components {
    Components {
        yaml: components_manifest(FLUX_VERSION),
        version: FLUX_VERSION.to_owned(),
        origin: ComponentsOrigin::Committed,
    }
}

/// A cluster with Flux installed by the product, a Git server with repository `fleet`, and
/// the bootstrap objects (Git credentials over https) applied.
struct FluxEnv {
    client: Client,
    git: GitServer,
    _controllers: Controllers,
    /// After the controllers: they stop before the cleanup runs.
    _cleanup: Cleanup,
    _cluster: TestCluster,
}

async fn flux_env() -> FluxEnv {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client();
    let cleanup = Cleanup::of(&cluster).await;
    let controllers = Controllers::start(client.clone(), FluxOptions::default());
    let installed = flux::install(&client, &testkit_components(), WAIT, false)
        .await
        .unwrap();
    assert!(installed.count(ApplyOutcome::Created) > 0);
    let git = GitServer::start().await.unwrap();
    git.create_repo(REPO).unwrap();
    let credentials = GitReadCredentials::Https {
        username: "git".to_owned(),
        password: SecretString::from(git.read_token()),
        ca_pem: Some(git.ca_pem().to_owned()),
    };
    apply_bootstrap(&client, &contract(cluster.kubeconfig_yaml()), &credentials).await;
    FluxEnv {
        client,
        git,
        _controllers: controllers,
        _cleanup: cleanup,
        _cluster: cluster,
    }
}

fn gotk_sync(git: &GitServer) -> String {
    format!(
        "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: flux-system, namespace: flux-system}}
spec:
  interval: 1m
  url: {}
  ref: {{branch: main}}
  secretRef: {{name: flux-system}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: flux-system, namespace: flux-system}}
spec:
  interval: 10m
  path: ./clusters/dev
  prune: true
  sourceRef: {{kind: GitRepository, name: flux-system}}
",
        git.url(REPO)
    )
}

/// A Kustomization `apps` (wait: true) over `./apps`, as a profile would be.
const APPS_KUSTOMIZATION: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps
  prune: true
  wait: true
  timeout: 1m
  sourceRef: {kind: GitRepository, name: flux-system}
";

fn deployment(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: apps
{annotations}spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: main, image: example.invalid/{name}:1}}]
"
    )
}

const APPS_NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n";

fn target(sha: &str) -> WaitTarget {
    WaitTarget {
        root: ObjectName::namespaced("Kustomization", "flux-system", "flux-system"),
        git_repository: ObjectName::namespaced("GitRepository", "flux-system", "flux-system"),
        revision_sha: Some(sha.to_owned()),
        is_descendant: Box::new(|_| false),
        config_reconcile: Default::default(),
    }
}

/// Commits `files`, syncs, and waits; returns the result and every snapshot seen.
async fn push_and_wait(
    env: &FluxEnv,
    files: &[(&str, &str)],
    timeout: Duration,
) -> (Result<Snapshot, WaitError>, Vec<Snapshot>) {
    let sha = env.git.commit_files(REPO, "main", files, "apps").unwrap();
    let wanted = WantedRevision {
        sha: &sha,
        is_descendant: &|_| false,
    };
    let synced = flux::sync(&env.client, &gotk_sync(&env.git), &wanted, false)
        .await
        .unwrap();
    assert!(
        synced.reconcile_requested,
        "a new commit is worth a reconcile"
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let result = wait::wait_for_apps(&env.client, target(&sha), timeout, move |snapshot| {
        record.lock().unwrap().push(snapshot.clone());
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_installs_syncs_and_the_apps_become_ready() {
    let env = flux_env().await;
    let again = flux::install(&env.client, &testkit_components(), WAIT, false)
        .await
        .unwrap();
    assert!(again.is_up_to_date(), "{again:?}");

    let web = deployment("web", "");
    let files = [
        ("clusters/dev/apps.yaml", APPS_KUSTOMIZATION),
        ("apps/namespace.yaml", APPS_NAMESPACE),
        ("apps/web.yaml", web.as_str()),
    ];
    let (result, seen) = push_and_wait(&env, &files, WAIT).await;
    let snapshot = result.unwrap();
    assert!(snapshot.all_ready());
    let names: Vec<String> = snapshot.rows.iter().map(|r| r.object.to_string()).collect();
    assert_eq!(
        names,
        [
            "GitRepository flux-system/flux-system",
            "Kustomization flux-system/flux-system",
            "Kustomization flux-system/apps",
        ]
    );
    assert!(!seen.is_empty());
    assert_eq!(seen.last(), Some(&snapshot));

    let status = wait::readiness_tree(&env.client, &snapshot.root)
        .await
        .unwrap();
    assert_eq!((status.ready, status.total), (3, 3));
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["rows"][2]["object"]["name"], "apps");
    assert_eq!(json["rows"][2]["readiness"]["state"], "ready");
}

const CHARTS: &str = "apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: jetstack, namespace: apps}
spec: {interval: 1h, url: https://charts.jetstack.io}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: cert-manager, namespace: apps}
spec:
  interval: 1h
  chart:
    spec:
      chart: cert-manager
      version: v0.0.0-missing
      sourceRef: {kind: HelmRepository, name: jetstack}
  install: {remediation: {retries: 0}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: external-dns, namespace: apps}
spec:
  interval: 1h
  dependsOn: [{name: cert-manager}]
  chart:
    spec:
      chart: external-dns
      version: 1.16.1
      sourceRef: {kind: HelmRepository, name: jetstack}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_helm_release_fails_the_wait_at_once_with_its_chain() {
    let env = flux_env().await;
    let files = [
        ("clusters/dev/apps.yaml", APPS_KUSTOMIZATION),
        ("apps/namespace.yaml", APPS_NAMESPACE),
        ("apps/charts.yaml", CHARTS),
    ];
    let started = Instant::now();
    let (result, _) = push_and_wait(&env, &files, WAIT).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let err = result.unwrap_err();
    let WaitError::Failed {
        object,
        reason,
        chain,
        ..
    } = &err
    else {
        panic!("expected a failure, got {err}");
    };
    assert_eq!(object.to_string(), "HelmRelease apps/cert-manager");
    assert_eq!(reason, "RetriesExceeded");
    snapshot!("failed_dependency_chain", chain.to_string());
    assert_eq!(err.exit_status(), ExitStatus::Failure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_reports_what_is_not_ready_and_why() {
    let env = flux_env().await;
    let broken = deployment(
        "broken",
        "  annotations: {testkit.gitops-bootstrap.dev/fail: \"image pull back-off\"}\n",
    );
    let files = [
        ("clusters/dev/apps.yaml", APPS_KUSTOMIZATION),
        ("apps/namespace.yaml", APPS_NAMESPACE),
        ("apps/broken.yaml", broken.as_str()),
    ];
    let (result, _) = push_and_wait(&env, &files, Duration::from_secs(8)).await;
    let err = result.unwrap_err();
    let WaitError::TimedOut { not_ready, .. } = &err else {
        panic!("expected a timeout, got {err}");
    };
    let names: Vec<String> = not_ready.iter().map(|r| r.object.to_string()).collect();
    assert!(
        names.contains(&"Kustomization flux-system/apps".to_owned()),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("image pull back-off") || text.contains("HealthCheckFailed"),
        "{text}"
    );
    assert_eq!(err.exit_status(), ExitStatus::TimedOut);
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused_without_retrying() {
    let cluster = TestCluster::start_in_process(Default::default())
        .await
        .unwrap();
    let other_ca = testkit::tls::TestCa::generate().unwrap();
    let server = cluster.server().unwrap();
    let access = ClusterAccess::Endpoint {
        endpoint: server.url().to_owned(),
        ca_certificate_pem: other_ca.ca_pem().to_owned(),
        token: SecretString::from(server.token()),
    };
    let started = Instant::now();
    let err = connect(&access, WAIT)
        .await
        .err()
        .expect("connecting should fail");
    assert!(matches!(err, ClusterError::UntrustedServer { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    snapshot!("untrusted_server_error", told(err));
}

/// Serves `body` over HTTPS (certificate from `ca`) to each of `connections` clients, from a
/// thread: enough of HTTP/1.1 for one GET per connection.
fn serve_once_over_https(ca: &testkit::tls::TestCa, body: String, connections: usize) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}/install.yaml",
        listener.local_addr().unwrap().port()
    );
    let config = ca.server_config().unwrap();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let Ok(tls) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut stream = rustls::StreamOwned::new(tls, tcp);
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => request.push(byte[0]),
                    _ => break,
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/yaml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.flush();
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    url
}

#[tokio::test]
async fn components_download_over_https_trusting_an_extra_ca() {
    let ca = testkit::tls::TestCa::generate().unwrap();
    let manifest = components_manifest(FLUX_VERSION);
    let url = serve_once_over_https(&ca, manifest.clone(), 2);
    let mut source = flux::ComponentsSource {
        explicit: Some(flux::ManifestLocation::parse(&url).unwrap()),
        committed: None,
        extra_ca_pem: None,
    };
    let err = flux::resolve_components(&source, FLUX_VERSION)
        .await
        .unwrap_err();
    assert!(matches!(err, flux::FluxError::Fetch { .. }), "{err}");

    source.extra_ca_pem = Some(ca.ca_pem().to_owned());
    let components = flux::resolve_components(&source, FLUX_VERSION)
        .await
        .unwrap();
    assert_eq!(components.yaml, manifest);
    assert_eq!(components.origin, ComponentsOrigin::Url(url));
}
