//! Pull-request mode against a protected branch (the Git server's declining hook): create-env
//! pushes its commit to `gitops-bootstrap/<env>`, says where to open the pull request and
//! waits; a rerun while it is unmerged pushes nothing new and goes on waiting; once the test
//! merges the branch (as a hosting service's merge button would), create-env finishes with
//! every app Ready. Teardown proposes the removal the same way.

use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::support::sandbox::{BRANCH, ENV, REPO, Run, Sandbox};
use crate::support::snapshot;

const PROPOSAL: &str = "gitops-bootstrap/dev";

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Reads NDJSON events until the run reports it waits for the merge.
async fn until_waiting(stdout: &mut Lines, events: &mut Vec<serde_json::Value>) {
    while let Some(line) = stdout.next_line().await.unwrap() {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        let waiting = event["event"] == "progress" && event["step"] == "await-merge";
        events.push(event);
        if waiting {
            return;
        }
    }
    panic!("the run ended without waiting for the merge: {events:#?}");
}

/// Reads the remaining events and the exit status.
async fn finish(
    mut child: tokio::process::Child,
    stdout: &mut Lines,
    events: &mut Vec<serde_json::Value>,
) -> Option<i32> {
    while let Some(line) = stdout.next_line().await.unwrap() {
        events.push(serde_json::from_str(&line).unwrap());
    }
    child.wait().await.unwrap().code()
}

#[tokio::test(flavor = "multi_thread")]
async fn via_branch_waits_for_the_merge_and_a_rerun_pushes_nothing_again() {
    // Isolated: the teardown at the end acts on the whole cluster.
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    sandbox.git.protect_branch(REPO, BRANCH).unwrap();
    let seeded = sandbox.log();

    // Nobody merges in time: exit 3, the commit waits on the proposal branch.
    let first = sandbox
        .run(&[
            "create-env",
            ENV,
            "--yes",
            "--via-branch",
            "--timeout",
            "2s",
        ])
        .await;
    assert_eq!(first.code, 3, "{}", first.output());
    let lines: Vec<&str> = first
        .stderr
        .lines()
        .filter(|line| {
            line.contains("pull request") || line.contains("error:") || line.contains("hint:")
        })
        .collect();
    snapshot!("gave_up_waiting", lines.join("\n"));
    assert_eq!(
        sandbox.log(),
        seeded,
        "nothing reached the protected branch"
    );
    let proposed = sandbox
        .git
        .head(REPO, PROPOSAL)
        .unwrap()
        .expect("the commit is on the proposal branch");
    let proposal_log = sandbox.git.log(REPO, PROPOSAL).unwrap();
    assert_eq!(
        proposal_log[1..],
        seeded[..],
        "one commit on top of the branch tip"
    );

    // A rerun finds the open branch and waits for it.
    let mut rerun = sandbox
        .command(&[
            "--output",
            "json",
            "create-env",
            ENV,
            "--yes",
            "--via-branch",
            "--timeout",
            "3m",
        ])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(rerun.stdout.take().unwrap()).lines();
    let mut events = Vec::new();
    until_waiting(&mut stdout, &mut events).await;
    let commit = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "commit")
        .expect("the commit step finished");
    assert_eq!(commit["outcome"], "up_to_date", "{commit}");
    assert_eq!(
        sandbox.git.log(REPO, PROPOSAL).unwrap(),
        proposal_log,
        "no second push"
    );

    let merged = sandbox.git.merge_branch(REPO, PROPOSAL, BRANCH).unwrap();
    assert_eq!(merged, proposed, "a fast-forward");
    let code = finish(rerun, &mut stdout, &mut events).await;
    let result = events.last().unwrap();
    assert_eq!(code, Some(0), "{events:#?}");
    assert_eq!(result["event"], "result");
    assert_eq!(result["result"]["commit"], proposed.as_str());
    let apps = &result["result"]["apps"];
    assert_eq!(apps["ready"], apps["total"], "{result}");
    assert_eq!(sandbox.git.log(REPO, PROPOSAL).unwrap(), proposal_log);

    // Teardown proposes the removal of clusters/dev/ on the same branch and waits for it.
    let before = sandbox.log();
    let mut teardown = sandbox
        .command(&["--output", "json", "teardown", ENV, "--yes", "--via-branch"])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(teardown.stdout.take().unwrap()).lines();
    let mut events = Vec::new();
    until_waiting(&mut stdout, &mut events).await;
    assert_eq!(
        sandbox.log(),
        before,
        "nothing pushed to the protected branch"
    );
    assert!(
        sandbox.committed("clusters/dev/profile.yaml").is_some(),
        "still there until merged"
    );
    sandbox.git.merge_branch(REPO, PROPOSAL, BRANCH).unwrap();
    let code = finish(teardown, &mut stdout, &mut events).await;
    assert_eq!(code, Some(0), "{events:#?}");
    assert!(sandbox.committed("clusters/dev/profile.yaml").is_none());
    assert_eq!(sandbox.log()[1..], before[..], "the removal, merged");
}

