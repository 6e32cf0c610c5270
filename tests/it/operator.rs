//! `flux.install = "operator"` end to end: the product binary with real Terraform
//! (terraform/existing), real Git over HTTPS and the test cluster running the stand-in Flux
//! Operator, which installs the stand-in controllers from the FluxInstance the tool applies.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, ValidationDirective,
};
use testkit::env_config::{EnvConfig, Flux};
use testkit::flux::FluxOptions;

use crate::support::sandbox::{ENV, FLUX_VERSION, Sandbox};
use crate::support::{FLUX_UNINSTALL_FILTER, snapshot};

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

fn with_operator() -> FluxOptions {
    FluxOptions {
        operator: true,
        ..FluxOptions::default()
    }
}

/// A sandbox whose stand-ins include the Flux Operator, and whose env installs Flux through it
/// from the operator manifest the testkit writes.
async fn operator_sandbox() -> Sandbox {
    let sandbox = Sandbox::start_with(with_operator()).await;
    sandbox.write_dev_config(operator_env(&sandbox));
    sandbox
}

/// Writes the operator manifest; env `dev` installing Flux through it.
fn operator_env(sandbox: &Sandbox) -> EnvConfig {
    let manifest = sandbox.path("flux-operator.yaml");
    std::fs::write(&manifest, testkit::flux::operator_manifest()).expect("operator manifest");
    EnvConfig {
        flux_manifests: Some(manifest.display().to_string()),
        flux: Some(Flux {
            install: "operator".to_owned(),
        }),
        ..sandbox.dev_config()
    }
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
    // Flux v2.4 watches no labelled config: no watch label (config_change:: has v2.10's).
    assert_eq!(labels.get("reconcile.fluxcd.io/watch"), None);
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
    sandbox.write_config();
    let classic = sandbox.run(&CREATE).await;
    assert_eq!(classic.code, 0, "{}", classic.output());
    let before = app_uids(&sandbox).await;
    assert!(before.len() > 5, "{before:?}");
    let seeded = sandbox.log().len();

    sandbox.write_dev_config(operator_env(&sandbox));
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

/// `status --drift` names a FluxInstance someone suspended by hand (and the field they own);
/// `plan` diffs the FluxInstance a newer `flux_version` would commit; `rebuild` re-applies the
/// committed FluxInstance and operator manifest — never the newer ones the config names now.
#[tokio::test(flavor = "multi_thread")]
async fn operator_mode_drifts_plans_and_rebuilds_on_the_committed_instance() {
    let sandbox = operator_sandbox().await;
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());
    let commits = sandbox.log();
    let committed = sandbox.committed(INSTANCE).expect("FluxInstance committed");

    let clean = sandbox.run(&["status", ENV, "--drift"]).await;
    assert_eq!(clean.code, 0, "{}", clean.output());
    snapshot!("operator_drift_clean", &clean.stdout);
    let by_hand = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    let suspend = |value: Option<&str>| serde_json::json!({"metadata": {"annotations": {"fluxcd.controlplane.io/reconcile": value}}});
    let instances = instance_api(&sandbox);
    instances
        .patch("flux", &by_hand, &Patch::Merge(suspend(Some("disabled"))))
        .await
        .expect("suspending the FluxInstance");
    let drifted = sandbox.run(&["status", ENV, "--drift"]).await;
    assert_eq!(drifted.code, 1, "{}", drifted.output());
    snapshot!("operator_drift_suspended", &drifted.stdout);
    instances
        .patch("flux", &by_hand, &Patch::Merge(suspend(None)))
        .await
        .expect("resuming the FluxInstance");

    // Newer than what is committed: the config's Flux and the operator manifest on disk.
    sandbox.write_dev_config(operator_env(&sandbox).with_flux_version("v2.10.0"));
    let marker = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: newer-operator-only\n  namespace: flux-system\n";
    let manifest = format!("{}---\n{marker}", testkit::flux::operator_manifest());
    std::fs::write(sandbox.path("flux-operator.yaml"), manifest).unwrap();

    let plan = sandbox.run(&["plan", ENV]).await;
    assert_eq!(plan.code, 0, "{}", plan.output());
    let cluster = plan.stdout.split("\ncluster:").nth(1).unwrap_or_default();
    snapshot!("operator_plan_newer_cluster", format!("cluster:{cluster}"));

    let rebuilt = sandbox.run(&["rebuild", ENV, "--yes"]).await;
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.output());
    snapshot!("operator_rebuild_intact", &rebuilt.stdout);
    assert_eq!(sandbox.log(), commits, "rebuild writes no commit");
    let live = instances.get("flux").await.expect("FluxInstance");
    let committed: serde_json::Value = serde_yaml_ng::from_str(&committed).unwrap();
    assert_eq!(
        live.data["spec"]["distribution"], committed["spec"]["distribution"],
        "the committed distribution, not the config's newer one"
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    assert!(
        config_maps
            .get_opt("newer-operator-only")
            .await
            .unwrap()
            .is_none(),
        "the committed operator manifest, not the newer one on disk"
    );
}

