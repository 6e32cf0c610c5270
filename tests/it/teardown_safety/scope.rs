//! What a teardown (and a rerun of create-env) touches: only the env's own. A table of cases,
//! each on a sandbox of its own (terraform/existing, HTTPS Git, the test cluster with its Flux
//! stand-ins): a bystander namespace the env never applied (a ConfigMap, a LoadBalancer
//! Service, a PVC) is planted before create-env and must be untouched after the run, as must
//! the repository outside `clusters/dev/`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use crate::support::sandbox::{ENV, Run, Sandbox};
use crate::support::{FLUX_UNINSTALL_FILTER, snapshot};

const CREATE: [&str; 5] = ["create-env", ENV, "--profile", "standard", "--yes"];
const BYSTANDER: &str = "bystander";
/// A file of the repository outside the env's directory, compared before and after.
const PROFILE: &str = "profiles/standard/kustomization.yaml";

/// One case: what is done between create-env and the run, the run, and how it must end.
struct Case {
    name: &'static str,
    arrange: Arrange,
    args: &'static [&'static str],
    code: i32,
    /// Kinds whose entries in `removed` vary from run to run (left out of the snapshot).
    varying: &'static [&'static str],
}

#[derive(Clone, Copy)]
enum Arrange {
    /// A PVC in an app namespace (the env's) beside the bystander's (not the env's).
    VolumeInsideAndOutside,
    /// Files of the user's in `clusters/dev/` before create-env.
    UserFiles,
    /// A HelmRelease holding a finalizer nobody releases.
    StuckHelmRelease,
    /// `cluster-secrets` edited by hand after create-env.
    EditedSecret,
    /// Flux's components without the `app.kubernetes.io/part-of` label.
    UnlabelledFlux,
}

const VOLUMES: Case = Case {
    name: "volumes",
    arrange: Arrange::VolumeInsideAndOutside,
    args: &["teardown", ENV, "--yes", "--output", "json"],
    code: 0,
    // Whether helm's uninstall already released the ingress load balancer varies.
    varying: &["Service"],
};
const USER_FILES: Case = Case {
    name: "user_files",
    arrange: Arrange::UserFiles,
    args: &["teardown", ENV, "--yes"],
    code: 0,
    // Whether helm's uninstall already released the ingress load balancer varies.
    varying: &["Service"],
};
const STUCK: Case = Case {
    name: "stuck_release",
    arrange: Arrange::StuckHelmRelease,
    args: &[
        "teardown",
        ENV,
        "--yes",
        "--force",
        // Time enough for the other apps on a busy machine: only the held one stays.
        "--timeout",
        "20s",
        "--output",
        "json",
    ],
    code: 0,
    // Which apps the stopped run before it had deleted, and so which of their namespaces
    // were still there to go, varies with the machine's pace.
    varying: &["Service", "Kustomization", "HelmRelease", "Namespace"],
};
const EDITED: Case = Case {
    name: "edited_secret",
    arrange: Arrange::EditedSecret,
    args: &CREATE,
    code: 0,
    // Whether helm's uninstall already released the ingress load balancer varies.
    varying: &["Service"],
};
const UNLABELLED: Case = Case {
    name: "unlabelled_flux",
    arrange: Arrange::UnlabelledFlux,
    args: &["teardown", ENV, "--yes"],
    code: 0,
    // Whether helm's uninstall already released the ingress load balancer varies.
    varying: &["Service"],
};

