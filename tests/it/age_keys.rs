//! Age keys per repository (issue 20 item 2): env `dev` of two repositories on one machine gets
//! a key each, and create-env says whether it generated the key or reused one an earlier run
//! made, never "up to date" while no commit names it. The runs fail in terraform-apply (the
//! kubeconfig they name is not there): preflight has settled the key by then, and nothing is
//! committed or applied to the cluster.

use testkit::env_config::ConfigFile;

use crate::support::sandbox::{BRANCH, ENV, Run, Sandbox};
use crate::support::snapshot;

const CREATE: [&str; 5] = ["--output", "json", "create-env", ENV, "--yes"];
/// No such file: Terraform fails, after preflight.
const NO_KUBECONFIG: &str = "/nonexistent/dev.kubeconfig";

/// The preflight step's outcome and what it said of the age key, in a `--output json` run.
fn preflight_key(run: &Run) -> (String, String) {
    let finished = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|event| event["event"] == "step_finished" && event["step"] == "preflight")
        .unwrap_or_else(|| panic!("no preflight step: {}", run.output()));
    let summary = finished["summary"].as_str().unwrap();
    let key = summary
        .split(" · ")
        .find(|fact| fact.starts_with("age key"))
        .unwrap_or_else(|| panic!("no age key in {summary}"));
    (
        finished["outcome"].as_str().unwrap().to_owned(),
        key.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn env_dev_of_two_repositories_gets_two_keys_and_a_reused_key_is_said_so() {
    let sandbox = Sandbox::start().await;
    let no_kubeconfig = std::path::Path::new(NO_KUBECONFIG);
    sandbox.write_dev_config(sandbox.env_config("sandbox", no_kubeconfig, &sandbox.repo_url()));
    let mut said = Vec::new();

    let first = sandbox.run(&CREATE).await;
    assert_eq!(first.code, 1, "fails in Terraform: {}", first.output());
    let (outcome, key) = preflight_key(&first);
    assert_eq!(outcome, "done");
    said.push(key);
    // A rerun finds the key the first run made, and no commit names it yet.
    let again = sandbox.run(&CREATE).await;
    assert_eq!(again.code, 1, "{}", again.output());
    let (outcome, key) = preflight_key(&again);
    assert_eq!(outcome, "done", "never up to date: {key}");
    said.push(key);

    // Env `dev` of another repository, its config and state in a directory of their own.
    sandbox.git.create_repo("other").unwrap();
    let profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    sandbox
        .git
        .commit_dir("other", BRANCH, &profiles, "seed")
        .unwrap();
    let other_dir = sandbox.path("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other_config = other_dir.join("gitops-bootstrap.toml");
    let other = sandbox.env_config("sandbox", no_kubeconfig, &sandbox.git.url("other"));
    ConfigFile::of_env(ENV, other).write(&other_config).unwrap();
    let config = other_config.to_str().unwrap();
    let second = sandbox
        .run_with_env(&CREATE, &[("GITOPS_BOOTSTRAP_CONFIG", config)])
        .await;
    assert_eq!(second.code, 1, "{}", second.output());
    let (outcome, key) = preflight_key(&second);
    assert_eq!(outcome, "done");
    said.push(key);

    let ours = std::fs::read_to_string(sandbox.age_key_file()).unwrap();
    let theirs =
        std::fs::read_to_string(sandbox.age_key_file_for(&sandbox.git.url("other"))).unwrap();
    assert_ne!(ours, theirs, "a key each");
    snapshot!(
        "env_dev_of_two_repositories_gets_two_keys_and_a_reused_key_is_said_so",
        said.join("\n")
    );
}
