//! rebuild end to end: create-env, then disaster recovery through the product binary with real
//! Terraform (terraform/existing), real Git over HTTPS, real age keys and the test cluster with
//! its Flux stand-ins — in clusters of their own, since a wipe replaces the whole cluster.

use std::path::Path;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use crate::support::sandbox::{ENV, REPO, Sandbox};
use crate::support::snapshot;

const CREATE: [&str; 5] = ["create-env", ENV, "--profile", "standard", "--yes"];
const REBUILD: [&str; 5] = ["rebuild", ENV, "--yes", "--output", "json"];

#[tokio::test(flavor = "multi_thread")]
async fn a_wiped_cluster_is_rebuilt_at_the_same_commit_with_every_app_ready() {
    let mut sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());
    let commits = sandbox.log();

    sandbox.wipe_cluster().await;
    sandbox.write_config();
    let rebuilt = sandbox.run(&REBUILD).await;
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.output());
    assert_eq!(sandbox.log(), commits, "rebuild writes no commit");

    let last: serde_json::Value =
        serde_json::from_str(rebuilt.stdout.lines().last().expect("a result event")).unwrap();
    assert_eq!(last["event"], "result");
    snapshot!(
        "rebuild_gone_json",
        serde_json::to_string_pretty(&last).unwrap()
    );
    let result = &last["result"];
    assert_eq!(
        result["commit"],
        commits[0].as_str(),
        "synced to the committed tip"
    );
    assert_eq!(
        result["situation"], "gone",
        "the old cluster no longer answers"
    );
    assert_eq!(result["apps"]["ready"], result["apps"]["total"]);
    assert!(result["rto_ms"].as_u64().unwrap() > 0);
    let steps: Vec<&str> = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "detect",
            "terraform",
            "connect",
            "config-and-secrets",
            "flux-install",
            "sync",
            "wait-for-apps",
            "summary"
        ]
    );
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["command"], "rebuild");
    assert!(record["rto_ms"].as_u64().is_some(), "{record}");
    assert!(record["cluster_uid"].as_str().is_some(), "{record}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_wrong_age_key_stops_rebuild_before_any_change() {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());
    let commits = sandbox.log();
    let sops = sandbox.committed("clusters/dev/.sops.yaml").unwrap();
    let start = sops.find("age1").expect("a recipient in .sops.yaml");
    let recipient: String = sops[start..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let key = sandbox.age_key_file();
    std::fs::rename(&key, sandbox.path("backup.agekey")).unwrap();
    let record_before =
        std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json")).unwrap();

    let missing = sandbox.run(&["rebuild", ENV, "--yes"]).await;
    assert_eq!(missing.code, 2, "{}", missing.output());
    // Names the committed recipient and where its key was looked for.
    let committed = regex::escape(&recipient);
    let committed = [(committed.as_str(), "[the committed recipient]")];
    snapshot!(
        "missing_key_error",
        missing.error_report(),
        extra = committed
    );

    let other = sandbox.path("other.agekey");
    let generated = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&other)
        .output()
        .expect("running age-keygen (Debian package age)");
    assert!(generated.status.success());
    let wrong = sandbox
        .run_with_env(
            &["rebuild", ENV, "--yes"],
            &[("SOPS_AGE_KEY_FILE", other.to_str().unwrap())],
        )
        .await;
    assert_eq!(wrong.code, 2, "{}", wrong.output());
    snapshot!("wrong_key_error", wrong.error_report(), extra = committed);
    assert!(!key.exists(), "no new key is generated");
    assert_eq!(sandbox.log(), commits, "nothing committed");
    let record_after =
        std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json")).unwrap();
    let steps = |text: &str| {
        let record: serde_json::Value = serde_json::from_str(text).unwrap();
        record["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(steps(&record_after), ["preflight"], "stopped in preflight");
    assert_ne!(record_before, record_after);
}

/// Runs `command`, failing the test with its output when it fails.
fn succeed(command: &mut std::process::Command) {
    let output = command.output().expect("running a tool the suite needs");
    let args: Vec<_> = command.get_args().collect();
    assert!(output.status.success(), "{args:?}: {output:?}");
}

/// The plaintext of entry `key` of the live Secret `flux-system/<name>`.
async fn live_secret(sandbox: &Sandbox, name: &str, key: &str) -> Option<String> {
    let secrets: Api<Secret> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let secret = secrets.get_opt(name).await.unwrap()?;
    let value = secret.data?.remove(key)?;
    Some(String::from_utf8(value.0).unwrap())
}

const DB_SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: flux-system\nstringData:\n  password: hunter2\n";

/// The README's secrets flow with the real tools: a user encrypts a Secret under
/// `clusters/dev/` with `sops --encrypt --in-place` and no flags (the env's `.sops.yaml` names
/// the recipient), commits and pushes it with `git`; create-env waits until Flux applied it
/// decrypted with the env's age key, and a rebuild of a wiped cluster brings it back.
#[tokio::test(flavor = "multi_thread")]
async fn a_sops_encrypted_secret_is_applied_decrypted_and_comes_back_after_a_rebuild() {
    let mut sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());

    let clone = sandbox.path("clone");
    succeed(
        sandbox
            .git_cli(sandbox.dir.path())
            .args(["clone", "--quiet"])
            .arg(sandbox.repo_url())
            .arg(&clone),
    );
    let env_dir = clone.join("clusters/dev");
    std::fs::write(env_dir.join("db.sops.yaml"), DB_SECRET).unwrap();
    succeed(
        std::process::Command::new("sops")
            .args(["--encrypt", "--in-place", "db.sops.yaml"])
            .current_dir(&env_dir)
            .env_remove("SOPS_AGE_KEY_FILE"),
    );
    let encrypted = std::fs::read_to_string(env_dir.join("db.sops.yaml")).unwrap();
    assert!(
        !encrypted.contains("hunter2") && encrypted.contains("ENC["),
        "{encrypted}"
    );
    let sops_yaml = sandbox.committed("clusters/dev/.sops.yaml").unwrap();
    let recipient = gitops_bootstrap::render::sops_recipient(&sops_yaml).unwrap();
    assert!(
        encrypted.contains(&recipient),
        "encrypted for the env's recipient"
    );
    commit_and_push(&sandbox, &clone, "clusters/dev/db.sops.yaml");

    let converged = sandbox.run(&CREATE).await;
    assert_eq!(converged.code, 0, "{}", converged.output());
    let kustomization = sandbox
        .committed("clusters/dev/kustomization.yaml")
        .unwrap();
    snapshot!("secret_file_kustomization_yaml", kustomization);
    assert_eq!(
        live_secret(&sandbox, "db", "password").await.as_deref(),
        Some("hunter2"),
        "applied decrypted by the env's age key"
    );

    sandbox.wipe_cluster().await;
    sandbox.write_config();
    assert_eq!(live_secret(&sandbox, "db", "password").await, None);
    let rebuilt = sandbox.run(&REBUILD).await;
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.output());
    assert_eq!(
        live_secret(&sandbox, "db", "password").await.as_deref(),
        Some("hunter2"),
        "the rebuilt cluster has the Secret decrypted again"
    );
}

