//! Whose cluster is it, and can it be seen: the cases of issue 19 items 1, 2, 3, 6 and 10 —
//! another env's cluster, credentials the cluster refuses (401, 403), a cluster that does not
//! answer, an existing root with its own backend path and workspace, and the checks a teardown
//! makes before it deletes anything.

use std::path::Path;

use super::{Case, Unchanged, check, generated_state};
use crate::support::sandbox::{ENV, Sandbox};

const CREATE: [&str; 5] = ["create-env", ENV, "--profile", "standard", "--yes"];

/// Env `second` is misconfigured with env `dev`'s cluster: create-env stops at connect (after
/// its apply); then nothing may treat dev's cluster as second's.
#[tokio::test(flavor = "multi_thread")]
async fn another_envs_cluster_is_never_torn_down_nor_reported_as_this_envs() {
    let sandbox = Sandbox::start_isolated().await;
    let kubeconfig = sandbox.cluster.kubeconfig_path();
    let config = [
        sandbox.env_toml(ENV, "sandbox", kubeconfig, &sandbox.repo_url()),
        sandbox.env_toml("second", "sandbox", kubeconfig, &sandbox.repo_url()),
    ]
    .join("\n");
    std::fs::write(sandbox.path("gitops-bootstrap.toml"), config).unwrap();
    let first = sandbox.run(&CREATE).await;
    assert_eq!(first.code, 0, "{}", first.output());
    let second = sandbox.run(&["create-env", "second", "--yes"]).await;
    assert_eq!(second.code, 2, "{}", second.output());
    let states = vec![
        generated_state(&sandbox, ENV),
        generated_state(&sandbox, "second"),
    ];

    for (name, args) in [
        ("misowned_status", &["status", "second"][..]),
        ("misowned_drift", &["status", "second", "--drift"]),
        ("misowned_teardown", &["teardown", "second", "--yes"]),
    ] {
        let case = Case {
            name,
            args,
            env: &[],
            code: 2,
            unchanged: Unchanged::all(states.clone()),
        };
        check(&sandbox, &case).await;
    }
    // Told to leave the cluster alone, only second's own Terraform and Git go.
    let leave = Case {
        name: "misowned_teardown_leave_cluster",
        args: &["teardown", "second", "--yes", "--leave-cluster"],
        env: &[],
        code: 0,
        unchanged: Unchanged::all(vec![generated_state(&sandbox, ENV)]),
    };
    check(&sandbox, &leave).await;
    assert!(!sandbox.path(".gitops-bootstrap/second").exists());
    let status = sandbox.run(&["status", ENV]).await;
    assert_eq!(status.code, 0, "dev is as it was: {}", status.output());
}

/// A kubeconfig for the sandbox's cluster with `token`, at a path the env's config names.
fn write_kubeconfig(sandbox: &Sandbox, path: &Path, token: &str) {
    let server = sandbox.cluster.server().expect("an in-process cluster");
    let yaml = testkit::apiserver::kubeconfig_yaml(server.url(), server.ca_pem(), token);
    std::fs::write(path, yaml).unwrap();
}

/// The env's Terraform outputs carry credentials the cluster refuses: a token it does not know
/// (401), or one it knows that may read nothing (403). A teardown stops before anything is
/// deleted, naming where the credentials come from; so does status.
#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_are_bad_input_and_nothing_is_torn_down() {
    let sandbox = Sandbox::start_isolated().await;
    let kubeconfig = sandbox.path("kubeconfig");
    let server = sandbox.cluster.server().expect("an in-process cluster");
    write_kubeconfig(&sandbox, &kubeconfig, server.token());
    let toml = sandbox.config_toml(&kubeconfig, &sandbox.repo_url());
    std::fs::write(sandbox.path("gitops-bootstrap.toml"), toml).unwrap();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());

    for (what, token) in [
        ("401", "not-a-token-it-knows"),
        ("403", server.no_rbac_token()),
    ] {
        write_kubeconfig(&sandbox, &kubeconfig, token);
        // The apply takes the new credentials into the outputs; connect refuses them.
        let applied = sandbox.run(&CREATE).await;
        assert_eq!(applied.code, 2, "{what}: {}", applied.output());
        for (command, args) in [
            ("teardown", &["teardown", ENV, "--yes"][..]),
            ("status", &["status", ENV]),
        ] {
            let case = Case {
                name: &format!("refused_{what}_{command}"),
                args,
                env: &[],
                code: 2,
                unchanged: Unchanged::all(vec![generated_state(&sandbox, ENV)]),
            };
            check(&sandbox, &case).await;
        }
    }
}

/// The env's cluster stops answering for good. A teardown retries it within `--timeout`, then
/// stops listing what it could not remove, and destroys nothing; with `--force` it goes on,
/// saying what it left behind.
#[tokio::test(flavor = "multi_thread")]
async fn an_unanswering_cluster_stops_a_teardown_unless_forced() {
    let mut sandbox = Sandbox::start_isolated().await;
    // The module reads the kubeconfig file even to destroy: keep a copy past the cluster.
    let kubeconfig = sandbox.path("old-kubeconfig");
    std::fs::copy(sandbox.cluster.kubeconfig_path(), &kubeconfig).unwrap();
    let toml = sandbox.config_toml(&kubeconfig, &sandbox.repo_url());
    std::fs::write(sandbox.path("gitops-bootstrap.toml"), toml).unwrap();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());
    // Its API server stops (a new, unrelated one takes the sandbox's place).
    sandbox.wipe_cluster().await;

    let stopped = Case {
        name: "unreachable_teardown",
        args: &["teardown", ENV, "--yes", "--timeout", "3s"],
        env: &[],
        code: 1,
        unchanged: Unchanged {
            cluster: false,
            git: true,
            states: vec![generated_state(&sandbox, ENV)],
        },
    };
    check(&sandbox, &stopped).await;
    let commits = sandbox.log().len();
    let forced = Case {
        name: "unreachable_teardown_forced",
        args: &["teardown", ENV, "--yes", "--force", "--timeout", "3s"],
        env: &[],
        code: 0,
        unchanged: Unchanged::default(),
    };
    check(&sandbox, &forced).await;
    assert_eq!(sandbox.log().len(), commits + 1, "one removal commit");
    assert_eq!(sandbox.committed("clusters/dev/kustomization.yaml"), None);
    assert!(!sandbox.path(".gitops-bootstrap/dev").exists());
}

/// Everything a teardown needs is checked in its first step: a push token that may only read
/// stops it there, naming the variable it came from, with nothing deleted; with `--keep-repo`
/// the Git server is not needed at all, even when it is down.
#[tokio::test(flavor = "multi_thread")]
async fn push_rights_are_checked_first_and_keep_repo_needs_no_git_server() {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());

    let read_only = sandbox.git.read_token().to_owned();
    let case = Case {
        name: "read_only_push_token",
        args: &["teardown", ENV, "--yes"],
        env: &[("SANDBOX_GIT_PUSH_TOKEN", &read_only)],
        code: 2,
        unchanged: Unchanged::all(vec![generated_state(&sandbox, ENV)]),
    };
    check(&sandbox, &case).await;

    sandbox.git.stop();
    let keep = Case {
        name: "git_down_keep_repo",
        args: &["teardown", ENV, "--yes", "--keep-repo"],
        env: &[],
        code: 0,
        unchanged: Unchanged {
            cluster: false,
            git: true,
            states: Vec::new(),
        },
    };
    check(&sandbox, &keep).await;
    assert!(
        sandbox
            .committed("clusters/dev/kustomization.yaml")
            .is_some(),
        "kept in Git"
    );
}
