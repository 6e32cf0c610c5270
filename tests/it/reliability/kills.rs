//! SIGKILL at a step of create-env, then a rerun: the end state equals an uninterrupted run's.

use std::time::Duration;

use crate::support::sandbox::{ENV, Sandbox};

const CREATE: [&str; 3] = ["create-env", ENV, "--yes"];

/// The steps create-env is killed at (SIGKILL when the step starts). The reduced set runs
/// in CI; `GITOPS_BOOTSTRAP_KILL_MATRIX=full` tries every step.
fn kill_points() -> Vec<&'static str> {
    let all = [
        "preflight",
        "terraform",
        "connect",
        "config-and-secrets",
        "commit",
        "flux-install",
        "sync",
        "wait-for-apps",
        "summary",
    ];
    if std::env::var("GITOPS_BOOTSTRAP_KILL_MATRIX").as_deref() == Ok("full") {
        all.to_vec()
    } else {
        vec!["commit", "flux-install", "wait-for-apps"]
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_at_a_step_reruns_to_one_bootstrap_commit() {
    use tokio::io::AsyncBufReadExt as _;
    let mut converged = 0;
    let points = kill_points();
    for step in &points {
        let sandbox = Sandbox::start().await;
        sandbox.write_config();
        let seeded = sandbox.log().len();
        let mut child = sandbox
            .command(&["--output", "json", "create-env", ENV, "--yes"])
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let started = format!(r#""event":"step_started","step":"{step}""#);
        let reached = tokio::time::timeout(Duration::from_secs(240), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains(&started) {
                    return true;
                }
            }
            false
        })
        .await
        .expect("the run reached the step in time");
        assert!(reached, "{step}: never started");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let record =
            std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json")).unwrap();
        assert!(
            record.contains(r#""status": "running""#),
            "{step}: a killed run leaves its record: {record}"
        );

        let rerun = sandbox.run(&CREATE).await;
        assert_eq!(rerun.code, 0, "{step}: {}", rerun.output());
        assert!(
            rerun.stderr.contains("took over env dev's lock"),
            "{step}: the stale lock is said: {}",
            rerun.stderr
        );
        assert_eq!(
            sandbox.log().len(),
            seeded + 1,
            "{step}: exactly one bootstrap commit"
        );
        let state = std::fs::read_to_string(
            sandbox.path(".gitops-bootstrap/dev/terraform/terraform.tfstate"),
        )
        .unwrap();
        assert!(
            state.contains("\"serial\""),
            "{step}: Terraform state intact"
        );
        assert!(
            !sandbox
                .path(".gitops-bootstrap/dev/terraform/.terraform.tfstate.lock.info")
                .exists(),
            "{step}: Terraform state unlocked"
        );
        converged += 1;
    }
    assert_eq!(converged, points.len(), "kill points converged / tried");
}
