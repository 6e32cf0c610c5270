//! Bringing your own repository and Terraform, through configuration alone, with real
//! Terraform, real Git over HTTPS and the test cluster: a repository with its own layout
//! (tests/fixtures/fleet: profiles as Components under `clusters/_profiles`, apps under
//! `platform/`, an env directory with content of its own, its own ConfigMap name), and an
//! existing Terraform root run in place (tests/fixtures/eks-root).

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use testkit::env_config::{SubstituteSource, Substitution};

use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_with_its_own_layout_comes_up_with_configuration_alone() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleet");
    let sandbox = Sandbox::start_seeded(&fixture).await;
    // The fixture's settings.
    let mut env = sandbox.dev_config();
    env.profile = "home".to_owned();
    let repository = env.repository_mut();
    repository.path = Some("fleet".to_owned());
    repository.profiles_dir = Some("clusters/_profiles".to_owned());
    repository.substitution = Some(Substitution {
        config_map: Some("platform-namespace-vars".to_owned()),
        extra: vec![SubstituteSource {
            kind: "ConfigMap".to_owned(),
            name: "home-overrides".to_owned(),
            optional: true,
        }],
        ..Substitution::default()
    });
    sandbox.write_dev_config(env);
    let platform_before = sandbox.committed("fleet/clusters/dev/platform/kustomization.yaml");

    let run = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(run.code, 0, "{}", run.output());
    let log = sandbox.log();

    // The profile from the repository's own profiles_dir, substituting from its own
    // ConfigMap; the env's own `platform` kept among the resources.
    for file in ["profile.yaml", "kustomization.yaml"] {
        let committed = sandbox
            .committed(&format!("fleet/clusters/dev/{file}"))
            .unwrap();
        snapshot!(format!("own_layout_{file}"), committed);
    }
    assert_eq!(
        sandbox.committed("fleet/clusters/dev/platform/kustomization.yaml"),
        platform_before,
        "the env's own content is untouched"
    );

    let client = sandbox.cluster.client();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "flux-system");
    let vars = config_maps.get("platform-namespace-vars").await.unwrap();
    assert_eq!(vars.data.unwrap()["cluster_name"], "sandbox");
    let settings = config_maps
        .get("home-settings")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(
        settings["cluster"], "sandbox",
        "the profile substituted from it"
    );
    assert_eq!(settings["domain"], "sandbox.example.test");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(
        namespaces
            .get_opt("own-layout-extras")
            .await
            .unwrap()
            .is_some(),
        "clusters/dev/platform/ is applied"
    );
    let gvk = GroupVersionKind::gvk("helm.toolkit.fluxcd.io", "v2", "HelmRelease");
    let releases: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "ingress-nginx",
        &ApiResource::from_gvk(&gvk),
    );
    let release = releases.get("ingress-nginx").await.unwrap();
    assert_eq!(
        release.data["spec"]["values"]["controller"]["service"]["annotations"]["external-dns.alpha.kubernetes.io/hostname"],
        "ingress.sandbox.example.test",
        "an app under platform/ substituted from the repository's ConfigMap"
    );

    // A run's flags never change Git: another --timeout makes no commit.
    let rerun = sandbox
        .run(&["create-env", ENV, "--yes", "--timeout", "20m"])
        .await;
    assert_eq!(rerun.code, 0, "{}", rerun.output());
    assert_eq!(sandbox.log(), log, "a rerun makes no commit");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_root_runs_in_place_with_its_own_backend_and_addresses() {
    let sandbox = Sandbox::start().await;
    let root = sandbox.write_eks_root_config("infra/prod");

    let run = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(run.code, 0, "{}", run.output());
    // Terraform's warning reaches the user.
    snapshot!("existing_root_warnings", warnings(&run.stderr));
    let state = std::fs::read_to_string(root.join("state/prod.tfstate"))
        .expect("state in the root's own backend");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let resource = &state["resources"][0];
    assert_eq!(
        (resource.get("module"), &resource["type"], &resource["name"]),
        (None, &"terraform_data".into(), &"cluster".into()),
        "the root's own address, no wrapper module"
    );
    assert!(
        !sandbox
            .path(".gitops-bootstrap/dev/terraform/main.tf.json")
            .exists(),
        "no generated root"
    );

    let config_maps: Api<ConfigMap> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let data = config_maps
        .get("cluster-config")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(data["cluster_name"], "sandbox");
    assert_eq!(data["vpc_id"], "vpc-0fixture");
    assert_eq!(data["node_count"], "2", "a number becomes a string");
    assert_eq!(data["spot"], "false");

    let rerun = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(rerun.code, 0, "{}", rerun.output());
    snapshot!(
        "existing_root_rerun_terraform",
        terraform_step(&rerun.stderr)
    );
}

/// The warnings of a run's progress (stderr).
fn warnings(stderr: &str) -> String {
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("⚠ warning:"))
        .collect();
    warnings.join("\n")
}

/// The line saying how the terraform step ended.
fn terraform_step(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|line| line.contains(" terraform: "))
        .unwrap_or_else(|| panic!("the terraform step ended: {stderr}"))
}