#[tokio::test(flavor = "multi_thread")]
async fn volumes_and_load_balancers_outside_the_envs_namespaces_are_kept_and_listed() {
    check(VOLUMES).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_users_files_in_the_env_directory_are_kept_and_listed() {
    check(USER_FILES).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_helm_release_with_force_loses_its_finalizers_and_terraform_destroy_runs() {
    check(STUCK).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_edited_cluster_secrets_is_reported_by_drift_and_taken_back() {
    check(EDITED).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flux_without_part_of_labels_is_removed_object_by_object() {
    check(UNLABELLED).await;
}

async fn check(case: Case) {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let components = std::fs::read_to_string(sandbox.path("gotk-components.yaml")).unwrap();
    if let Arrange::UnlabelledFlux = case.arrange {
        let unlabelled: Vec<&str> = components
            .lines()
            .filter(|line| !line.contains("app.kubernetes.io/part-of"))
            .collect();
        std::fs::write(sandbox.path("gotk-components.yaml"), unlabelled.join("\n")).unwrap();
    }
    if let Arrange::UserFiles = case.arrange {
        for (path, content) in USER_CONTENT {
            sandbox.commit_file(path, content, "the user's notes");
        }
    }
    let bystander = Bystander::plant(&sandbox).await;
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}: {}", case.name, created.output());
    let profile = sandbox.committed(PROFILE);
    let commits = sandbox.log().len();

    let before = arrange(&sandbox, case.arrange).await;
    let run = sandbox.run(case.args).await;
    assert_eq!(run.code, case.code, "{}: {}", case.name, run.output());
    snapshot(&case, &run);
    bystander.assert_untouched(&sandbox, case.name).await;
    assert_eq!(sandbox.committed(PROFILE), profile, "{}", case.name);
    verify(&sandbox, case.arrange, before, commits, &run).await;
}

/// Text, or the `result` event of a JSON run, filtered of what varies.
fn snapshot(case: &Case, run: &Run) {
    let mut extra = vec![
        // Whether helm's uninstall already released the ingress load balancer varies, and how
        // far Flux's stand-ins pruned the apps before flux-uninstall.
        (
            r"deleted \d+ LoadBalancer Services/PVCs",
            "deleted [n] LoadBalancer Services/PVCs",
        ),
        (r"\d+ removed", "[n] removed"),
        FLUX_UNINSTALL_FILTER,
    ];
    if case.varying.contains(&"Kustomization") {
        extra.extend([
            (
                r"cluster: deletes [^·]* in namespaces [^·]*·",
                "cluster: deletes [the apps left] ·",
            ),
            (r"deleted \d+ Kustomizations", "deleted [n] Kustomizations"),
        ]);
    }
    if case.varying.contains(&"Namespace") {
        extra.push((
            r#""outcome": "(?:up_to_date|done)",(\s*)"summary": "(?:no LoadBalancer Services or PVCs|deleted \[n\] LoadBalancer Services/PVCs, \d+ app namespaces gone);"#,
            r#""outcome": "[the apps left]",$1"summary": "[their cloud resources and namespaces];"#,
        ));
    }
    let shown = match run
        .stdout
        .lines()
        .last()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        Some(Ok(mut result)) => {
            if let Some(removed) = result["result"]["removed"].as_array_mut() {
                let varies = |r: &str| {
                    case.varying
                        .iter()
                        .any(|kind| r.starts_with(&format!("{kind} ")))
                };
                removed.retain(|r| !r.as_str().is_some_and(varies));
            }
            serde_json::to_string_pretty(&result).unwrap()
        }
        _ => run.stdout.clone(),
    };
    insta::with_settings!({snapshot_suffix => case.name}, {
        snapshot!("teardown_safety_scope", shown, extra = extra);
    });
}

const USER_CONTENT: [(&str, &str); 2] = [
    (
        "clusters/dev/NOTES.md",
        "# dev\nThe env's runbook lives here.\n",
    ),
    (
        "clusters/dev/docs/restore.md",
        "Restore from the nightly backup.\n",
    ),
];

/// What the case changed before the run, for [`verify`].
enum Before {
    Nothing,
    /// The UID of the app namespace's PVC.
    Volume,
    /// The drift run that saw the edit.
    Drift(Run),
}

async fn arrange(sandbox: &Sandbox, arrange: Arrange) -> Before {
    let client = sandbox.cluster.client();
    match arrange {
        Arrange::VolumeInsideAndOutside => {
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "ingress-nginx");
            claims
                .create(&PostParams::default(), &claim("cache"))
                .await
                .unwrap();
            let (code, prompt) = teardown_typing(sandbox, "no").await;
            assert_eq!(code, 2, "{prompt}");
            // The question as typed at, and the answer to a wrong name (the terminal also
            // shows the spinners around them).
            let question = &prompt[prompt.find("Tear down env").expect(&prompt)..];
            let question = &question[..question.find("confirm:").expect(&prompt) + 8];
            let refusal = &prompt[prompt.find("teardown not confirmed").expect(&prompt)..];
            let refusal = &refusal[..refusal.find("changed").expect(&prompt) + 7];
            snapshot!("teardown_safety_prompt", format!("{question}\n{refusal}"));
            Before::Volume
        }
        Arrange::StuckHelmRelease => {
            let releases = flux_api(sandbox, "HelmRelease", "helmreleases", "ingress-nginx");
            let hold =
                json!({"metadata": {"finalizers": ["finalizers.fluxcd.io", "example.test/hold"]}});
            releases
                .patch(
                    "ingress-nginx",
                    &PatchParams::default(),
                    &Patch::Merge(&hold),
                )
                .await
                .unwrap();
            // Without --force the teardown stops at the release, before terraform destroy.
            let stopped = sandbox
                .run(&["teardown", ENV, "--yes", "--timeout", "20s"])
                .await;
            assert_eq!(stopped.code, 1, "{}", stopped.output());
            assert!(sandbox.path(".gitops-bootstrap/dev/terraform").exists());
            Before::Nothing
        }
        Arrange::EditedSecret => {
            let secrets: Api<Secret> = Api::namespaced(client, "flux-system");
            let edit = json!({"data": {"dns_api_token": "ZWRpdGVkLWJ5LWhhbmQ="}});
            let by_hand = PatchParams {
                field_manager: Some("kubectl-patch".to_owned()),
                ..PatchParams::default()
            };
            secrets
                .patch("cluster-secrets", &by_hand, &Patch::Merge(&edit))
                .await
                .unwrap();
            let drift = sandbox.run(&["status", ENV, "--drift"]).await;
            assert_eq!(drift.code, 1, "{}", drift.output());
            Before::Drift(drift)
        }
        Arrange::UserFiles | Arrange::UnlabelledFlux => Before::Nothing,
    }
}

async fn verify(sandbox: &Sandbox, arrange: Arrange, before: Before, commits: usize, run: &Run) {
    let client = sandbox.cluster.client();
    match (arrange, before) {
        (Arrange::VolumeInsideAndOutside, Before::Volume) => {
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "ingress-nginx");
            assert!(
                claims.get_opt("cache").await.unwrap().is_none(),
                "the env's PVC went"
            );
            assert_eq!(sandbox.log().len(), commits + 1, "one removal commit");
        }
        (Arrange::UserFiles, Before::Nothing) => {
            for (path, content) in USER_CONTENT {
                assert_eq!(
                    sandbox.committed(path).as_deref(),
                    Some(content),
                    "{path} kept"
                );
            }
            for tool_file in [
                "kustomization.yaml",
                "profile.yaml",
                ".sops.yaml",
                "flux-system/gotk-sync.yaml",
            ] {
                let path = format!("clusters/dev/{tool_file}");
                assert_eq!(sandbox.committed(&path), None, "{path} removed");
            }
            assert_eq!(sandbox.log().len(), commits + 1, "one removal commit");
        }
        (Arrange::StuckHelmRelease, Before::Nothing) => {
            let releases = flux_api(sandbox, "HelmRelease", "helmreleases", "ingress-nginx");
            assert!(releases.get_opt("ingress-nginx").await.unwrap().is_none());
            assert!(
                !sandbox.path(".gitops-bootstrap/dev").exists(),
                "terraform destroy ran"
            );
            assert_eq!(sandbox.committed("clusters/dev/kustomization.yaml"), None);
        }
        (Arrange::EditedSecret, Before::Drift(drift)) => {
            // The step line says which field was taken back from whom.
            let step = run
                .stderr
                .lines()
                .find(|line| line.contains("config-and-secrets") && line.contains("took over"))
                .unwrap_or_else(|| panic!("the takeover is reported: {}", run.stderr));
            // The edit is also config the Kustomizations substituting from it have not applied;
            // which of them applied last in the very second of the edit varies (drift:: pins
            // those lines).
            let unapplied = [(r"\n  ✘ flux: Kustomization \S+ has not applied [^\n]*", "")];
            snapshot!(
                "teardown_safety_edited_drift",
                drift.stdout,
                extra = unapplied
            );
            snapshot!("teardown_safety_edited_takeover", step);
            let secrets: Api<Secret> = Api::namespaced(client, "flux-system");
            let secret = secrets.get("cluster-secrets").await.unwrap();
            let token = &secret.data.unwrap()["dns_api_token"];
            assert_eq!(
                token.0, b"sandbox-dns-token",
                "the contract's value is back"
            );
            let clean = sandbox.run(&["status", ENV, "--drift"]).await;
            assert_eq!(clean.code, 0, "{}\n{}", clean.output(), run.output());
            assert_eq!(sandbox.log().len(), commits, "nothing committed");
        }
        (Arrange::UnlabelledFlux, Before::Nothing) => {
            let manifest = std::fs::read_to_string(sandbox.path("gotk-components.yaml")).unwrap();
            let left = still_there(&client, &manifest).await;
            assert!(left.is_empty(), "left behind: {left:?}\n{}", run.output());
        }
        _ => unreachable!("each arrangement has its own verification"),
    }
}

