//! The testkit's Flux stand-ins, kubelet and load balancers against the in-process API server
//! and the HTTPS Git server: GitRepository auth, Kustomization ordering, substitution, prune,
//! health checks, HelmRelease install/uninstall and retries, LoadBalancer finalizers, and
//! controllers that wait for the components manifest.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use testkit::charts::Charts;

use crate::support::cluster::{self, Cluster};
use testkit::flux::conditions::{self, READY, STALLED};
use testkit::flux::types::{
    CrossNamespaceObjectReference, Decryption, FluxObject, FluxStatus, GitRepositoryRef,
    GitRepositorySpec, HelmChartTemplate, HelmChartTemplateSpec, HelmReleaseSpec,
    HelmRepositorySpec, Install, InstallRemediation, KustomizationSpec, LocalObjectReference,
    NamespacedObjectReference, PostBuild, SubstituteReference,
};
use testkit::flux::{
    Controllers, FLUX_NAMESPACE, FluxOptions, GitRepository, HelmRelease, HelmRepository,
    Kustomization, apply_manifest, components_manifest,
};
use testkit::git::GitServer;
use testkit::kubelet::{FAIL_ANNOTATION, LOAD_BALANCER_FINALIZER};
use testkit::sops::{age_keygen, sops_encrypt};

const WAIT: Duration = Duration::from_secs(20);
const REPO: &str = "fleet";

struct Env {
    client: Client,
    git: GitServer,
    _controllers: Controllers,
    /// After the controllers: they stop before a shared cluster is restored.
    _cluster: Cluster,
}

/// A cluster with the components installed, running controllers and an empty Git server.
async fn env() -> Env {
    env_with(FluxOptions::default()).await
}

async fn env_with(opts: FluxOptions) -> Env {
    env_at("v2.5.1", opts).await
}