const FLEET_DIR: &str = "operator-fleet/clusters/dev/flux-system";

/// The data of the live `flux-runtime-info`.
async fn runtime_info(sandbox: &Sandbox) -> std::collections::BTreeMap<String, String> {
    let config_maps: Api<ConfigMap> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let runtime = config_maps
        .get("flux-runtime-info")
        .await
        .expect("runtime info");
    runtime.data.unwrap_or_default()
}

/// tests/fixtures/operator-fleet: the repository's own FluxInstance, runtime-info and
/// kustomization.yaml in `clusters/dev/flux-system/`, and a tenants Kustomization substituting
/// from `flux-runtime-info` — up with configuration alone, Git's keys of `flux-runtime-info`
/// kept beside the tool's through create-env and its rerun.
#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_laid_out_for_the_operator_comes_up_with_configuration_alone() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/operator-fleet");
    let sandbox = Sandbox::start_seeded_with(&fixture, with_operator()).await;
    let instance = format!("{FLEET_DIR}/flux-instance.yaml");
    sandbox.replace_in_repo(
        &instance,
        "https://git.invalid/replaced-by-the-test.git",
        &sandbox.repo_url(),
    );
    let ours: Vec<Option<String>> = [
        "flux-instance.yaml",
        "runtime-info.yaml",
        "kustomization.yaml",
    ]
    .iter()
    .map(|file| sandbox.committed(&format!("{FLEET_DIR}/{file}")))
    .collect();
    // The fleet's layout.
    let mut env = operator_env(&sandbox);
    env.repository_mut().path = Some("operator-fleet".to_owned());
    env.repository_mut().profiles_dir = Some("clusters/_profiles".to_owned());
    sandbox.write_dev_config(env);

    let create = [
        "create-env",
        ENV,
        "--profile",
        "lab",
        "--yes",
        "--timeout",
        "120s",
    ];
    let run = sandbox.run(&create).await;
    assert_eq!(run.code, 0, "{}", run.output());
    snapshot!("operator_fleet_created", &run.stdout);
    let log = sandbox.log();
    let kept: Vec<Option<String>> = [
        "flux-instance.yaml",
        "runtime-info.yaml",
        "kustomization.yaml",
    ]
    .iter()
    .map(|file| sandbox.committed(&format!("{FLEET_DIR}/{file}")))
    .collect();
    assert_eq!(kept, ours, "the fleet's flux-system/ is its own");
    assert!(
        sandbox
            .committed(&format!("{FLEET_DIR}/flux-operator.yaml"))
            .is_some()
    );

    let expected = [
        ("region", "lab-west"),
        ("tenant_prefix", "team"),
        ("cluster_name", "sandbox"),
        ("base_domain", "sandbox.example.test"),
    ];
    let data = runtime_info(&sandbox).await;
    for (key, value) in expected {
        assert_eq!(
            data.get(key).map(String::as_str),
            Some(value),
            "{key}: {data:?}"
        );
    }
    // tenants/ is applied by the fleet's own Kustomization, from Git's keys and the tool's.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(sandbox.cluster.client());
    let deadline = Instant::now() + Duration::from_secs(60);
    let tenant = loop {
        if let Some(found) = namespaces.get_opt("team-sandbox").await.unwrap() {
            break found;
        }
        assert!(Instant::now() < deadline, "tenants/ never applied");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(tenant.metadata.labels.unwrap()["region"], "lab-west");
    assert_eq!(
        tenant.metadata.annotations.unwrap()["domain"],
        "sandbox.example.test"
    );

    let rerun = sandbox.run(&create).await;
    assert_eq!(rerun.code, 0, "{}", rerun.output());
    assert_eq!(sandbox.log(), log, "a rerun makes no commit");
    let data = runtime_info(&sandbox).await;
    for (key, value) in expected {
        assert_eq!(
            data.get(key).map(String::as_str),
            Some(value),
            "{key}: {data:?}"
        );
    }
}