/// The objects of `manifest` the cluster still serves and holds.
async fn still_there(client: &kube::Client, manifest: &str) -> Vec<String> {
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let mut left = Vec::new();
    for document in manifest.split("\n---") {
        let Ok(object) = serde_yaml_ng::from_str::<DynamicObject>(document) else {
            continue;
        };
        let Some(types) = &object.types else { continue };
        let (group, version) = types
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", &types.api_version));
        let gvk = GroupVersionKind::gvk(group, version, &types.kind);
        let Some((resource, caps)) = discovery.resolve_gvk(&gvk) else {
            continue;
        };
        let name = object.metadata.name.clone().unwrap();
        let api: Api<DynamicObject> = match (caps.scope, &object.metadata.namespace) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            _ => Api::all_with(client.clone(), &resource),
        };
        if api.get_opt(&name).await.unwrap().is_some() {
            left.push(format!("{} {name}", types.kind));
        }
    }
    left
}

fn flux_api(sandbox: &Sandbox, kind: &str, plural: &str, namespace: &str) -> Api<DynamicObject> {
    let group = match kind {
        "HelmRelease" => ("helm.toolkit.fluxcd.io", "v2"),
        _ => ("kustomize.toolkit.fluxcd.io", "v1"),
    };
    let gvk = GroupVersionKind::gvk(group.0, group.1, kind);
    Api::namespaced_with(
        sandbox.cluster.client(),
        namespace,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// `teardown dev` in a terminal where `typed` is typed at the confirmation.
async fn teardown_typing(sandbox: &Sandbox, typed: &str) -> (i32, String) {
    let mut child = sandbox.in_terminal(&["teardown", ENV]).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{typed}\n").as_bytes())
        .await
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    drop(stdin);
    let shown = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    (output.status.code().unwrap_or(-1), shown)
}

fn claim(name: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap()
}

/// A namespace the env never applied, holding what a teardown could mistake for the env's.
struct Bystander {
    /// `Kind name` → UID.
    uids: BTreeMap<String, String>,
}

impl Bystander {
    async fn plant(sandbox: &Sandbox) -> Bystander {
        let client = sandbox.cluster.client();
        let params = PostParams::default();
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": BYSTANDER}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&params, &namespace)
            .await
            .unwrap();
        let config: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "keep"}, "data": {"a": "b"}}))
                .unwrap();
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "edge"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}
        }))
        .unwrap();
        Api::<ConfigMap>::namespaced(client.clone(), BYSTANDER)
            .create(&params, &config)
            .await
            .unwrap();
        Api::<Service>::namespaced(client.clone(), BYSTANDER)
            .create(&params, &service)
            .await
            .unwrap();
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), BYSTANDER)
            .create(&params, &claim("data"))
            .await
            .unwrap();
        Bystander {
            uids: Bystander::read(&client).await,
        }
    }

    async fn read(client: &kube::Client) -> BTreeMap<String, String> {
        let mut uids = BTreeMap::new();
        let mut note =
            |kind: &str,
             meta: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>| {
                if let Some(meta) = meta.filter(|m| m.deletion_timestamp.is_none()) {
                    uids.insert(format!("{kind} {}", meta.name.unwrap()), meta.uid.unwrap());
                }
            };
        let ns = Api::<Namespace>::all(client.clone())
            .get_opt(BYSTANDER)
            .await
            .unwrap();
        note("Namespace", ns.map(|o| o.metadata));
        let cm = Api::<ConfigMap>::namespaced(client.clone(), BYSTANDER)
            .get_opt("keep")
            .await
            .unwrap();
        note("ConfigMap", cm.map(|o| o.metadata));
        let svc = Api::<Service>::namespaced(client.clone(), BYSTANDER)
            .get_opt("edge")
            .await
            .unwrap();
        note("Service", svc.map(|o| o.metadata));
        let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), BYSTANDER)
            .get_opt("data")
            .await
            .unwrap();
        note("PersistentVolumeClaim", pvc.map(|o| o.metadata));
        uids
    }

    async fn assert_untouched(&self, sandbox: &Sandbox, case: &str) {
        let now = Bystander::read(&sandbox.cluster.client()).await;
        assert_eq!(
            now, self.uids,
            "{case}: the bystander namespace is untouched"
        );
    }
}
