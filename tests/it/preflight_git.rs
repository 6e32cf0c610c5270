//! create-env's preflight talks to the Git server as little as it can (issue 22 item 7), as the
//! testkit server's request log shows: the push rights and the clone over one connection (the
//! push and fetch services cannot share one session), no fetch at all while the clone is at the
//! branch tip, Flux's read token checked meanwhile on a connection of its own. A wrong read
//! token is refused, after a wrong push token when both are wrong; a read token that is the
//! push token is refused before any request (it would give Flux write access).
//!
//! Each run's cluster token is refused, so create-env stops at `connect`, past preflight and
//! before anything else talks to Git: the requests logged are preflight's.

use std::collections::BTreeMap;

use testkit::git::GitRequest;

use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

const CREATE: &[&str] = &["create-env", ENV, "--yes"];

/// A sandbox whose config gives create-env a kubeconfig the cluster refuses.
async fn refused_at_connect() -> Sandbox {
    let sandbox = Sandbox::start().await;
    let mut kubeconfig: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(sandbox.cluster.kubeconfig_yaml()).unwrap();
    kubeconfig["users"][0]["user"]["token"] = "not-the-token".into();
    let path = sandbox.path("refused.kubeconfig");
    std::fs::write(&path, serde_yaml_ng::to_string(&kubeconfig).unwrap()).unwrap();
    sandbox.write_dev_config(sandbox.env_config("sandbox", &path, &sandbox.repo_url()));
    sandbox
}

/// Runs create-env with `env` set; returns the step it failed in and the Git requests it made,
/// one block per connection.
async fn run(sandbox: &Sandbox, env: &[(&str, &str)]) -> (String, String) {
    let before = sandbox.git.requests().len();
    let run = sandbox.run_with_env(CREATE, env).await;
    assert_eq!(run.code, 2, "{}", run.output());
    let failed = run
        .stderr
        .lines()
        .find_map(|line| line.split_once("step ")?.1.split_once(" failed"))
        .map(|(step, _)| step.to_owned())
        .unwrap_or_else(|| panic!("no failed step: {}", run.output()));
    (failed, connections(&sandbox.git.requests()[before..]))
}

/// The requests grouped by connection (client address), each block in the order sent, the
/// blocks sorted: concurrent connections interleave in no fixed order.
fn connections(requests: &[GitRequest]) -> String {
    let mut by_peer: BTreeMap<_, Vec<String>> = BTreeMap::new();
    for request in requests {
        let token = request
            .token
            .map_or("no token".to_owned(), |t| format!("{t} token"));
        by_peer.entry(request.peer).or_default().push(format!(
            "  {} {} ({token}) → {}",
            request.method, request.what, request.status
        ));
    }
    let mut blocks: Vec<String> = by_peer
        .into_values()
        .map(|lines| format!("connection\n{}", lines.join("\n")))
        .collect();
    blocks.sort();
    blocks.join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn push_rights_and_clone_share_a_connection_and_a_clone_at_the_tip_is_not_fetched() {
    let sandbox = refused_at_connect().await;
    let (failed, fresh) = run(&sandbox, &[]).await;
    assert_eq!(failed, "connect", "past preflight");
    let (_, at_tip) = run(&sandbox, &[]).await;
    sandbox.commit_file("README.md", "moved\n", "someone else's commit");
    let (_, moved) = run(&sandbox, &[]).await;
    snapshot!(
        "preflight_git_requests",
        format!(
            "fresh clone:\n{fresh}\n\nclone at the branch tip:\n{at_tip}\n\nbranch moved \
             since:\n{moved}\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_read_token_is_refused_after_a_wrong_push_token_and_the_push_token_never_reads() {
    let sandbox = refused_at_connect().await;
    let push = sandbox.push_token.clone();
    let (wrong_read, _) = run(&sandbox, &[("SANDBOX_GIT_READ_TOKEN", "wrong-read-2b9f")]).await;
    assert_eq!(wrong_read, "preflight");
    assert!(
        !sandbox.age_key_file().exists(),
        "a refused read token leaves no age key behind"
    );
    let both_wrong = sandbox
        .run_with_env(
            CREATE,
            &[
                ("SANDBOX_GIT_PUSH_TOKEN", "wrong-push-5c1d"),
                ("SANDBOX_GIT_READ_TOKEN", "wrong-read-2b9f"),
            ],
        )
        .await;
    let before = sandbox.git.requests().len();
    let same = sandbox
        .run_with_env(CREATE, &[("SANDBOX_GIT_READ_TOKEN", push.as_str())])
        .await;
    assert_eq!(
        sandbox.git.requests().len(),
        before,
        "refused before any request"
    );
    assert!(!sandbox.age_key_file().exists(), "and before any key");
    snapshot!(
        "preflight_git_read_token",
        format!(
            "both tokens wrong (exit {}):\n{}\nread token = push token (exit {}):\n{}",
            both_wrong.code, both_wrong.stderr, same.code, same.stderr
        )
    );
}
