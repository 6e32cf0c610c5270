//! Whose cluster is it (issue 8 item 5): the env that bootstrapped a cluster is recorded on its
//! `flux-system` Namespace and checked at connect, before anything is written to the cluster or
//! to Git. A second env pointed at the first one's cluster stops with exit 2 and leaves it as it
//! was; a cluster `flux bootstrap` left is refused without `--adopt` and taken over with it.

use std::collections::BTreeMap;

use gitops_bootstrap::cluster::apply::{self, ApplyOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

const FLUX: &str = "flux-system";

fn flux_api(sandbox: &Sandbox, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1", kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    Api::namespaced_with(sandbox.cluster.client(), FLUX, &resource)
}

fn git_repositories(sandbox: &Sandbox) -> Api<DynamicObject> {
    flux_api(
        sandbox,
        "source.toolkit.fluxcd.io",
        "GitRepository",
        "gitrepositories",
    )
}

fn kustomizations(sandbox: &Sandbox) -> Api<DynamicObject> {
    flux_api(
        sandbox,
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
    )
}

/// What the first env owns, to compare before and after the second env's attempt: the
/// content of its config, age key and sync objects, and its directory in Git.
async fn first_env_state(sandbox: &Sandbox) -> BTreeMap<String, String> {
    let client = sandbox.cluster.client();
    let config = Api::<ConfigMap>::namespaced(client.clone(), FLUX)
        .get("cluster-config")
        .await
        .unwrap();
    let age = Api::<Secret>::namespaced(client.clone(), FLUX)
        .get("sops-age")
        .await
        .unwrap();
    let repository = git_repositories(sandbox).get(FLUX).await.unwrap();
    let kustomization = kustomizations(sandbox).get(FLUX).await.unwrap();
    let namespace = Api::<Namespace>::all(client).get(FLUX).await.unwrap();
    let mut state = BTreeMap::from([
        ("cluster-config".into(), format!("{:?}", config.data)),
        ("sops-age".into(), format!("{:?}", age.data)),
        (
            "GitRepository spec".into(),
            repository.data["spec"].to_string(),
        ),
        (
            "Kustomization spec".into(),
            kustomization.data["spec"].to_string(),
        ),
        (
            "record".into(),
            format!("{:?}", namespace.metadata.annotations),
        ),
        ("branch".into(), sandbox.log().join(",")),
    ]);
    for file in [
        "profile.yaml",
        "kustomization.yaml",
        "flux-system/gotk-sync.yaml",
    ] {
        let path = format!("clusters/{ENV}/{file}");
        state.insert(path.clone(), sandbox.committed(&path).unwrap());
    }
    state
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_env_on_the_first_envs_cluster_stops_before_any_write() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config_sharing_the_cluster("second");
    let first = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(first.code, 0, "{}", first.output());
    let before = first_env_state(&sandbox).await;
    assert!(before["record"].contains("clusters/dev"), "{before:?}");

    let second = sandbox.run(&["create-env", "second", "--yes"]).await;
    assert_eq!(second.code, 2, "{}", second.output());
    assert!(
        !second.stderr.contains("config-and-secrets"),
        "stopped at connect: {}",
        second.stderr
    );
    assert_eq!(
        first_env_state(&sandbox).await,
        before,
        "the first env is untouched"
    );
    assert_eq!(sandbox.committed("clusters/second/profile.yaml"), None);
    let report = second.error_report().replace(&sandbox.repo_url(), "[repo]");
    snapshot!("second_env_refused", report);
}

/// The cluster as `flux bootstrap` leaves it: the components installed by the `flux` CLI, its
/// Git credentials Secret, and the sync objects last applied by kustomize-controller (pointing
/// at another repository and path). Forced, as on a long-lived test cluster an earlier test's
/// env wrote these objects.
async fn bootstrapped_by_flux(sandbox: &Sandbox) {
    let client = sandbox.cluster.client();
    let flux_cli = ApplyOptions::new("flux").forced();
    let components = std::fs::read_to_string(sandbox.path("gotk-components.yaml")).unwrap();
    apply::apply_yaml(&client, &components, &flux_cli)
        .await
        .unwrap();
    let secret = r#"
apiVersion: v1
kind: Secret
metadata: {name: flux-system, namespace: flux-system}
data: {username: Z2l0, password: YS10b2tlbi1mbHV4LWJvb3RzdHJhcC1zdG9yZWQ=}
"#;
    apply::apply_yaml(&client, secret, &flux_cli).await.unwrap();
    let sync = r#"
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 1m
  url: https://git.example.test/fleet-infra.git
  ref: {branch: main}
  secretRef: {name: flux-system}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 10m
  path: ./clusters/production
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
"#;
    apply::apply_yaml(
        &client,
        sync,
        &ApplyOptions::new("kustomize-controller").forced(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_flux_bootstrap_left_is_refused_and_converges_with_adopt() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    bootstrapped_by_flux(&sandbox).await;
    let seeded = sandbox.log();
    // A long-lived test cluster may hold an earlier test's config: it must stay as it is.
    let configs: Api<ConfigMap> = Api::namespaced(sandbox.cluster.client(), FLUX);
    let config_before = configs.get_opt("cluster-config").await.unwrap();

    let refused = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(refused.code, 2, "{}", refused.output());
    let config_after = configs.get_opt("cluster-config").await.unwrap();
    assert_eq!(
        config_after.map(|c| c.metadata.resource_version),
        config_before.map(|c| c.metadata.resource_version),
        "no config written"
    );
    assert_eq!(sandbox.log(), seeded, "nothing committed");

    let adopted = sandbox.run(&["create-env", ENV, "--yes", "--adopt"]).await;
    assert_eq!(adopted.code, 0, "{}", adopted.output());
    // The connect line, and per step the fields taken over (what else a step changed depends
    // on what an earlier test left on a long-lived test cluster).
    let taken: Vec<String> = adopted
        .stderr
        .lines()
        .filter_map(|line| {
            let step = line.split_once("✔ ")?.1.split(':').next()?;
            match line.find("took over") {
                Some(at) => Some(format!("{step}: {}", line[at..].trim_end())),
                None => (step == "connect").then(|| line.to_owned()),
            }
        })
        .collect();
    let namespace = Api::<Namespace>::all(sandbox.cluster.client())
        .get(FLUX)
        .await
        .unwrap();
    let record = namespace.metadata.annotations.unwrap_or_default();
    assert_eq!(record["gitops-bootstrap.io/path"], "clusters/dev");
    let kustomization = kustomizations(&sandbox).get(FLUX).await.unwrap();
    assert_eq!(kustomization.data["spec"]["path"], "./clusters/dev");
    snapshot!("flux_bootstrap_refused", refused.error_report());
    snapshot!("flux_bootstrap_adopted", taken.join("\n"));
}
