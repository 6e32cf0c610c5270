//! The stand-in Flux Operator against an in-process API server of its own (the operator is
//! one per cluster, named `flux` in `flux-system`) and the HTTPS Git server: a FluxInstance
//! installs the controllers and the sync with its patches and reaches Ready with a FluxReport,
//! a version no release matches stalls, only `flux` is a valid name, deleting the instance
//! uninstalls Flux, and a classic install is taken over with its objects (same UIDs) and
//! nothing pruned when Git drops its files.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use testkit::flux::operator::types::{
    Distribution, FluxInstanceSpec, KustomizePatch, KustomizeSpec, PatchSelector, Sync,
};
use testkit::flux::operator::{FluxInstance, FluxReport, INSTANCE_NAME};
use testkit::flux::types::FluxObject as _;
use testkit::flux::{
    Controllers, FLUX_NAMESPACE, FluxOptions, GitRepository, Kustomization, apply_manifest,
    components_manifest, operator_manifest,
};
use testkit::git::GitServer;

use crate::support::cluster::{self, Cluster};

// Generous: the operator installs every stand-in controller first, slow on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(90);
const REPO: &str = "fleet";
const APP_NAMESPACE: &str = "operator-app";

struct Env {
    client: Client,
    git: GitServer,
    _controllers: Controllers,
    _cluster: Cluster,
}

