//! `plan <env>` against the sandbox: the Terraform plan, then the files create-env would write
//! in the repository as a diff against the branch tip — all new before the env exists, none
//! changed after create-env, one changed after the branch moved — and plan pushes nothing.

use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

/// The JSON result with each diff cut to its first lines (gotk-components.yaml is long).
fn shortened(stdout: &str) -> String {
    let mut result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for file in result["result"]["repository"]["files"]
        .as_array_mut()
        .unwrap()
    {
        let diff = file["diff"].as_str().unwrap();
        let head: Vec<&str> = diff.lines().take(4).collect();
        file["diff"] = head.join("\n").into();
    }
    serde_json::to_string_pretty(&result).unwrap()
}

/// The resourceVersion of every object in flux-system that create-env applies.
async fn resource_versions(sandbox: &Sandbox) -> Vec<(String, String)> {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
    let mut versions = Vec::new();
    for (group, version, kind) in [
        ("", "v1", "ConfigMap"),
        ("", "v1", "Secret"),
        ("source.toolkit.fluxcd.io", "v1", "GitRepository"),
        ("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"),
        ("apps", "v1", "Deployment"),
    ] {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api: Api<DynamicObject> =
            Api::namespaced_with(sandbox.cluster.client(), "flux-system", &resource);
        for object in api.list(&ListParams::default()).await.unwrap() {
            versions.push((
                format!(
                    "{kind} {}",
                    object.metadata.name.clone().unwrap_or_default()
                ),
                object.metadata.resource_version.clone().unwrap_or_default(),
            ));
        }
    }
    versions
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_new_files_then_none_then_the_change() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let seeded = sandbox.log();

    let fresh = sandbox.run(&["plan", ENV]).await;
    assert_eq!(fresh.code, 0, "{}", fresh.output());
    snapshot!("fresh_text", &fresh.stdout);
    let json = sandbox.run(&["plan", ENV, "--output", "json"]).await;
    assert_eq!(json.code, 0, "{}", json.output());
    snapshot!("fresh_json", shortened(&json.stdout));
    assert_eq!(sandbox.log(), seeded, "plan pushed nothing");

    let create = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(create.code, 0, "{}", create.output());
    let versions_before = resource_versions(&sandbox).await;
    let after = sandbox.run(&["plan", ENV]).await;
    assert_eq!(after.code, 0, "{}", after.output());
    // The cluster section dry-runs every object create-env applies: nothing would change,
    // and nothing did.
    snapshot!("after_create_text", &after.stdout);
    assert_eq!(
        resource_versions(&sandbox).await,
        versions_before,
        "plan changed nothing"
    );

    // Someone removes a key of the live config and edits a secret value: the dry run shows
    // create-env would put the key back, and that the edited value (owned by its editor now)
    // stops the apply with a conflict; no secret value is shown.
    use base64::Engine as _;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::{Api, Patch, PatchParams};
    let client = sandbox.cluster.client();
    let by_hand = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    let tampered = base64::engine::general_purpose::STANDARD.encode("tampered-canary");
    Api::<ConfigMap>::namespaced(client.clone(), "flux-system")
        .patch(
            "cluster-config",
            &by_hand,
            &Patch::Merge(serde_json::json!({"data": {"cluster_name": null}})),
        )
        .await
        .unwrap();
    Api::<Secret>::namespaced(client, "flux-system")
        .patch(
            "cluster-secrets",
            &by_hand,
            &Patch::Merge(serde_json::json!({"data": {"dns_api_token": tampered}})),
        )
        .await
        .unwrap();
    let live = sandbox.run(&["plan", ENV]).await;
    assert_eq!(live.code, 0, "{}", live.output());
    let cluster = live.stdout.split("\ncluster:").nth(1).unwrap();
    snapshot!("live_change_text", format!("cluster:{cluster}"));
    for secret in ["sandbox-dns-token", "tampered", tampered.as_str()] {
        assert!(!live.output().contains(secret), "{}", live.output());
    }

    // Someone edits the committed sync interval: plan shows create-env would put it back.
    let path = "clusters/dev/flux-system/gotk-sync.yaml";
    let committed = sandbox.committed(path).unwrap();
    sandbox.commit_file(
        path,
        &committed.replacen("interval: \"1m\"", "interval: \"5m\"", 1),
        "test: a manual change",
    );
    let changed = sandbox.run(&["plan", ENV]).await;
    assert_eq!(changed.code, 0, "{}", changed.output());
    // The cluster section is pinned above; here Flux may or may not have applied the edit.
    let repository = changed.stdout.split("\ncluster:").next().unwrap();
    snapshot!("changed_text", repository);
}