/// A cluster with the components of Flux `version` installed.
async fn env_at(version: &str, opts: FluxOptions) -> Env {
    let cluster = cluster::start().await;
    let client = cluster.client();
    let controllers = Controllers::start(client.clone(), opts);
    apply_manifest(&client, &components_manifest(version), "gitops-bootstrap")
        .await
        .expect("install Flux");
    let git = GitServer::start().await.expect("git server");
    git.create_repo(REPO).expect("repo");
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

async fn until_gone<K: Resource + Clone + DeserializeOwned + Debug>(
    api: &Api<K>,
    name: &str,
) -> Duration {
    let start = Instant::now();
    while api.get_opt(name).await.expect("get").is_some() {
        assert!(start.elapsed() < WAIT, "{name} was never deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

fn ready_reason<S: FluxStatus>(status: Option<&S>) -> Option<(String, String, String)> {
    status
        .and_then(|s| s.condition(READY))
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn secret(name: &str, entries: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}

async fn create_secret(env: &Env, name: &str, entries: &[(&str, &str)]) {
    flux_api::<Secret>(&env.client)
        .create(&PostParams::default(), &secret(name, entries))
        .await
        .expect("secret");
}

/// A GitRepository of branch `main` at `url`, authenticated by Secret `secret_name`.
fn git_repository(name: &str, url: String, secret_name: &str) -> GitRepository {
    let spec = GitRepositorySpec {
        url,
        secret_ref: Some(LocalObjectReference {
            name: secret_name.into(),
        }),
        interval: "1m".into(),
        reference: Some(GitRepositoryRef {
            branch: Some("main".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    GitRepository::new(name, spec)
}

async fn create_git_repository(env: &Env, secret_entries: &[(&str, &str)]) {
    create_secret(env, "git-auth", secret_entries).await;
    flux_api::<GitRepository>(&env.client)
        .create(
            &PostParams::default(),
            &git_repository(REPO, env.git.url(REPO), "git-auth"),
        )
        .await
        .expect("GitRepository");
}

async fn good_git_repository(env: &Env) {
    let token = env.git.read_token().to_owned();
    let ca = env.git.ca_pem().to_owned();
    create_git_repository(
        env,
        &[("username", "git"), ("password", &token), ("ca.crt", &ca)],
    )
    .await;
}

fn kustomization(
    name: &str,
    path: &str,
    edit: impl FnOnce(&mut KustomizationSpec),
) -> Kustomization {
    let mut spec = KustomizationSpec {
        interval: "1m".into(),
        source_ref: CrossNamespaceObjectReference {
            kind: "GitRepository".into(),
            name: REPO.into(),
            ..Default::default()
        },
        path: Some(path.into()),
        prune: true,
        ..Default::default()
    };
    edit(&mut spec);
    Kustomization::new(name, spec)
}

async fn create_kustomization(env: &Env, ks: Kustomization) {
    flux_api::<Kustomization>(&env.client)
        .create(&PostParams::default(), &ks)
        .await
        .expect("Kustomization");
}

/// The ids of the objects in a Kustomization's inventory.
fn inventory_ids(ks: &Kustomization) -> Vec<String> {
    let inventory = ks.status.as_ref().and_then(|s| s.inventory.as_ref());
    let entries = &inventory.expect("an inventory").entries;
    entries.iter().map(|e| e.id.clone()).collect()
}

async fn until_ready<K>(api: &Api<K>, name: &str) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug + FluxObject,
{
    until(api, name, "Ready", |o| o.is_ready()).await
}

const NAMESPACE_YAML: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n";

fn deployment_yaml(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: apps\n{annotations}spec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: main\n        image: example.invalid/{name}:1\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_repository_fetches_over_https_with_a_flux_secret() {
    let env = env().await;
    let sha = env
        .git
        .commit_files(REPO, "main", &[("apps/ns.yaml", NAMESPACE_YAML)], "init")
        .unwrap();
    good_git_repository(&env).await;
    let repo = until_ready(&flux_api::<GitRepository>(&env.client), REPO).await;
    let status = repo.status.unwrap();
    assert_eq!(
        status.artifact.unwrap().revision,
        format!("main@sha1:{sha}")
    );
    assert_eq!(status.observed_generation, repo.metadata.generation);

    // A new commit is picked up at once on a reconcile request.
    let next = env
        .git
        .commit_files(REPO, "main", &[("apps/more.yaml", NAMESPACE_YAML)], "more")
        .unwrap();
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now-1"}}});
    flux_api::<GitRepository>(&env.client)
        .patch(REPO, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let repo = until(
        &flux_api::<GitRepository>(&env.client),
        REPO,
        "at the new commit",
        |r| {
            r.status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .is_some_and(|a| a.revision.ends_with(&next))
        },
    )
    .await;
    assert_eq!(
        repo.status.unwrap().last_handled_reconcile_at.as_deref(),
        Some("now-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_repository_with_wrong_secret_keys_fails_authentication() {
    let env = env().await;
    env.git
        .commit_files(REPO, "main", &[("apps/ns.yaml", NAMESPACE_YAML)], "init")
        .unwrap();
    let token = env.git.read_token().to_owned();
    create_git_repository(&env, &[("user", "git"), ("token", &token)]).await;
    let repo = until(
        &flux_api::<GitRepository>(&env.client),
        REPO,
        "failed",
        |r| ready_reason(r.status.as_ref()).is_some_and(|(status, _, _)| status == "False"),
    )
    .await;
    let (_, reason, message) = ready_reason(repo.status.as_ref()).unwrap();
    assert_eq!(reason, "AuthenticationFailed");
    assert!(message.contains("'username'"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomizations_wait_for_their_dependencies() {
    let env = env().await;
    let slow = format!("{NAMESPACE_YAML}---\n{}", deployment_yaml("base", ""));
    let files = [
        ("base/all.yaml", slow.as_str()),
        (
            "apps/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: apps\n",
        ),
    ];
    env.git.commit_files(REPO, "main", &files, "init").unwrap();
    good_git_repository(&env).await;
    create_kustomization(
        &env,
        kustomization("apps", "./apps", |s| {
            s.depends_on = vec![NamespacedObjectReference {
                name: "base".into(),
                namespace: None,
            }]
        }),
    )
    .await;
    let api = flux_api::<Kustomization>(&env.client);
    let waiting = until(&api, "apps", "waiting", |k| {
        ready_reason(k.status.as_ref()).is_some_and(|(_, r, _)| r == "DependencyNotReady")
    })
    .await;
    assert!(
        ready_reason(waiting.status.as_ref())
            .unwrap()
            .2
            .contains("flux-system/base")
    );
    create_kustomization(
        &env,
        kustomization("base", "./base", |s| s.wait = Some(true)),
    )
    .await;
    let base = until_ready(&api, "base").await;
    let apps = until_ready(&api, "apps").await;
    let ready_at = |k: &Kustomization| {
        k.status
            .as_ref()
            .unwrap()
            .condition(READY)
            .unwrap()
            .last_transition_time
            .clone()
    };
    assert!(ready_at(&base) <= ready_at(&apps));
    let deployment = Api::<Deployment>::namespaced(env.client.clone(), "apps")
        .get("base")
        .await
        .unwrap();
    assert_eq!(deployment.status.unwrap().ready_replicas, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomization_substitutes_from_config_map_and_secret() {
    let env = env().await;
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-${cluster_name}\n  namespace: apps\ndata:\n  token: ${api_token}\n  region: ${region:=eu-west-1}\n  kept: $literal\n";
    env.git
        .commit_files(
            REPO,
            "main",
            &[("apps/ns.yaml", NAMESPACE_YAML), ("apps/cm.yaml", cm)],
            "init",
        )
        .unwrap();
    good_git_repository(&env).await;
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("cluster-config".into()),
            ..Default::default()
        },
        data: Some([("cluster_name".to_owned(), "dev".to_owned())].into()),
        ..Default::default()
    };
    flux_api::<ConfigMap>(&env.client)
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();
    flux_api::<Secret>(&env.client)
        .create(
            &PostParams::default(),
            &secret("cluster-secrets", &[("api_token", "s3cret")]),
        )
        .await
        .unwrap();
    let references = vec![
        SubstituteReference {
            kind: "ConfigMap".into(),
            name: "cluster-config".into(),
            optional: false,
        },
        SubstituteReference {
            kind: "Secret".into(),
            name: "cluster-secrets".into(),
            optional: false,
        },
        SubstituteReference {
            kind: "Secret".into(),
            name: "absent".into(),
            optional: true,
        },
    ];
    create_kustomization(
        &env,
        kustomization("apps", "./apps", |s| {
            s.post_build = Some(PostBuild {
                substitute: None,
                substitute_from: references,
            })
        }),
    )
    .await;
    let ks = until_ready(&flux_api::<Kustomization>(&env.client), "apps").await;
    let applied = Api::<ConfigMap>::namespaced(env.client.clone(), "apps")
        .get("settings-dev")
        .await
        .unwrap();
    let data = applied.data.unwrap();
    assert_eq!(data["token"], "s3cret");
    assert_eq!(data["region"], "eu-west-1");
    assert_eq!(data["kept"], "$literal");
    let ids = inventory_ids(&ks);
    assert!(
        ids.contains(&"apps_settings-dev__ConfigMap".to_owned()),
        "{ids:?}"
    );
    assert!(ids.contains(&"_apps__Namespace".to_owned()), "{ids:?}");
}

/// Kustomizations `watched` and `unwatched` substitute `${setting}` from ConfigMaps of the same
/// names (only `watched` labelled `reconcile.fluxcd.io/watch: Enabled`) into ConfigMap `out-<name>`,
/// with a one-hour interval; both settings change once both are applied. Whether each took the
/// change before a reconcile request.
async fn applied_without_a_request(version: &str) -> (bool, bool) {
    let env = env_at(version, FluxOptions::default()).await;
    let out = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: out-${name}\n  namespace: apps\ndata:\n  setting: ${setting}\n";
    let files = [("apps/ns.yaml", NAMESPACE_YAML), ("apps/out.yaml", out)];
    env.git.commit_files(REPO, "main", &files, "init").unwrap();
    good_git_repository(&env).await;
    let config_maps = flux_api::<ConfigMap>(&env.client);
    let kustomizations = flux_api::<Kustomization>(&env.client);
    for name in ["watched", "unwatched"] {
        let labels = (name == "watched")
            .then(|| [("reconcile.fluxcd.io/watch".to_owned(), "Enabled".to_owned())].into());
        let config = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels,
                ..Default::default()
            },
            data: Some([("setting".to_owned(), "first".to_owned())].into()),
            ..Default::default()
        };
        config_maps
            .create(&PostParams::default(), &config)
            .await
            .unwrap();
        let ks = kustomization(name, "./apps", |s| {
            s.interval = "1h".into();
            s.post_build = Some(PostBuild {
                substitute: Some([("name".to_owned(), name.to_owned())].into()),
                substitute_from: vec![SubstituteReference {
                    kind: "ConfigMap".into(),
                    name: name.into(),
                    optional: false,
                }],
            });
        });
        create_kustomization(&env, ks).await;
        until_ready(&kustomizations, name).await;
    }
    let second = json!({"data": {"setting": "second"}});
    for name in ["watched", "unwatched"] {
        config_maps
            .patch(name, &PatchParams::default(), &Patch::Merge(&second))
            .await
            .unwrap();
    }
    let applied: Api<ConfigMap> = Api::namespaced(env.client.clone(), "apps");
    let setting = |name: &'static str| {
        let applied = applied.clone();
        async move {
            let out = applied.get(&format!("out-{name}")).await.unwrap();
            out.data.unwrap_or_default()["setting"].clone()
        }
    };
    // A watch reacts within a few reconcile passes; give it several seconds.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let took = (
        setting("watched").await == "second",
        setting("unwatched").await == "second",
    );
    // A reconcile request applies the change everywhere.
    for name in ["watched", "unwatched"] {
        let request =
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}});
        kustomizations
            .patch(name, &PatchParams::default(), &Patch::Merge(&request))
            .await
            .unwrap();
        until(
            &applied,
            &format!("out-{name}"),
            "at the second setting",
            |cm| cm.data.as_ref().is_some_and(|d| d["setting"] == "second"),
        )
        .await;
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_labelled_config_map_is_applied_at_once_from_flux_2_7_on() {
    assert_eq!(
        applied_without_a_request("v2.7.0").await,
        (true, false),
        "Flux 2.7 re-applies on a change of the labelled ConfigMap only"
    );
    assert_eq!(
        applied_without_a_request("v2.6.3").await,
        (false, false),
        "Flux 2.6 re-applies only on its interval or a request"
    );
}

/// The Kustomization named `name` on `./secrets`, decrypting with Secret `key` when given.
fn decrypting(name: &str, key: Option<&str>) -> Kustomization {
    kustomization(name, "./secrets", |s| {
        s.decryption = key.map(|key| Decryption {
            provider: "sops".into(),
            secret_ref: Some(LocalObjectReference { name: key.into() }),
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomization_decrypts_sops_secrets_with_its_age_key_and_fails_like_flux_without_it() {
    let env = env().await;
    let (identity, recipient) = age_keygen();
    let plain = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: apps\nstringData:\n  password: hunter2\n";
    let encrypted = sops_encrypt(plain, &recipient);
    env.git
        .commit_files(
            REPO,
            "main",
            &[
                ("secrets/ns.yaml", NAMESPACE_YAML),
                ("secrets/db.sops.yaml", &encrypted),
            ],
            "init",
        )
        .unwrap();
    good_git_repository(&env).await;
    create_secret(&env, "sops-age", &[("age.agekey", &identity)]).await;
    let (other, _) = age_keygen();
    create_secret(&env, "other-age", &[("age.agekey", &other)]).await;
    // The build failures are the point: the source must be there first.
    until_ready(&flux_api::<GitRepository>(&env.client), REPO).await;
    let api = flux_api::<Kustomization>(&env.client);
    for ks in [
        decrypting("no-key", Some("absent")),
        decrypting("wrong-key", Some("other-age")),
        decrypting("no-decryption", None),
    ] {
        create_kustomization(&env, ks).await;
    }
    let failed = |name: &'static str| {
        until(&api, name, "failed", |k| {
            ready_reason(k.status.as_ref()).is_some_and(|(status, _, _)| status == "False")
        })
    };
    let (_, reason, message) = ready_reason(failed("no-key").await.status.as_ref()).unwrap();
    assert_eq!(reason, "BuildFailed");
    assert_eq!(message, "secrets \"absent\" not found");
    let (_, reason, message) = ready_reason(failed("wrong-key").await.status.as_ref()).unwrap();
    assert_eq!(reason, "BuildFailed");
    let prefix = "decryption failed for 'db': failed to decrypt and format 'apps/db' Secret data: cannot get sops data key: ";
    assert!(message.starts_with(prefix), "{message}");
    assert!(message.contains(&recipient), "{message}");
    let (_, reason, message) = ready_reason(failed("no-decryption").await.status.as_ref()).unwrap();
    assert_eq!(reason, "ReconciliationFailed");
    assert_eq!(
        message,
        "Secret/apps/db is SOPS encrypted, configuring decryption is required for this secret to be reconciled"
    );
    let secrets = Api::<Secret>::namespaced(env.client.clone(), "apps");
    assert!(
        secrets.get_opt("db").await.unwrap().is_none(),
        "nothing applied encrypted"
    );

    create_kustomization(&env, decrypting("with-key", Some("sops-age"))).await;
    until_ready(&api, "with-key").await;
    let secret = secrets.get("db").await.unwrap();
    let data = secret.data.unwrap();
    assert_eq!(data["password"].0, b"hunter2", "applied decrypted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomization_prunes_objects_dropped_from_git() {
    let env = env().await;
    let cm = |name: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: apps\n")
    };
    let (a, b) = (cm("a"), cm("b"));
    let both = "resources:\n- ns.yaml\n- a.yaml\n- b.yaml\n";
    let files = [
        ("apps/ns.yaml", NAMESPACE_YAML),
        ("apps/a.yaml", a.as_str()),
        ("apps/b.yaml", b.as_str()),
        ("apps/kustomization.yaml", both),
    ];
    env.git.commit_files(REPO, "main", &files, "init").unwrap();
    good_git_repository(&env).await;
    create_kustomization(&env, kustomization("apps", "./apps", |_| {})).await;
    let api = flux_api::<Kustomization>(&env.client);
    until_ready(&api, "apps").await;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), "apps");
    assert!(config_maps.get_opt("b").await.unwrap().is_some());

    let sha = env
        .git
        .commit_files(
            REPO,
            "main",
            &[(
                "apps/kustomization.yaml",
                "resources:\n- ns.yaml\n- a.yaml\n",
            )],
            "drop b",
        )
        .unwrap();
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "drop-b"}}});
    flux_api::<GitRepository>(&env.client)
        .patch(REPO, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let ks = until(&api, "apps", "at the new revision", |k| {
        k.status
            .as_ref()
            .and_then(|s| s.last_applied_revision.as_ref())
            .is_some_and(|r| r.ends_with(&sha))
    })
    .await;
    assert!(
        config_maps.get_opt("b").await.unwrap().is_none(),
        "b was not pruned"
    );
    assert!(config_maps.get_opt("a").await.unwrap().is_some());
    let ids = inventory_ids(&ks);
    assert!(!ids.contains(&"apps_b__ConfigMap".to_owned()), "{ids:?}");

    // Deleting the Kustomization (prune on) deletes its inventory through the finalizer.
    api.delete("apps", &DeleteParams::default()).await.unwrap();
    until_gone(&api, "apps").await;
    assert!(
        config_maps.get_opt("a").await.unwrap().is_none(),
        "a survived the Kustomization"
    );
}

/// A Kustomization deleted and created again under its name (a teardown, then a create-env at
/// the same commit) is a new object: reconciled at once, not at the old one's interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomization_created_again_is_reconciled_at_once_whatever_its_interval() {
    let env = env().await;
    let files = [
        ("apps/ns.yaml", NAMESPACE_YAML),
        ("apps/kustomization.yaml", "resources:\n- ns.yaml\n"),
    ];
    env.git.commit_files(REPO, "main", &files, "init").unwrap();
    good_git_repository(&env).await;
    let api = flux_api::<Kustomization>(&env.client);
    let every_hour = || kustomization("apps", "./apps", |spec| spec.interval = "1h".into());
    create_kustomization(&env, every_hour()).await;
    let first = until_ready(&api, "apps").await;
    api.delete("apps", &DeleteParams::default()).await.unwrap();
    until_gone(&api, "apps").await;

    create_kustomization(&env, every_hour()).await;
    let second = until_ready(&api, "apps").await;
    assert_ne!(first.metadata.uid, second.metadata.uid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_deployment_fails_the_health_check() {
    let env = env().await;
    let broken = deployment_yaml(
        "broken",
        &format!("  annotations:\n    {FAIL_ANNOTATION}: \"image pull back-off\"\n"),
    );
    env.git
        .commit_files(
            REPO,
            "main",
            &[
                ("apps/ns.yaml", NAMESPACE_YAML),
                ("apps/broken.yaml", broken.as_str()),
            ],
            "init",
        )
        .unwrap();
    good_git_repository(&env).await;
    create_kustomization(
        &env,
        kustomization("apps", "./apps", |s| {
            s.wait = Some(true);
            s.timeout = Some("2s".into());
        }),
    )
    .await;
    let ks = until(
        &flux_api::<Kustomization>(&env.client),
        "apps",
        "unhealthy",
        |k| {
            ready_reason(k.status.as_ref())
                .is_some_and(|(_, reason, _)| reason == "HealthCheckFailed")
        },
    )
    .await;
    let (_, reason, message) = ready_reason(ks.status.as_ref()).unwrap();
    assert_eq!(reason, "HealthCheckFailed");
    assert!(
        message.contains("Deployment/apps/broken") && message.contains("image pull back-off"),
        "{message}"
    );
}

/// HelmRepository flux-system/charts at `url`.
async fn helm_repository(client: &Client, url: &str) {
    let spec = HelmRepositorySpec {
        url: url.into(),
        interval: Some("1h".into()),
        ..Default::default()
    };
    flux_api::<HelmRepository>(client)
        .create(&PostParams::default(), &HelmRepository::new("charts", spec))
        .await
        .unwrap();
}

fn helm_release(chart: &str, version: &str, retries: i64) -> HelmRelease {
    HelmRelease::new(
        chart,
        HelmReleaseSpec {
            interval: "1h".into(),
            chart: HelmChartTemplate {
                spec: HelmChartTemplateSpec {
                    chart: chart.into(),
                    version: Some(version.into()),
                    source_ref: CrossNamespaceObjectReference {
                        kind: "HelmRepository".into(),
                        name: "charts".into(),
                        ..Default::default()
                    },
                },
            },
            release_name: Some(chart.into()),
            target_namespace: Some("ingress".into()),
            install: Some(Install {
                create_namespace: Some(true),
                remediation: Some(InstallRemediation { retries }),
            }),
            ..Default::default()
        },
    )
}

/// Creates the HelmRepository "charts" at `repository_url`, then `release`.
async fn create_helm_release(
    env: &Env,
    repository_url: &str,
    release: HelmRelease,
) -> Api<HelmRelease> {
    helm_repository(&env.client, repository_url).await;
    let api = flux_api::<HelmRelease>(&env.client);
    api.create(&PostParams::default(), &release).await.unwrap();
    api
}

/// The first load-balancer address of a Service, once it has one.
fn load_balancer_ip(service: &Service) -> Option<String> {
    let ingress = service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?;
    ingress.first()?.ip.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_release_installs_and_uninstalls_a_catalogue_chart() {
    let env = env().await;
    let api = create_helm_release(
        &env,
        "https://kubernetes.github.io/ingress-nginx",
        helm_release("ingress-nginx", "4.12.1", 0),
    )
    .await;
    let hr = until_ready(&api, "ingress-nginx").await;
    let status = hr.status.unwrap();
    assert_eq!(status.history[0].chart_version, "4.12.1");
    // What Flux's HelmRelease v2 schema requires of a history entry.
    let snapshot = &status.history[0];
    for digest in [&snapshot.digest, &snapshot.config_digest] {
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
    }
    for time in [&snapshot.first_deployed, &snapshot.last_deployed] {
        time.parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{time} is no date-time: {e}"));
    }
    assert_eq!(ready_reason(Some(&status)).unwrap().1, "InstallSucceeded");
    let services: Api<Service> = Api::namespaced(env.client.clone(), "ingress");
    let service = until(
        &services,
        "ingress-nginx-controller",
        "given an address",
        |s| load_balancer_ip(s).is_some(),
    )
    .await;
    let ip = load_balancer_ip(&service).unwrap();
    assert!(ip.starts_with("192.0.2."), "{ip}");

    api.delete("ingress-nginx", &DeleteParams::default())
        .await
        .unwrap();
    until_gone(&api, "ingress-nginx").await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "ingress");
    until_gone(&deployments, "ingress-nginx-controller").await;
    until_gone(&services, "ingress-nginx-controller").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_release_of_a_missing_chart_stalls_after_its_retries() {
    let env = env().await;
    let api = create_helm_release(
        &env,
        "https://charts.jetstack.io",
        helm_release("cert-manager", "v0.0.1", 1),
    )
    .await;
    let hr = until(&api, "cert-manager", "stalled", |h| {
        conditions::is_stalled(h.status.as_ref())
    })
    .await;
    let status = hr.status.unwrap();
    assert_eq!(status.install_failures, Some(2));
    let stalled = status.condition(STALLED).unwrap();
    assert_eq!(stalled.reason, "RetriesExceeded");
    let (ready, reason, message) = ready_reason(Some(&status)).unwrap();
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "InstallFailed")
    );
    assert!(
        message.contains(
            "chart \"cert-manager\" version \"v0.0.1\" not found in https://charts.jetstack.io"
        ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_repository_whose_index_is_missing_fails_as_source_controller_does() {
    let env = env().await;
    helm_repository(&env.client, "https://charts.example.invalid/stable/").await;
    let api = flux_api::<HelmRepository>(&env.client);
    let repository = until(&api, "charts", "failed", |r| {
        ready_reason(r.status.as_ref()).is_some_and(|(ready, _, _)| ready == "False")
    })
    .await;
    let status = repository.status.unwrap();
    let expected = "failed to fetch Helm repository index: failed to cache index to temporary file: failed to fetch https://charts.example.invalid/stable/index.yaml : 404 Not Found";
    assert_eq!(
        ready_reason(Some(&status)).unwrap(),
        ("False".to_owned(), "Failed".to_owned(), expected.to_owned())
    );
    let fetch_failed = status.condition("FetchFailed").expect("FetchFailed");
    assert_eq!(
        (fetch_failed.status.as_str(), fetch_failed.reason.as_str()),
        ("True", "Failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_any_chart_every_repository_and_chart_installs() {
    let env = env_with(FluxOptions {
        charts: Charts::Any,
        ..FluxOptions::default()
    })
    .await;
    let api = create_helm_release(
        &env,
        "https://charts.example.invalid/stable",
        helm_release("podinfo", "6.7.1", 0),
    )
    .await;
    let hr = until_ready(&api, "podinfo").await;
    let history = &hr.status.unwrap().history[0];
    assert_eq!(
        (history.chart_name.as_str(), history.chart_version.as_str()),
        ("podinfo", "6.7.1")
    );
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "ingress");
    let deployment = until(&deployments, "podinfo", "Available", |d| {
        d.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
    })
    .await;
    let image = deployment.spec.template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(
        image.as_deref(),
        Some("testkit.invalid/charts/podinfo:6.7.1")
    );

    api.delete("podinfo", &DeleteParams::default())
        .await
        .unwrap();
    until_gone(&api, "podinfo").await;
    until_gone(&deployments, "podinfo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomization_applies_its_spec_components() {
    let env = env().await;
    let files = [
        (
            "clusters/_profiles/home/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [namespace.yaml]\n",
        ),
        ("clusters/_profiles/home/namespace.yaml", NAMESPACE_YAML),
        (
            "platform/_base/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cm.yaml]\n",
        ),
        (
            "platform/_base/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-component\n  namespace: apps\n",
        ),
    ];
    env.git.commit_files(REPO, "main", &files, "init").unwrap();
    good_git_repository(&env).await;
    create_kustomization(
        &env,
        kustomization("home", "./clusters/_profiles/home", |s| {
            s.components = vec!["../../../platform/_base".into()];
        }),
    )
    .await;
    let ks = until_ready(&flux_api::<Kustomization>(&env.client), "home").await;
    assert_eq!(
        inventory_ids(&ks),
        ["_apps__Namespace", "apps_from-component__ConfigMap"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_services_keep_their_finalizer_for_a_while() {
    let env = env().await;
    let services: Api<Service> = Api::namespaced(env.client.clone(), "default");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "edge"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    until(&services, "edge", "given an address and a finalizer", |s| {
        s.metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == LOAD_BALANCER_FINALIZER))
            && load_balancer_ip(s).is_some()
    })
    .await;
    services
        .delete("edge", &DeleteParams::default())
        .await
        .unwrap();
    let took = until_gone(&services, "edge").await;
    assert!(
        took >= Duration::from_millis(500),
        "released after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_start_only_once_the_components_are_installed() {
    let cluster = cluster::start().await;
    let client = cluster.client();
    let _controllers = Controllers::start(client.clone(), FluxOptions::default());
    let manifest = components_manifest("v2.5.1");
    assert_eq!(manifest.lines().next(), Some("# Flux version: v2.5.1"));
    let (crds, rest): (Vec<&str>, Vec<&str>) = manifest
        .split("\n---\n")
        .partition(|doc| doc.contains("kind: CustomResourceDefinition"));
    apply_manifest(&client, &crds.join("\n---\n"), "gitops-bootstrap")
        .await
        .unwrap();
    apply_manifest(
        &client,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n",
        "gitops-bootstrap",
    )
    .await
    .unwrap();
    helm_repository(&client, "https://charts.jetstack.io").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let api = flux_api::<HelmRepository>(&client);
    assert!(
        api.get("charts").await.unwrap().status.is_none(),
        "reconciled before source-controller was installed"
    );

    apply_manifest(&client, &rest.join("\n---\n"), "gitops-bootstrap")
        .await
        .unwrap();
    until(
        &flux_api::<Deployment>(&client),
        "source-controller",
        "Available",
        |d| d.status.as_ref().and_then(|s| s.ready_replicas) == Some(1),
    )
    .await;
    until_ready(&api, "charts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_repository_fetches_over_ssh_with_identity_and_known_hosts() {
    let env = env().await;
    let sha = env
        .git
        .commit_files(REPO, "main", &[("apps/ns.yaml", NAMESPACE_YAML)], "init")
        .unwrap();
    let ssh = testkit::git::SshGitServer::start(env.git.repos_dir())
        .await
        .expect("sshd");
    let identity = std::fs::read_to_string(ssh.client_key_path()).unwrap();
    let public = std::fs::read_to_string(ssh.client_key_path().with_extension("pub")).unwrap();
    let entries = [
        ("identity", identity.as_str()),
        ("identity.pub", public.as_str()),
        ("known_hosts", ssh.known_hosts_line()),
    ];
    create_secret(&env, "ssh-auth", &entries).await;
    let api = flux_api::<GitRepository>(&env.client);
    api.create(
        &PostParams::default(),
        &git_repository("over-ssh", ssh.url(REPO), "ssh-auth"),
    )
    .await
    .unwrap();
    let repo = until_ready(&api, "over-ssh").await;
    assert_eq!(
        repo.status.unwrap().artifact.unwrap().revision,
        format!("main@sha1:{sha}")
    );
}
