//! rebuild end to end: create-env, then disaster recovery through the product binary with real
//! Terraform (terraform/existing), real Git over HTTPS, real age keys and the test cluster with
//! its Flux stand-ins — in clusters of their own, since a wipe replaces the whole cluster.

use crate::support::sandbox::{ENV, Sandbox};

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
    let key = sandbox.path("xdg/gitops-bootstrap/age/dev.agekey");
    std::fs::rename(&key, sandbox.path("backup.agekey")).unwrap();
    let record_before =
        std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json")).unwrap();

    let missing = sandbox.run(&["rebuild", ENV, "--yes"]).await;
    assert_eq!(missing.code, 2, "{}", missing.output());
    assert!(missing.stderr.contains(&recipient), "{}", missing.stderr);
    assert!(
        missing.stderr.contains(&key.display().to_string()),
        "names where the key was looked for: {}",
        missing.stderr
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
    assert!(wrong.stderr.contains(&recipient), "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains(&other.display().to_string()),
        "{}",
        wrong.stderr
    );
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