fn commit_and_push(sandbox: &Sandbox, clone: &Path, file: &str) {
    succeed(sandbox.git_cli(clone).args(["add", file]));
    succeed(sandbox.git_cli(clone).args([
        "commit",
        "--quiet",
        "-m",
        "Add the db Secret, encrypted",
    ]));
    succeed(
        sandbox
            .git_cli(clone)
            .args(["push", "--quiet", "origin", "HEAD"]),
    );
    assert!(sandbox.committed(file).is_some(), "pushed to {REPO}");
}

/// Deletes the cluster's `kube-system` namespace and makes it again: the cluster's identity
/// changes as when it is recreated at the same address.
async fn recreate_kube_system(sandbox: &Sandbox) {
    let namespaces: Api<Namespace> = Api::all(sandbox.cluster.client());
    let before = namespaces.get("kube-system").await.unwrap().metadata.uid;
    namespaces
        .delete("kube-system", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while namespaces.get_opt("kube-system").await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "kube-system never went"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let fresh: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "kube-system"}})).unwrap();
    let made = namespaces
        .create(&PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(made.metadata.uid, before, "a new identity");
}

/// A rebuild on a healthy cluster says it is intact and converges; on a cluster whose
/// `kube-system` uid differs from the run record's it says the cluster was recreated. Both
/// report each step's duration and the RTO.
#[tokio::test(flavor = "multi_thread")]
async fn rebuild_says_whether_the_cluster_is_intact_or_was_recreated() {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());
    let commits = sandbox.log();

    let intact = sandbox.run(&["rebuild", ENV, "--yes"]).await;
    assert_eq!(intact.code, 0, "{}", intact.output());
    snapshot!("rebuild_intact_text", &intact.stdout);

    recreate_kube_system(&sandbox).await;
    let recreated = sandbox.run(&["rebuild", ENV, "--yes"]).await;
    assert_eq!(recreated.code, 0, "{}", recreated.output());
    snapshot!("rebuild_recreated_text", &recreated.stdout);
    assert_eq!(sandbox.log(), commits, "no commit either time");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json")).unwrap(),
    )
    .unwrap();
    let uid = sandbox_kube_system_uid(&sandbox).await;
    assert_eq!(
        record["cluster_uid"],
        uid.as_str(),
        "the record follows the new cluster"
    );
}

async fn sandbox_kube_system_uid(sandbox: &Sandbox) -> String {
    let namespaces: Api<Namespace> = Api::all(sandbox.cluster.client());
    namespaces
        .get("kube-system")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap()
}
