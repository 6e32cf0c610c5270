//! Whose cluster is it, and can it be seen: the cases of issue 19 items 1, 2, 3, 6 and 10 —
//! another env's cluster, credentials the cluster refuses (401, 403), a cluster that does not
//! answer, an existing root with its own backend path and workspace, and the checks a teardown
//! makes before it deletes anything.

use std::path::Path;

use super::{Case, Unchanged, check, generated_state};
use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

const CREATE: [&str; 5] = ["create-env", ENV, "--profile", "standard", "--yes"];

/// Env `second` is misconfigured with env `dev`'s cluster: create-env stops at connect (after
/// its apply); then nothing may treat dev's cluster as second's.
#[tokio::test(flavor = "multi_thread")]
async fn another_envs_cluster_is_never_torn_down_nor_reported_as_this_envs() {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config_sharing_the_cluster("second");
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
/// deleted, naming where the credentials come from; so does status. Given good credentials
/// again, a rebuild does not call the cluster gone: whose it is is settled after its apply.
#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_are_bad_input_and_nothing_is_torn_down() {
    let sandbox = Sandbox::start_isolated().await;
    let kubeconfig = sandbox.path("kubeconfig");
    let server = sandbox.cluster.server().expect("an in-process cluster");
    write_kubeconfig(&sandbox, &kubeconfig, server.token());
    sandbox.write_dev_config(sandbox.env_config("sandbox", &kubeconfig, &sandbox.repo_url()));
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
    write_kubeconfig(&sandbox, &kubeconfig, server.token());
    let rebuild = Case {
        name: "new_credentials_rebuild",
        args: &["rebuild", ENV, "--yes"],
        env: &[],
        code: 0,
        unchanged: Unchanged {
            cluster: false,
            git: true,
            states: Vec::new(),
        },
    };
    check(&sandbox, &rebuild).await;
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
    sandbox.write_dev_config(sandbox.env_config("sandbox", &kubeconfig, &sandbox.repo_url()));
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

/// An existing root with its own backend `path`, run in a workspace that is not `default`: its
/// state is where Terraform says, not where a path would be guessed. status, drift, plan and
/// rebuild see the env's intact cluster; teardown empties it before it destroys.
#[tokio::test(flavor = "multi_thread")]
async fn an_existing_roots_own_backend_and_workspace_are_asked_of_terraform() {
    let sandbox = Sandbox::start_isolated().await;
    let root = sandbox.write_eks_root_config("infra/prod");
    for args in [&["init", "-input=false"][..], &["workspace", "new", "blue"]] {
        let made = std::process::Command::new("terraform")
            .args(args)
            .current_dir(&root)
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
    }
    let created = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(created.code, 0, "{}", created.output());
    let state = root.join("terraform.tfstate.d/blue/terraform.tfstate");
    assert!(state.exists(), "the workspace's state");

    for (name, args) in [
        ("own_root_status", &["status", ENV][..]),
        ("own_root_status_json", &["--output", "json", "status", ENV]),
        ("own_root_drift", &["status", ENV, "--drift"]),
        (
            "own_root_drift_json",
            &["--output", "json", "status", ENV, "--drift"],
        ),
        ("own_root_plan", &["plan", ENV]),
    ] {
        let case = Case {
            name,
            args,
            env: &[],
            code: 0,
            unchanged: Unchanged::all(vec![state.clone()]),
        };
        check(&sandbox, &case).await;
    }
    let rebuild = Case {
        name: "own_root_rebuild",
        args: &["rebuild", ENV, "--yes"],
        env: &[],
        code: 0,
        unchanged: Unchanged {
            cluster: false,
            git: true,
            states: Vec::new(),
        },
    };
    check(&sandbox, &rebuild).await;
    let teardown = Case {
        name: "own_root_teardown",
        args: &["teardown", ENV, "--yes"],
        env: &[],
        code: 0,
        unchanged: Unchanged::default(),
    };
    check(&sandbox, &teardown).await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(sandbox.cluster.client());
    assert!(
        namespaces.get_opt("flux-system").await.unwrap().is_none(),
        "Flux is gone with its record"
    );
}

/// Issue 19 item 10, on an env that was never created: its teardown names no age key that does
/// not exist, and a teardown refused by the env's lock leaves the running command's run
/// record as it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_never_created_env_and_a_held_lock_are_told_as_they_are() {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let never = Case {
        name: "never_created_teardown",
        args: &["teardown", ENV, "--yes"],
        env: &[],
        code: 0,
        unchanged: Unchanged::all(Vec::new()),
    };
    check(&sandbox, &never).await;

    // A rebuild holds the lock and has written its record.
    let env_dir = sandbox.path(".gitops-bootstrap/dev");
    let _held = gitops_bootstrap::lock::EnvLock::acquire(ENV, &env_dir.join("lock")).unwrap();
    let record = r#"{"env":"dev","command":"rebuild","status":"running"}"#;
    std::fs::write(env_dir.join("run.json"), record).unwrap();
    let locked = Case {
        name: "locked_teardown",
        args: &["teardown", ENV, "--yes"],
        env: &[],
        code: 1,
        unchanged: Unchanged::all(vec![env_dir.join("run.json")]),
    };
    check(&sandbox, &locked).await;
}