/// An in-process cluster with the operator's manifest applied and the stand-ins running
/// (the controllers wait for the operator to install them), and a fleet repository whose
/// `clusters/dev` holds a namespace and a ConfigMap.
async fn env() -> Env {
    let cluster = cluster::start_in_process().await;
    let client = cluster.client();
    let controllers = Controllers::start(
        client.clone(),
        FluxOptions {
            operator: true,
            ..FluxOptions::default()
        },
    );
    apply_manifest(&client, &operator_manifest(), "gitops-bootstrap")
        .await
        .expect("installing the operator");
    let git = GitServer::start().await.expect("git server");
    git.create_repo(REPO).expect("repo");
    let app = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {APP_NAMESPACE}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: {APP_NAMESPACE}\ndata:\n  greeting: hello\n"
    );
    git.commit_files(REPO, "main", &[("clusters/dev/app.yaml", &app)], "app")
        .expect("seeding the fleet");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(FLUX_NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        string_data: Some(
            [
                ("username", "git"),
                ("password", git.read_token()),
                ("ca.crt", git.ca_pem()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ),
        ..Secret::default()
    };
    flux_api::<Secret>(&client)
        .create(&PostParams::default(), &secret)
        .await
        .expect("the sync Secret");
    Env {
        client,
        git,
        _controllers: controllers,
        _cluster: cluster,
    }
}

fn flux_api<K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>>(
    client: &Client,
) -> Api<K> {
    Api::namespaced(client.clone(), FLUX_NAMESPACE)
}

/// Polls until `check` holds for the named object; panics with its last state on timeout.
async fn until<K, F>(api: &Api<K>, name: &str, what: &str, mut check: F) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug,
    F: FnMut(&K) -> bool,
{
    let deadline = Instant::now() + WAIT;
    let mut last = None;
    loop {
        if let Some(object) = api.get_opt(name).await.expect("get") {
            if check(&object) {
                return object;
            }
            last = Some(object);
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {name} to be {what}; last: {last:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn until_gone<K: Resource + Clone + DeserializeOwned + Debug>(api: &Api<K>, name: &str) {
    let deadline = Instant::now() + WAIT;
    while api.get_opt(name).await.expect("get").is_some() {
        assert!(Instant::now() < deadline, "{name} was never deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(status, reason, message)` of a condition of the instance.
fn condition(instance: &FluxInstance, type_: &str) -> Option<(String, String, String)> {
    instance
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn instance(env: &Env, version: &str) -> FluxInstance {
    let mut instance = FluxInstance::new(
        INSTANCE_NAME,
        FluxInstanceSpec {
            distribution: Distribution {
                version: version.into(),
                registry: "ghcr.io/fluxcd".into(),
                ..Distribution::default()
            },
            components: [
                "source-controller",
                "kustomize-controller",
                "helm-controller",
            ]
            .map(String::from)
            .to_vec(),
            sync: Some(Sync {
                kind: "GitRepository".into(),
                url: env.git.url(REPO),
                reference: "refs/heads/main".into(),
                path: "clusters/dev".into(),
                pull_secret: Some(FLUX_NAMESPACE.into()),
                ..Sync::default()
            }),
            ..FluxInstanceSpec::default()
        },
    );
    instance.metadata.namespace = Some(FLUX_NAMESPACE.into());
    instance
}

/// Creates `instance` and waits until it is Ready.
async fn create_ready(env: &Env, instance: &FluxInstance) -> FluxInstance {
    let instances = flux_api::<FluxInstance>(&env.client);
    instances
        .create(&PostParams::default(), instance)
        .await
        .expect("creating the FluxInstance");
    until(&instances, INSTANCE_NAME, "Ready", |i| {
        condition(i, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await
}

/// Whether the API server serves `group`/`version` (discovery).
async fn served(client: &Client, group: &str, version: &str) -> bool {
    client
        .list_api_group_resources(&format!("{group}/{version}"))
        .await
        .is_ok()
}

fn patch(kind: &str, patch: &str) -> KustomizePatch {
    KustomizePatch {
        patch: patch.into(),
        target: Some(PatchSelector {
            kind: Some(kind.into()),
            ..PatchSelector::default()
        }),
    }
}

#[tokio::test]
async fn a_flux_instance_installs_flux_and_its_sync_reaches_ready_with_a_report() {
    let env = env().await;
    let mut flux = instance(&env, "2.4.x");
    flux.spec.kustomize = Some(KustomizeSpec {
        patches: vec![
            patch(
                "Kustomization",
                "- op: add\n  path: /spec/timeout\n  value: 2m\n",
            ),
            patch("GitRepository", "spec:\n  interval: 30s\n"),
        ],
    });
    let ready = create_ready(&env, &flux).await;
    let (_, reason, message) = condition(&ready, "Ready").unwrap();
    assert_eq!(reason, "ReconciliationSucceeded");
    assert!(
        message.starts_with("Reconciliation finished in "),
        "{message}"
    );
    // Flux 2.4 still serves the beta APIs it had.
    assert!(served(&env.client, "kustomize.toolkit.fluxcd.io", "v1beta2").await);
    assert!(served(&env.client, "helm.toolkit.fluxcd.io", "v2beta2").await);
    let status = ready.status.unwrap();
    let revision = status.last_applied_revision.unwrap();
    assert!(revision.starts_with("v2.4.0@sha256:"), "{revision}");
    let names: Vec<&str> = status.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "source-controller",
            "kustomize-controller",
            "helm-controller"
        ]
    );

    // The sync objects, named after the namespace, with the patches applied.
    let source = flux_api::<GitRepository>(&env.client)
        .get(FLUX_NAMESPACE)
        .await
        .expect("the sync GitRepository");
    assert_eq!(source.spec.interval, "30s");
    assert_eq!(
        source.spec.reference.and_then(|r| r.name).as_deref(),
        Some("refs/heads/main")
    );
    let sync = flux_api::<Kustomization>(&env.client)
        .get(FLUX_NAMESPACE)
        .await
        .expect("the sync Kustomization");
    assert_eq!(sync.spec.timeout.as_deref(), Some("2m"));
    assert_eq!(sync.spec.path.as_deref(), Some("clusters/dev"));
    let labels = sync.metadata.labels.unwrap_or_default();
    assert_eq!(labels["fluxcd.controlplane.io/name"], "flux");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "flux-operator");
    let app: Api<ConfigMap> = Api::namespaced(env.client.clone(), APP_NAMESPACE);
    assert_eq!(
        app.get("app").await.expect("the synced app").data.unwrap()["greeting"],
        "hello"
    );

    let reports = flux_api::<FluxReport>(&env.client);
    let report = until(&reports, INSTANCE_NAME, "reporting a Ready sync", |r| {
        r.spec.sync.as_ref().is_some_and(|s| s.ready)
    })
    .await;
    let distribution = &report.spec.distribution;
    assert_eq!(distribution.status, "Installed");
    assert_eq!(distribution.version.as_deref(), Some("v2.4.0"));
    assert_eq!(distribution.managed_by.as_deref(), Some("flux-operator"));
    let components: Vec<(&str, bool)> = report
        .spec
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.ready))
        .collect();
    assert_eq!(
        components,
        [
            ("helm-controller", true),
            ("kustomize-controller", true),
            ("source-controller", true)
        ]
    );
    let sync = report.spec.sync.unwrap();
    assert_eq!(sync.id, "kustomization/flux-system");
    assert_eq!(sync.path.as_deref(), Some("clusters/dev"));
    assert_eq!(sync.source.as_deref(), Some(env.git.url(REPO).as_str()));
    assert!(
        sync.status
            .starts_with("Applied revision: refs/heads/main@sha1:"),
        "{}",
        sync.status
    );
}

#[tokio::test]
async fn deleting_the_flux_instance_uninstalls_flux_and_leaves_the_apps() {
    let env = env().await;
    let instances = flux_api::<FluxInstance>(&env.client);
    create_ready(&env, &instance(&env, "2.x")).await;
    // The newest release (2.8 and later) serves the GA APIs only.
    assert!(!served(&env.client, "kustomize.toolkit.fluxcd.io", "v1beta2").await);
    instances
        .delete(INSTANCE_NAME, &DeleteParams::default())
        .await
        .expect("deleting the FluxInstance");
    until_gone(&instances, INSTANCE_NAME).await;
    let deployments = flux_api::<Deployment>(&env.client);
    for name in [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
    ] {
        assert!(
            deployments.get_opt(name).await.unwrap().is_none(),
            "{name} left behind"
        );
    }
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    until_gone(&crds, "kustomizations.kustomize.toolkit.fluxcd.io").await;
    // The operator stays, and so do the apps Flux applied.
    assert!(
        deployments
            .get_opt("flux-operator")
            .await
            .unwrap()
            .is_some()
    );
    let app: Api<ConfigMap> = Api::namespaced(env.client.clone(), APP_NAMESPACE);
    assert!(
        app.get_opt("app").await.unwrap().is_some(),
        "the app went with Flux"
    );
}

#[tokio::test]
async fn a_version_no_release_matches_stalls_with_build_failed() {
    let env = env().await;
    let instances = flux_api::<FluxInstance>(&env.client);
    // The CRD's whole-object rule refuses any other name.
    let mut other = instance(&env, "2.x");
    other.metadata.name = Some("other".into());
    match instances.create(&PostParams::default(), &other).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422);
            assert_eq!(
                status.message,
                r#"FluxInstance.fluxcd.controlplane.io "other" is invalid: <nil>: Invalid value: "object": the only accepted name for a FluxInstance is 'flux'"#
            );
        }
        other => panic!("a FluxInstance named other was not refused: {other:?}"),
    }
    instances
        .create(&PostParams::default(), &instance(&env, "2.99.x"))
        .await
        .expect("creating the FluxInstance");
    let stalled = until(&instances, INSTANCE_NAME, "Stalled", |i| {
        condition(i, "Stalled").is_some_and(|c| c.0 == "True")
    })
    .await;
    let expected = "build failed: no match found for semver: 2.99.x";
    assert_eq!(
        condition(&stalled, "Stalled"),
        Some(("True".into(), "BuildFailed".into(), expected.into()))
    );
    assert_eq!(
        condition(&stalled, "Ready"),
        Some(("False".into(), "BuildFailed".into(), expected.into()))
    );
    assert_eq!(condition(&stalled, "Reconciling"), None);
    // Nothing was installed.
    let deployments = flux_api::<Deployment>(&env.client);
    assert!(
        deployments
            .get_opt("source-controller")
            .await
            .unwrap()
            .is_none()
    );
}

/// The sync objects of a classic install, as `flux bootstrap` commits them.
fn gotk_sync(url: &str) -> String {
    format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  ref:\n    branch: main\n  secretRef:\n    name: flux-system\n  url: {url}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 10m0s\n  path: ./clusters/dev\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
    )
}

fn kustomization_yaml(resources: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{resources}]\n"
    )
}

fn uid<K: Resource>(object: K) -> String {
    object
        .meta()
        .uid
        .clone()
        .expect("a stored object has a uid")
}

/// The UIDs of what a migration must keep: a controller, a CRD, the sync objects, an app.
async fn uids(client: &Client) -> Vec<String> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let app: Api<ConfigMap> = Api::namespaced(client.clone(), APP_NAMESPACE);
    let deployments = flux_api::<Deployment>(client);
    let sources = flux_api::<GitRepository>(client);
    let syncs = flux_api::<Kustomization>(client);
    vec![
        uid(deployments.get("kustomize-controller").await.unwrap()),
        uid(crds
            .get("kustomizations.kustomize.toolkit.fluxcd.io")
            .await
            .unwrap()),
        uid(sources.get(FLUX_NAMESPACE).await.unwrap()),
        uid(syncs.get(FLUX_NAMESPACE).await.unwrap()),
        uid(app.get("app").await.unwrap()),
    ]
}

