//! `status <env> --drift` against the sandbox: clean after create-env (exit 0); after someone
//! changes a live object Flux applied, with a field manager of their own, it exits 1 naming
//! the object, the manager and the field.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};

use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_clean_after_create_env_and_names_a_manual_change() {
    // Flux's stand-ins re-apply on the objects' own intervals, so a manual change stays until
    // the test has looked at it, as it would between two reconciliations.
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let create = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(create.code, 0, "{}", create.output());

    let clean = sandbox.run(&["status", ENV, "--drift"]).await;
    assert_eq!(clean.code, 0, "{}", clean.output());
    snapshot!("clean_text", &clean.stdout);

    let gvk = GroupVersionKind::gvk("helm.toolkit.fluxcd.io", "v2", "HelmRelease");
    let releases: Api<DynamicObject> = Api::namespaced_with(
        sandbox.cluster.client(),
        "ingress-nginx",
        &ApiResource::from_gvk(&gvk),
    );
    releases
        .patch(
            "ingress-nginx",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(serde_json::json!({"spec": {"interval": "5m"}})),
        )
        .await
        .expect("a manual change");

    let drifted = sandbox.run(&["status", ENV, "--drift"]).await;
    assert_eq!(drifted.code, 1, "{}", drifted.output());
    snapshot!("drifted_text", &drifted.stdout);
    let json = sandbox
        .run(&["--output", "json", "status", ENV, "--drift"])
        .await;
    assert_eq!(json.code, 1, "{}", json.output());
    let result: serde_json::Value =
        serde_json::from_str(json.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["result"]["drifted"], true);
    assert_eq!(
        result["result"]["flux"]["changed"],
        serde_json::json!([{
            "object": {"kind": "HelmRelease", "namespace": "ingress-nginx", "name": "ingress-nginx"},
            "applied_by": {"kind": "Kustomization", "namespace": "flux-system", "name": "ingress-nginx"},
            "manager": "kubectl-edit",
            "fields": ["spec.interval"],
        }]),
        "{result}"
    );
}

/// Someone changes `cluster-config` after Flux applied it: the Kustomizations substituting
/// from it (the profile's apps keep their 10-minute interval) have not applied it, and
/// `status --drift` says so.
#[tokio::test(flavor = "multi_thread")]
async fn drift_names_the_kustomizations_that_have_not_applied_changed_config() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let create = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(create.code, 0, "{}", create.output());
    // managedFields keep whole seconds: the change must be a later second than the apply.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(sandbox.cluster.client(), "flux-system");
    config_maps
        .patch(
            "cluster-config",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(serde_json::json!({"data": {"dns_domain": "changed.example"}})),
        )
        .await
        .expect("a manual change");

    let drifted = sandbox.run(&["status", ENV, "--drift"]).await;
    assert_eq!(drifted.code, 1, "{}", drifted.output());
    // When the config was changed and applied: this run's clock.
    snapshot!(
        "stale_config_text",
        &drifted.stdout,
        extra = [(r"\d{4}-\d\d-\d\dT[0-9:.]+Z", "[time]")]
    );
}
