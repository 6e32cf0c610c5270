//! A rerun that changes the contract — a `cluster_config` value, a `cluster_secrets` value — is
//! Ready only once Flux applied it. The apps' Kustomizations keep the profile's real 10-minute
//! interval in the stand-ins (Flux v2.4, which watches no labelled config), so only the run's
//! own reconcile request brings the new values before its wait ends. A run that changes
//! nothing requests nothing; a run recreating a deleted `cluster-secrets` is not failed by
//! Flux's old `not found`. On a Flux that watches labelled config (v2.7 on) the contract's
//! objects carry the label, so a change of them by anyone reaches the apps at once. The
//! product binary, real Terraform and Git, the test cluster.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};

use crate::support::sandbox::{ENV, FLUX_VERSION, Run, Sandbox};
use crate::support::snapshot;

const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
const CREATE_JSON: [&str; 5] = ["--output", "json", "create-env", ENV, "--yes"];
const WATCH_LABEL: &str = "reconcile.fluxcd.io/watch";
/// A Flux whose kustomize-controller watches labelled ConfigMaps and Secrets.
const WATCHING_FLUX: &str = "v2.10.0";

/// Writes the sandbox's config with `dns_domain` (external-dns's domain filter) in
/// `cluster_config`.
fn write_config_with_domain(sandbox: &Sandbox, domain: &str) {
    let env = sandbox.dev_config().with_variable(
        "cluster_config",
        serde_json::json!({"base_domain": "sandbox.example.test", "dns_domain": domain}),
    );
    sandbox.write_dev_config(env);
}

fn flux_api(sandbox: &Sandbox, namespace: &str, group: &str, kind: &str) -> Api<DynamicObject> {
    let (group, version) = group.split_once('/').expect("group/version");
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Api::namespaced_with(
        sandbox.cluster.client(),
        namespace,
        &ApiResource::from_gvk(&gvk),
    )
}

/// The values of HelmRelease external-dns/external-dns as the cluster holds them now.
async fn external_dns_values(sandbox: &Sandbox) -> serde_json::Value {
    let releases = flux_api(
        sandbox,
        "external-dns",
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
    );
    let release = releases.get("external-dns").await.expect("the release");
    release.data["spec"]["values"].clone()
}

/// The watch label of `cluster-config` and of `cluster-secrets` as the cluster holds them.
async fn watch_labels(sandbox: &Sandbox) -> [Option<String>; 2] {
    let config_maps: Api<ConfigMap> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let secrets: Api<Secret> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let config = config_maps
        .get("cluster-config")
        .await
        .expect("cluster-config");
    let secret = secrets
        .get("cluster-secrets")
        .await
        .expect("cluster-secrets");
    [config.metadata, secret.metadata].map(|metadata| {
        metadata
            .labels
            .and_then(|labels| labels.get(WATCH_LABEL).cloned())
    })
}

fn kustomizations(sandbox: &Sandbox) -> Api<DynamicObject> {
    let group = "kustomize.toolkit.fluxcd.io/v1";
    flux_api(sandbox, "flux-system", group, "Kustomization")
}

/// Each Kustomization's reconcile request, by name.
async fn requests(sandbox: &Sandbox) -> BTreeMap<String, Option<String>> {
    let list = kustomizations(sandbox)
        .list(&Default::default())
        .await
        .expect("listing Kustomizations");
    list.items
        .into_iter()
        .map(|ks| {
            let request = ks
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REQUESTED_AT));
            (
                ks.metadata.name.clone().unwrap_or_default(),
                request.cloned(),
            )
        })
        .collect()
}

/// The `step_finished` event of step `name` in a run's JSON events, pretty-printed.
fn step(run: &Run, name: &str) -> String {
    let events = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"));
    let mut finished = events.filter(|event: &serde_json::Value| {
        event["event"] == "step_finished" && event["step"] == name
    });
    let event = finished
        .next()
        .unwrap_or_else(|| panic!("no step {name}: {}", run.stdout));
    serde_json::to_string_pretty(&event).unwrap()
}