/// Runs `git` as a user with push access, failing the test when it fails.
fn git(sandbox: &Sandbox, dir: &Path, args: &[&str]) {
    let output = sandbox.git_cli(dir).args(args).output().unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
}

/// What a rebuild needs is checked before anything changes: doctor names an age key that does
/// not match the committed recipient; rebuild stops in preflight on committed Flux components
/// that are garbage, and on a cluster directory a later commit removed it names the last
/// commit that had it.
#[tokio::test(flavor = "multi_thread")]
async fn rebuild_and_doctor_check_what_a_rebuild_needs_before_anything_changes() {
    let sandbox = Sandbox::start_isolated().await;
    sandbox.write_config();
    let created = sandbox.run(&CREATE).await;
    assert_eq!(created.code, 0, "{}", created.output());
    let state = generated_state(&sandbox, ENV);

    let key = sandbox.age_key_file();
    let moved = sandbox.path("dev.agekey.moved");
    std::fs::rename(&key, &moved).unwrap();
    let doctor = sandbox.run(&["doctor", ENV]).await;
    std::fs::rename(&moved, &key).unwrap();
    assert_eq!(doctor.code, 1, "{}", doctor.output());
    let age_line: Vec<&str> = doctor
        .stdout
        .lines()
        .filter(|line| line.contains("age key"))
        .collect();
    snapshot!("doctor_age_key_missing", age_line.join("\n"));
    // A key of another env in its place: present, but not the committed recipient's.
    let other = sandbox.path("other.agekey");
    let generated = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&other)
        .output()
        .expect("age-keygen");
    assert!(generated.status.success(), "{generated:?}");
    std::fs::rename(&key, &moved).unwrap();
    std::fs::rename(&other, &key).unwrap();
    let doctor = sandbox.run(&["doctor", ENV]).await;
    std::fs::rename(&moved, &key).unwrap();
    assert_eq!(doctor.code, 1, "{}", doctor.output());
    let age_line: Vec<&str> = doctor
        .stdout
        .lines()
        .filter(|line| line.contains("age key"))
        .collect();
    snapshot!("doctor_age_key_another", age_line.join("\n"));

    let components = "clusters/dev/flux-system/gotk-components.yaml";
    sandbox.commit_file(
        components,
        "# Flux version: v2.4.0\nnot: [flux\n",
        "a broken copy",
    );
    let garbage = Case {
        name: "rebuild_garbage_components",
        args: &["rebuild", ENV, "--yes"],
        env: &[],
        code: 2,
        unchanged: Unchanged::all(vec![state.clone()]),
    };
    check(&sandbox, &garbage).await;

    let clone = sandbox.path("clone");
    git(
        &sandbox,
        sandbox.dir.path(),
        &["clone", "--quiet", &sandbox.repo_url(), "clone"],
    );
    git(&sandbox, &clone, &["rm", "-r", "--quiet", "clusters/dev"]);
    git(
        &sandbox,
        &clone,
        &["commit", "--quiet", "-m", "remove dev by mistake"],
    );
    git(&sandbox, &clone, &["push", "--quiet", "origin", "HEAD"]);
    let removed = Case {
        name: "rebuild_removed_cluster_dir",
        args: &["rebuild", ENV, "--yes"],
        env: &[],
        code: 2,
        unchanged: Unchanged::all(vec![state]),
    };
    check(&sandbox, &removed).await;
}