/// teardown looks for what the operator installed from the FluxInstance (its inventory), not
/// only for the operator's own manifest: an object the operator keeps on uninstall
/// (`fluxcd.controlplane.io/prune: disabled`) is left behind, and teardown says so.
#[tokio::test(flavor = "multi_thread")]
async fn teardown_in_operator_mode_looks_for_what_the_operator_installed() {
    let sandbox = operator_sandbox().await;
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());
    let live = instance_api(&sandbox).get("flux").await.unwrap();
    let role = live.data["status"]["inventory"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["id"].as_str())
        .find_map(|id| {
            id.strip_prefix('_')?
                .strip_suffix("_rbac.authorization.k8s.io_ClusterRole")
        })
        .expect("the operator installed a ClusterRole")
        .to_owned();
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(sandbox.cluster.client());
    let keep = serde_json::json!({"metadata": {"annotations": {"fluxcd.controlplane.io/prune": "disabled"}}});
    roles
        .patch(&role, &PatchParams::default(), &Patch::Merge(&keep))
        .await
        .expect("marking the ClusterRole");

    let down = sandbox.run(&["teardown", ENV, "--yes"]).await;
    assert_eq!(down.code, 1, "{}", down.output());
    // Whether helm's uninstall already released the ingress load balancer varies.
    let released = (r"(✔ delete-cloud-resources: ).*", "$1[what helm left]");
    snapshot!(
        "operator_teardown_left_behind",
        &down.stderr,
        extra = [released, FLUX_UNINSTALL_FILTER]
    );
    assert!(roles.get_opt(&role).await.unwrap().is_some(), "it is there");
    roles
        .delete(&role, &Default::default())
        .await
        .expect("cleaning up");
}

/// A cluster where another bootstrapper (the operator's Terraform module, say) installed the
/// operator and a FluxInstance is another tool's: create-env refuses it without a change, and
/// takes the instance over with `--adopt`.
#[tokio::test(flavor = "multi_thread")]
async fn a_flux_instance_another_bootstrapper_left_is_refused_and_adopted_with_adopt() {
    use gitops_bootstrap::cluster::apply::{self, ApplyOptions};

    let sandbox = operator_sandbox().await;
    let client = sandbox.cluster.client();
    let bootstrapper = ApplyOptions::new("flux-operator-bootstrap").forced();
    apply::apply_yaml(&client, &testkit::flux::operator_manifest(), &bootstrapper)
        .await
        .expect("the bootstrapper's operator");
    let theirs = format!(
        "apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata: {{name: flux, namespace: flux-system}}
spec:
  distribution: {{version: \"{}\", registry: ghcr.io/fluxcd}}
  sync: {{kind: GitRepository, url: https://git.example.test/fleet.git, ref: refs/heads/main, path: clusters/production}}
",
        FLUX_VERSION.trim_start_matches('v')
    );
    apply::apply_yaml(&client, &theirs, &bootstrapper)
        .await
        .expect("the bootstrapper's FluxInstance");
    let before = instance_api(&sandbox).get("flux").await.unwrap();
    let seeded = sandbox.log();

    let refused = sandbox.run(&CREATE).await;
    assert_eq!(refused.code, 2, "{}", refused.output());
    // The operator writes its status and finalizer meanwhile; the spec and who wrote it are
    // what the tool must leave alone.
    let after = instance_api(&sandbox).get("flux").await.unwrap();
    assert_eq!(
        after.data["spec"], before.data["spec"],
        "their spec untouched"
    );
    let writers: Vec<String> = after
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|entry| entry.manager.clone())
        .collect();
    assert!(
        writers.iter().all(|m| !m.starts_with("gitops-bootstrap")),
        "{writers:?}"
    );
    assert_eq!(sandbox.log(), seeded, "nothing committed");
    let told: Vec<&str> = refused
        .stderr
        .lines()
        .filter(|line| line.contains("error:") || line.trim_start().starts_with("hint:"))
        .collect();
    snapshot!("operator_foreign_instance_refused", told.join("\n"));

    let mut adopting = CREATE.to_vec();
    adopting.push("--adopt");
    let adopted = sandbox.run(&adopting).await;
    assert_eq!(adopted.code, 0, "{}", adopted.output());
    let ours = instance_api(&sandbox).get("flux").await.unwrap();
    let path = ours.data["spec"]["sync"]["path"]
        .as_str()
        .unwrap_or_default();
    assert!(path.ends_with("clusters/dev"), "the env's sync: {path}");
    assert_eq!(ours.data["spec"]["sync"]["url"], sandbox.repo_url());
}
