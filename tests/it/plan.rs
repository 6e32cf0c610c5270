//! `plan <env>` against the sandbox: the Terraform plan, then the files create-env would write
//! in the repository as a diff against the branch tip — all new before the env exists, none
//! changed after create-env, one changed after the branch moved — and plan pushes nothing.

use crate::support::sandbox::{ENV, Sandbox};

/// The branch tip's short sha and the Git server's port vary per run.
fn filtered(text: &str) -> String {
    let tip = regex::Regex::new(r"\((?:[0-9a-f]{7})\)").unwrap();
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let text = tip.replace_all(text, "(<tip>)");
    port.replace_all(&text, "127.0.0.1:<port>").into_owned()
}

/// The JSON result with each diff cut to its first lines (gotk-components.yaml is long).
fn shortened(stdout: &str) -> String {
    let mut result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    result["result"]["repository"]["tip"] = "<tip>".into();
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

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_new_files_then_none_then_the_change() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let seeded = sandbox.log();

    let fresh = sandbox.run(&["plan", ENV]).await;
    assert_eq!(fresh.code, 0, "{}", fresh.output());
    insta::assert_snapshot!("fresh_text", filtered(&fresh.stdout));
    let json = sandbox.run(&["plan", ENV, "--output", "json"]).await;
    assert_eq!(json.code, 0, "{}", json.output());
    insta::assert_snapshot!("fresh_json", shortened(&json.stdout));
    assert_eq!(sandbox.log(), seeded, "plan pushed nothing");

    let create = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(create.code, 0, "{}", create.output());
    let after = sandbox.run(&["plan", ENV]).await;
    assert_eq!(after.code, 0, "{}", after.output());
    assert!(
        after
            .stdout
            .contains("0 to create, 0 to change, 6 unchanged"),
        "{}",
        after.stdout
    );

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
    insta::assert_snapshot!("changed_text", filtered(&changed.stdout));
}