/// create-env in pull-request mode, waiting long enough for a run that has nothing to wait for.
const CREATE_VIA_BRANCH: [&str; 6] = [
    "create-env",
    ENV,
    "--yes",
    "--via-branch",
    "--timeout",
    "2m",
];

/// Pushes a commit of someone else's to the proposal branch with `git`: a new file on top of
/// the GitOps branch; returns its sha.
fn push_foreign_commit(sandbox: &Sandbox) -> String {
    let clone = sandbox.path("foreign-clone");
    let git = |args: &[&str], dir: &std::path::Path| {
        let output = sandbox.git_cli(dir).args(args).output().unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
    };
    git(
        &["clone", "--quiet", &sandbox.repo_url(), "foreign-clone"],
        sandbox.dir.path(),
    );
    git(&["checkout", "--quiet", "-b", PROPOSAL], &clone);
    std::fs::write(clone.join("notes.md"), "a colleague's work in progress\n").unwrap();
    git(&["add", "notes.md"], &clone);
    git(&["commit", "--quiet", "-m", "WIP: notes"], &clone);
    git(&["push", "--quiet", "origin", PROPOSAL], &clone);
    sandbox.git.head(REPO, PROPOSAL).unwrap().unwrap()
}

/// The lines of a run's stderr that say what stopped it or what it changed on the branch.
fn verdict(run: &Run) -> String {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| {
            ["error:", "hint:", "proposal of"]
                .iter()
                .any(|w| line.contains(w))
        })
        .collect();
    lines.join("\n")
}

/// Issue 20 item 1: a commit nobody of the tool made on `gitops-bootstrap/dev` is never
/// waited for: create-env and teardown in pull-request mode stop with exit 2 naming it, before
/// Terraform or the cluster is touched, and leave the branch as it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_commit_on_the_proposal_branch_stops_create_env_and_teardown_before_any_change() {
    // Isolated: the teardown acts on the whole cluster.
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let foreign = push_foreign_commit(&sandbox);
    let tf_state = sandbox.path(".gitops-bootstrap/dev/terraform/terraform.tfstate");

    let refused = sandbox.run(&CREATE_VIA_BRANCH).await;
    assert_eq!(refused.code, 2, "{}", refused.output());
    snapshot!("foreign_commit_create_env", verdict(&refused));
    assert!(!tf_state.exists(), "stopped before Terraform");
    assert_eq!(
        sandbox.git.head(REPO, PROPOSAL).unwrap(),
        Some(foreign.clone())
    );

    let created = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(created.code, 0, "{}", created.output());
    let log = sandbox.log();
    let refused = sandbox
        .run(&["teardown", ENV, "--yes", "--via-branch"])
        .await;
    assert_eq!(refused.code, 2, "{}", refused.output());
    snapshot!("foreign_commit_teardown", verdict(&refused));
    assert!(tf_state.exists(), "the local state is kept");
    assert!(sandbox.committed("clusters/dev/profile.yaml").is_some());
    assert_eq!(sandbox.log(), log);
    assert_eq!(sandbox.git.head(REPO, PROPOSAL).unwrap(), Some(foreign));
    let status = sandbox.run(&["status", ENV]).await;
    assert_eq!(status.code, 0, "the env still runs: {}", status.output());
}

/// Issue 20 item 1: a teardown's removal left unmerged on `gitops-bootstrap/dev` is the tool's
/// own but not what create-env proposes: create-env moves the branch off it (merging it would
/// remove the running env), says so, and goes on; teardown never reported the env removed
/// nor dropped the local state while the branch still held it.
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_teardown_proposal_is_moved_off_by_create_env() {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let created = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(created.code, 0, "{}", created.output());
    sandbox.git.protect_branch(REPO, BRANCH).unwrap();
    let tf_state = sandbox.path(".gitops-bootstrap/dev/terraform/terraform.tfstate");

    // Nobody merges the removal: exit 3, the env still in Git, the local state kept.
    let teardown = sandbox
        .run(&["teardown", ENV, "--yes", "--via-branch", "--timeout", "20s"])
        .await;
    assert_eq!(teardown.code, 3, "{}", teardown.output());
    // Nothing said removed (no result on stdout): the proposal waits, unmerged.
    snapshot!(
        "teardown_proposal_unmerged",
        format!("{}{}", teardown.stdout, verdict(&teardown))
    );
    assert!(tf_state.exists(), "the local state is kept");
    assert!(sandbox.committed("clusters/dev/profile.yaml").is_some());
    let removal = sandbox.git.head(REPO, PROPOSAL).unwrap().unwrap();
    assert_ne!(Some(removal), sandbox.git.head(REPO, BRANCH).unwrap());

    let recreated = sandbox.run(&CREATE_VIA_BRANCH).await;
    assert_eq!(recreated.code, 0, "{}", recreated.output());
    snapshot!("stale_teardown_proposal", verdict(&recreated));
    assert_eq!(
        sandbox.git.head(REPO, PROPOSAL).unwrap(),
        sandbox.git.head(REPO, BRANCH).unwrap(),
        "the branch holds nothing left to merge"
    );
}