fn succeeded(run: &Run) {
    assert_eq!(run.code, 0, "{}", run.output());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_cluster_config_is_in_the_release_before_create_env_says_ready() {
    let sandbox = Sandbox::start().await;
    write_config_with_domain(&sandbox, "first.example");
    succeeded(&sandbox.run(&["create-env", ENV, "--yes"]).await);
    let values = external_dns_values(&sandbox).await;
    assert_eq!(
        values["domainFilters"],
        serde_json::json!(["first.example"])
    );
    // Flux v2.4 watches no labelled config: the tool puts no label on it.
    assert_eq!(watch_labels(&sandbox).await, [None, None]);
    let before = requests(&sandbox).await;

    write_config_with_domain(&sandbox, "second.example");
    let changed = sandbox.run(&CREATE_JSON).await;
    succeeded(&changed);
    // Read as the run ends: Flux applied the new value before the run said Ready.
    let values = external_dns_values(&sandbox).await;
    assert_eq!(
        values["domainFilters"],
        serde_json::json!(["second.example"])
    );
    snapshot!(
        "cluster_config_changed_step",
        step(&changed, "config-and-secrets")
    );

    // Each Kustomization substituting from cluster-config was asked once, with one value;
    // the sync objects, whose commit did not change, were not.
    let after = requests(&sandbox).await;
    let asked: BTreeMap<&String, &Option<String>> = after
        .iter()
        .filter(|(name, request)| before.get(*name) != Some(*request))
        .collect();
    let names: Vec<&str> = asked.keys().map(|name| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cert-manager",
            "cluster-issuer",
            "external-dns",
            "ingress-nginx",
            "profile"
        ]
    );
    let values: std::collections::BTreeSet<_> = asked.values().collect();
    assert_eq!(values.len(), 1, "one request for the run: {asked:?}");

    // A rerun that changes nothing requests nothing.
    let unchanged = sandbox.run(&CREATE_JSON).await;
    succeeded(&unchanged);
    assert_eq!(requests(&sandbox).await, after, "no new reconcile request");
    snapshot!(
        "cluster_config_unchanged_step",
        step(&unchanged, "config-and-secrets")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_cluster_secrets_value_is_in_the_release_before_rebuild_says_ready() {
    let sandbox = Sandbox::start().await;
    let release = "profiles/apps/external-dns/release.yaml";
    sandbox.replace_in_repo(
        release,
        "txtOwnerId: ${cluster_name}",
        "txtOwnerId: ${dns_api_token}",
    );
    sandbox.write_config();
    succeeded(&sandbox.run(&["create-env", ENV, "--yes"]).await);
    let values = external_dns_values(&sandbox).await;
    assert_eq!(values["txtOwnerId"], "sandbox-dns-token");

    let rotated = [(
        "SANDBOX_CLUSTER_SECRETS",
        r#"{"dns_api_token" = "rotated"}"#,
    )];
    let rebuilt = sandbox
        .run_with_env(&["rebuild", ENV, "--yes"], &rotated)
        .await;
    succeeded(&rebuilt);
    let values = external_dns_values(&sandbox).await;
    assert_eq!(values["txtOwnerId"], "rotated");
    snapshot!("cluster_secrets_changed_rebuild_text", &rebuilt.stdout);
}

/// Flux's reason and message of Kustomization `profile` once it no longer finds
/// cluster-secrets; the reconcile is requested, as Flux would get to it at its interval.
async fn profile_fails_without_cluster_secrets(sandbox: &Sandbox, attempt: usize) -> String {
    let secrets: Api<Secret> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    secrets
        .delete("cluster-secrets", &DeleteParams::default())
        .await
        .expect("deleting cluster-secrets");
    let request = serde_json::json!({"metadata": {"annotations": {
        REQUESTED_AT: format!("test-delete-{attempt}")
    }}});
    let api = kustomizations(sandbox);
    api.patch("profile", &PatchParams::default(), &Patch::Merge(&request))
        .await
        .expect("requesting a reconcile");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let profile = api.get("profile").await.expect("the profile");
        let conditions = profile.data["status"]["conditions"].as_array().cloned();
        let ready = conditions
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready" && c["reason"] == "BuildFailed");
        if let Some(ready) = ready {
            return ready["message"].as_str().unwrap_or_default().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "profile never failed: {profile:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deleting cluster-secrets makes Flux fail the profile's build; create-env and rebuild
/// recreate it and wait for Flux to build again, instead of failing on the old result.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_recreating_a_deleted_cluster_secrets_waits_for_flux_to_build_again() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    succeeded(&sandbox.run(&["create-env", ENV, "--yes"]).await);
    for attempt in 0..4 {
        let message = profile_fails_without_cluster_secrets(&sandbox, attempt).await;
        assert!(message.contains("cluster-secrets"), "{message}");
        let command = if attempt % 2 == 0 {
            "create-env"
        } else {
            "rebuild"
        };
        let run = sandbox.run(&[command, ENV, "--yes"]).await;
        assert_eq!(
            run.code,
            0,
            "{command} (attempt {attempt}): {}",
            run.output()
        );
    }
}

/// From Flux v2.7 on, `cluster-config` and `cluster-secrets` carry the watch label: a hand
/// edit of `cluster-config`, with no reconcile request from anyone, is in the release well
/// within the apps' 10-minute interval.
#[tokio::test(flavor = "multi_thread")]
async fn from_flux_2_7_on_a_change_of_the_contracts_objects_reaches_the_apps_at_once() {
    let sandbox = Sandbox::start().await;
    write_config_with_domain(&sandbox, "first.example");
    let config = sandbox.path("gitops-bootstrap.toml");
    let toml = std::fs::read_to_string(&config).expect("reading the config");
    let pinned = format!("flux_version = \"{FLUX_VERSION}\"");
    assert!(toml.contains(&pinned), "{toml}");
    let watching = toml.replace(&pinned, &format!("flux_version = \"{WATCHING_FLUX}\""));
    std::fs::write(&config, watching).expect("writing the config");
    std::fs::write(
        sandbox.path("gotk-components.yaml"),
        testkit::flux::components_manifest(WATCHING_FLUX),
    )
    .expect("writing the Flux components");
    succeeded(&sandbox.run(&["create-env", ENV, "--yes"]).await);
    let enabled = Some("Enabled".to_owned());
    assert_eq!(watch_labels(&sandbox).await, [enabled.clone(), enabled]);
    let before = requests(&sandbox).await;

    let config_maps: Api<ConfigMap> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let by_hand = PatchParams {
        field_manager: Some("kubectl-edit".to_owned()),
        ..PatchParams::default()
    };
    let edit = serde_json::json!({"data": {"dns_domain": "edited.example"}});
    config_maps
        .patch("cluster-config", &by_hand, &Patch::Merge(&edit))
        .await
        .expect("a hand edit");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let values = external_dns_values(&sandbox).await;
        if values["domainFilters"] == serde_json::json!(["edited.example"]) {
            break;
        }
        assert!(Instant::now() < deadline, "never applied: {values}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        requests(&sandbox).await,
        before,
        "nobody requested a reconcile"
    );
}
