//! `flux.install = "operator"` end to end: the product binary with real Terraform
//! (terraform/existing), real Git over HTTPS and the test cluster running the stand-in Flux
//! Operator, which installs the stand-in controllers from the FluxInstance the tool applies.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, ValidationDirective,
};
use testkit::flux::FluxOptions;

use crate::support::sandbox::{ENV, Sandbox};

const CREATE: [&str; 7] = [
    "create-env",
    ENV,
    "--profile",
    "standard",
    "--yes",
    "--timeout",
    "120s",
];
const INSTANCE: &str = "clusters/dev/flux-system/flux-instance.yaml";

/// A sandbox whose stand-ins include the Flux Operator, and whose env installs Flux through it
/// from the operator manifest the testkit writes.
async fn operator_sandbox() -> Sandbox {
    let sandbox = Sandbox::start_with(FluxOptions {
        operator: true,
        ..FluxOptions::default()
    })
    .await;
    let manifest = sandbox.path("flux-operator.yaml");
    std::fs::write(&manifest, testkit::flux::operator_manifest()).expect("operator manifest");
    let components = sandbox.path("gotk-components.yaml");
    let toml = sandbox
        .config_toml(sandbox.cluster.kubeconfig_path(), &sandbox.repo_url())
        .replace(
            &format!("flux_manifests = \"{}\"", components.display()),
            &format!(
                "flux_manifests = \"{}\"\nflux = {{ install = \"operator\" }}",
                manifest.display()
            ),
        );
    assert!(toml.contains("install = \"operator\""), "{toml}");
    std::fs::write(sandbox.path("gitops-bootstrap.toml"), toml).expect("writing the config");
    sandbox
}