#[tokio::test]
async fn a_classic_install_is_taken_over_with_its_objects_and_nothing_pruned() {
    let env = env().await;
    let sync = gotk_sync(&env.git.url(REPO));
    let components = components_manifest("v2.4.0");
    let classic = kustomization_yaml("gotk-components.yaml, gotk-sync.yaml");
    let both = kustomization_yaml("app.yaml, flux-system");
    env.git
        .commit_files(
            REPO,
            "main",
            &[
                ("clusters/dev/flux-system/gotk-components.yaml", &components),
                ("clusters/dev/flux-system/gotk-sync.yaml", &sync),
                ("clusters/dev/flux-system/kustomization.yaml", &classic),
                ("clusters/dev/kustomization.yaml", &both),
            ],
            "flux bootstrap",
        )
        .expect("committing the classic install");
    apply_manifest(&env.client, &components, "flux")
        .await
        .expect("components");
    apply_manifest(&env.client, &sync, "flux")
        .await
        .expect("sync");
    let kustomizations = flux_api::<Kustomization>(&env.client);
    until(&kustomizations, FLUX_NAMESPACE, "Ready (classic)", |k| {
        k.is_ready()
    })
    .await;
    let deployments = flux_api::<Deployment>(&env.client);
    let labels = deployments
        .get("kustomize-controller")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert_eq!(
        labels["kustomize.toolkit.fluxcd.io/name"], "flux-system",
        "applied by the classic sync"
    );
    let before = uids(&env.client).await;

    let instances = flux_api::<FluxInstance>(&env.client);
    create_ready(&env, &instance(&env, "2.4.x")).await;
    let labels = deployments
        .get("kustomize-controller")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert!(
        !labels.contains_key("kustomize.toolkit.fluxcd.io/name"),
        "{labels:?}"
    );
    assert_eq!(labels["fluxcd.controlplane.io/name"], "flux");

    // Git drops the classic files: the sync no longer builds them and prunes none of them.
    let sha = env
        .git
        .commit_files(
            REPO,
            "main",
            &[(
                "clusters/dev/kustomization.yaml",
                &kustomization_yaml("app.yaml"),
            )],
            "migrate to the Flux Operator",
        )
        .expect("committing the migration");
    until(
        &kustomizations,
        FLUX_NAMESPACE,
        "at the migration commit",
        |k| {
            k.is_ready()
                && k.status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.as_deref())
                    .is_some_and(|r| r.ends_with(&sha))
        },
    )
    .await;
    assert_eq!(uids(&env.client).await, before, "an object was replaced");
    for name in [
        "source-controller",
        "kustomize-controller",
        "helm-controller",
    ] {
        assert!(
            deployments.get_opt(name).await.unwrap().is_some(),
            "{name} was pruned"
        );
    }
    let ready = instances.get(INSTANCE_NAME).await.unwrap();
    assert_eq!(
        condition(&ready, "Ready").map(|c| c.0).as_deref(),
        Some("True")
    );
}