fn instance_api(sandbox: &Sandbox) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("fluxcd.controlplane.io", "v1", "FluxInstance");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "fluxinstances");
    Api::namespaced_with(sandbox.cluster.client(), "flux-system", &resource)
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_mode_comes_up_reruns_without_a_commit_and_tears_down() {
    let sandbox = operator_sandbox().await;
    let seeded = sandbox.log().len();

    let first = sandbox.run(&CREATE).await;
    assert_eq!(first.code, 0, "{}", first.output());
    assert_eq!(sandbox.log().len(), seeded + 1, "one commit for the env");
    let instance = sandbox.committed(INSTANCE).expect("FluxInstance committed");
    assert!(
        instance.starts_with("# The Flux Operator installs Flux"),
        "{instance}"
    );
    let operator = sandbox
        .committed("clusters/dev/flux-system/flux-operator.yaml")
        .expect("operator manifest committed");
    assert!(operator.ends_with(&testkit::flux::operator_manifest()));
    for classic in ["gotk-components.yaml", "gotk-sync.yaml"] {
        let path = format!("clusters/dev/flux-system/{classic}");
        assert_eq!(sandbox.committed(&path), None, "{path}");
    }

    let live = instance_api(&sandbox)
        .get("flux")
        .await
        .expect("FluxInstance");
    let ready = live.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "{:?}", live.data["status"]);
    let config_maps: Api<ConfigMap> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let runtime = config_maps
        .get("flux-runtime-info")
        .await
        .expect("runtime info");
    assert_eq!(runtime.data.as_ref().unwrap()["cluster_name"], "sandbox");
    let labels = runtime.metadata.labels.unwrap();
    assert_eq!(labels["toolkit.fluxcd.io/runtime"], "true");
    assert_eq!(labels["reconcile.fluxcd.io/watch"], "Enabled");
    let annotations = runtime.metadata.annotations.unwrap();
    assert_eq!(annotations["kustomize.toolkit.fluxcd.io/ssa"], "Merge");

    let rerun = sandbox.run(&CREATE).await;
    assert_eq!(rerun.code, 0, "{}", rerun.output());
    assert_eq!(sandbox.log().len(), seeded + 1, "a rerun commits nothing");

    let status = sandbox.run(&["status", ENV]).await;
    assert_eq!(status.code, 0, "{}", status.output());
    let first_row = status.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        first_row.contains("FluxInstance flux-system/flux") && first_row.contains("Ready"),
        "{}",
        status.stdout
    );

    let down = sandbox.run(&["teardown", ENV, "--yes"]).await;
    assert_eq!(down.code, 0, "{}", down.output());
    assert!(
        instance_api(&sandbox)
            .get_opt("flux")
            .await
            .unwrap_or(None)
            .is_none(),
        "the FluxInstance is gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_distribution_version_fails_fast_with_the_operators_reason() {
    let sandbox = operator_sandbox().await;
    let own = "apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: \"9.9.x\"
    registry: ghcr.io/fluxcd
  sync:
    kind: GitRepository
    url: https://example.invalid/fleet.git
    ref: refs/heads/main
    path: clusters/dev
";
    sandbox.commit_file(INSTANCE, own, "a FluxInstance of our own");
    let mut create = vec!["create-env", ENV, "--profile", "standard", "--yes"];
    let linted = sandbox.run(&create).await;
    assert_ne!(linted.code, 0, "{}", linted.output());
    assert!(
        linted.output().contains("flux-instance"),
        "{}",
        linted.output()
    );

    create.extend(["--skip-lint", "--timeout", "120s"]);
    let started = Instant::now();
    let run = sandbox.run(&create).await;
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(
        run.stderr
            .contains("FluxInstance flux-system/flux failed (BuildFailed)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("9.9.x"), "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "failed fast: {:?}",
        started.elapsed()
    );
    assert_eq!(
        sandbox.committed(INSTANCE).as_deref(),
        Some(own),
        "kept ours"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_operator_mode_writes_passes_strict_validation() {
    let sandbox = operator_sandbox().await;
    let run = sandbox.run(&CREATE).await;
    assert_eq!(run.code, 0, "{}", run.output());
    let instance = sandbox.committed(INSTANCE).expect("FluxInstance committed");
    let object: serde_json::Value =
        serde_yaml_ng::from_str(&instance).expect("the FluxInstance parses");
    let mut params = PatchParams::apply("operator-strict-test").force();
    params.dry_run = true;
    params.field_validation = Some(ValidationDirective::Strict);
    let applied = instance_api(&sandbox)
        .patch("flux", &params, &Patch::Apply(&object))
        .await;
    assert!(applied.is_ok(), "{applied:?}");
    let config_maps: Api<ConfigMap> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let mut runtime = config_maps
        .get("flux-runtime-info")
        .await
        .expect("runtime info");
    runtime.metadata.managed_fields = None;
    runtime.metadata.resource_version = None;
    let applied = config_maps
        .patch("flux-runtime-info", &params, &Patch::Apply(&runtime))
        .await;
    assert!(applied.is_ok(), "{applied:?}");
}

/// The uid of every object the apps' Kustomizations applied, by inventory id.
async fn app_uids(sandbox: &Sandbox) -> std::collections::BTreeMap<String, String> {
    let client = sandbox.cluster.client();
    let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "kustomizations");
    let kustomizations: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let mut uids = std::collections::BTreeMap::new();
    for kustomization in kustomizations.list(&Default::default()).await.unwrap() {
        if kustomization.metadata.name.as_deref() == Some("flux-system") {
            continue;
        }
        let entries = kustomization.data["status"]["inventory"]["entries"].clone();
        for entry in entries.as_array().into_iter().flatten() {
            let id = entry["id"].as_str().unwrap().to_owned();
            let parts: Vec<&str> = id.split('_').collect();
            let [namespace, name, group, kind] = parts[..] else {
                continue;
            };
            let Some((resource, _)) = discovery
                .groups()
                .filter(|g| g.name() == group)
                .flat_map(|g| g.recommended_resources())
                .find(|(r, _)| r.kind == kind)
            else {
                continue;
            };
            let api: Api<DynamicObject> = match namespace {
                "" => Api::all_with(client.clone(), &resource),
                ns => Api::namespaced_with(client.clone(), ns, &resource),
            };
            let live = api.get(name).await.unwrap_or_else(|e| panic!("{id}: {e}"));
            uids.insert(id, live.metadata.uid.unwrap());
        }
    }
    uids
}

#[tokio::test(flavor = "multi_thread")]
async fn an_env_migrates_to_the_operator_and_back_keeping_every_app_object() {
    let sandbox = operator_sandbox().await;
    let operator_toml = std::fs::read_to_string(sandbox.path("gitops-bootstrap.toml")).unwrap();
    sandbox.write_config();
    let classic = sandbox.run(&CREATE).await;
    assert_eq!(classic.code, 0, "{}", classic.output());
    let before = app_uids(&sandbox).await;
    assert!(before.len() > 5, "{before:?}");
    let seeded = sandbox.log().len();

    std::fs::write(sandbox.path("gitops-bootstrap.toml"), &operator_toml).unwrap();
    let migrated = sandbox.run(&CREATE).await;
    assert_eq!(migrated.code, 0, "{}", migrated.output());
    assert_eq!(sandbox.log().len(), seeded + 1, "one commit");
    assert_eq!(
        sandbox.committed("clusters/dev/flux-system/gotk-components.yaml"),
        None
    );
    assert!(sandbox.committed(INSTANCE).is_some());
    assert_eq!(
        app_uids(&sandbox).await,
        before,
        "no app object replaced or pruned"
    );
    let status = sandbox.run(&["status", ENV]).await;
    assert_eq!(status.code, 0, "{}", status.output());

    sandbox.write_config();
    let back = sandbox.run(&CREATE).await;
    assert_eq!(back.code, 0, "{}", back.output());
    assert_eq!(sandbox.committed(INSTANCE), None);
    assert!(
        sandbox
            .committed("clusters/dev/flux-system/gotk-components.yaml")
            .is_some()
    );
    assert_eq!(app_uids(&sandbox).await, before, "and back");
    let status = sandbox.run(&["status", ENV]).await;
    assert_eq!(status.code, 0, "{}", status.output());
}
