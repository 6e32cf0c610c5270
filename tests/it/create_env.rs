//! create-env end to end: the product binary with real Terraform (terraform/existing), real Git
//! over HTTPS and the test cluster with its Flux stand-ins.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use testkit::env_config::{EnvConfig, Push, Repository};
use tokio::io::AsyncBufReadExt as _;

use crate::support::sandbox::{BRANCH, ENV, REPO, Run, Sandbox};
use crate::support::snapshot;

const CREATE: [&str; 5] = ["create-env", ENV, "--profile", "standard", "--yes"];

#[tokio::test(flavor = "multi_thread")]
async fn standard_profile_comes_up_and_a_rerun_changes_nothing() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let seeded = sandbox.log().len();

    let before = sandbox.run(&["status", ENV]).await;
    assert_eq!(before.code, 2, "{}", before.output());
    snapshot!("status_before_create", before.shown());

    let first = sandbox.run(&CREATE).await;
    assert_eq!(first.code, 0, "{}", first.output());
    snapshot!("come_up_text", first.shown());

    let log = sandbox.log();
    assert_eq!(log.len(), seeded + 1, "one commit for the env");
    let profile = sandbox
        .committed("clusters/dev/profile.yaml")
        .expect("profile.yaml committed");
    snapshot!("come_up_profile_yaml", profile);
    let components = sandbox
        .committed("clusters/dev/flux-system/gotk-components.yaml")
        .expect("components committed");
    assert_eq!(
        components,
        std::fs::read_to_string(sandbox.path("gotk-components.yaml")).unwrap(),
        "committed byte for byte as applied"
    );
    snapshot!(
        "come_up_sops_yaml",
        sandbox.committed("clusters/dev/.sops.yaml").unwrap()
    );

    let client = sandbox.cluster.client();
    let config: Api<ConfigMap> = Api::namespaced(client.clone(), "flux-system");
    let data = config.get("cluster-config").await.unwrap().data.unwrap();
    assert_eq!(data["cluster_name"], "sandbox");
    assert_eq!(data["base_domain"], "sandbox.example.test");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "flux-system");
    let cluster_secrets = secrets.get("cluster-secrets").await.unwrap().data.unwrap();
    assert_eq!(cluster_secrets["dns_api_token"].0, b"sandbox-dns-token");
    let git = secrets.get("flux-system").await.unwrap().data.unwrap();
    assert_eq!(
        git["password"].0,
        sandbox.git.read_token().as_bytes(),
        "Flux reads with the read token"
    );
    assert_eq!(keys(&git), ["ca.crt", "password", "username"]);
    let sops = secrets.get("sops-age").await.unwrap().data.unwrap();
    assert_eq!(keys(&sops), ["dev.agekey"]);
    for namespace in ["ingress-nginx", "cert-manager", "external-dns"] {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        assert!(
            namespaces.get_opt(namespace).await.unwrap().is_some(),
            "{namespace} installed"
        );
    }

    let rerun = sandbox
        .run(&["--output", "json", "create-env", ENV, "--yes"])
        .await;
    assert_eq!(rerun.code, 0, "{}", rerun.output());
    assert_eq!(sandbox.log(), log, "a rerun makes no commit");
    // Every step up to date, one result last.
    snapshot!("rerun_json", rerun.events());

    let status = sandbox.run(&["status", ENV]).await;
    assert_eq!(status.code, 0, "{}", status.output());
    snapshot!("status_after_create_text", &status.stdout);
    // Waiting on a Ready env returns at once with the same tree.
    let waited = sandbox
        .run(&["status", ENV, "--wait", "--timeout", "1m"])
        .await;
    assert_eq!(waited.code, 0, "{}", waited.output());
    assert_eq!(waited.stdout, status.stdout);
    let status = sandbox.run(&["--output", "json", "status", ENV]).await;
    snapshot!("status_after_create_json", status.events());
}

/// The keys of a Secret's data, in order.
fn keys(data: &std::collections::BTreeMap<String, k8s_openapi::ByteString>) -> Vec<&str> {
    data.keys().map(String::as_str).collect()
}

/// A timeout report's table after a short `--timeout`: how far Flux's controllers got within
/// it varies from run to run.
const TIMEOUT_REPORT: (&str, &str) = (
    r"(?s)(not Ready within [^:\n]+:\n).*?\n  hint:",
    "$1  [what was not Ready yet]\n  hint:",
);

/// Nothing of the env reached the cluster and no commit was made.
async fn assert_nothing_changed(sandbox: &Sandbox, log_before: &[String]) {
    assert_eq!(sandbox.log(), log_before, "no commit");
    let namespaces: Api<Namespace> = Api::all(sandbox.cluster.client());
    assert!(
        namespaces.get_opt("flux-system").await.unwrap().is_none(),
        "nothing applied to the cluster"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_chart_fails_fast_with_the_controllers_message_and_the_chain() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    sandbox.replace_in_repo(
        "profiles/apps/cert-manager/release.yaml",
        "version: v1.17.2",
        "version: v0.0.0-missing",
    );
    let started = Instant::now();
    let run = sandbox
        .run(&["create-env", ENV, "--yes", "--timeout", "10m"])
        .await;
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(started.elapsed() < Duration::from_secs(60), "failed fast");
    // RetriesExceeded with the controller's message, and the chain it blocks.
    snapshot!("missing_chart_text", run.shown());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_names_what_is_not_ready_and_exits_3() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let run = sandbox
        .run(&["create-env", ENV, "--yes", "--timeout", "1s"])
        .await;
    assert_eq!(run.code, 3, "{}", run.output());
    snapshot!("timeout_text", run.shown(), extra = [TIMEOUT_REPORT]);
    // Whatever else it got to, the root of the tree is never Ready that soon.
    let root = "\n  Kustomization flux-system/flux-system ";
    assert!(run.stderr.contains(root), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_raced_by_another_commit_is_recovered_without_force() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let seeded = sandbox.log();
    // Armed once preflight is over (its push-rights check asks for the push service too): the
    // next push advertisement is the commit step's own.
    let mut child = sandbox.command(&CREATE).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.ends_with("▶ terraform") {
                sandbox.git.race_next_push(REPO, BRANCH);
            }
            stderr.push_str(&line);
            stderr.push('\n');
        }
    };
    tokio::time::timeout(Duration::from_secs(300), read)
        .await
        .expect("create-env ended in time");
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let log = sandbox.log();
    assert_eq!(log.len(), seeded.len() + 2, "the racing commit and ours");
    assert_eq!(log[2..], seeded[..], "history kept: no force push");
    let commit: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains(" commit: "))
        .collect();
    snapshot!("push_raced_commit_step", commit.join("\n"));
    assert!(sandbox.committed("clusters/dev/profile.yaml").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_env_whose_age_key_is_absent_stops_with_exit_2() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let sops =
        format!("creation_rules:\n  - path_regex: .*\\.sops\\.yaml$\n    age: {recipient}\n");
    sandbox
        .git
        .commit_files(
            REPO,
            BRANCH,
            &[("clusters/dev/.sops.yaml", &sops)],
            "an env with a key",
        )
        .unwrap();
    let seeded = sandbox.log();
    let run = sandbox.run(&CREATE).await;
    assert_eq!(run.code, 2, "{}", run.output());
    // The recipient named is the committed one.
    let committed = regex::escape(&recipient);
    snapshot!(
        "absent_age_key_text",
        run.shown(),
        extra = [(committed.as_str(), "[the committed recipient]")]
    );
    assert_nothing_changed(&sandbox, &seeded).await;
    assert!(!sandbox.age_key_file().exists(), "no new key made");
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_secrets_appear_in_no_output_log_commit_or_argv() {
    let sandbox = Sandbox::start().await;
    let canary = "CANARY-7f3a9d-cluster-secret";
    // Terraform behind a wrapper that records every argv it is given.
    let argv_log = sandbox.path("terraform-argv.log");
    let wrapper = sandbox.path("terraform-recorder");
    let real = which::which("terraform").expect("terraform on PATH");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            argv_log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    sandbox.write_config();
    let secrets = format!(r#"{{"dns_api_token" = "{canary}"}}"#);
    let env = [
        ("SANDBOX_CLUSTER_SECRETS", secrets.as_str()),
        ("GITOPS_BOOTSTRAP_TERRAFORM", wrapper.to_str().unwrap()),
        ("RUST_LOG", "debug"),
    ];
    let text = sandbox
        .run_with_env(&["-v", "create-env", ENV, "--yes"], &env)
        .await;
    assert_eq!(text.code, 0, "{}", text.output());
    let json = sandbox
        .run_with_env(&["--output", "json", "create-env", ENV, "--yes"], &env)
        .await;
    assert_eq!(json.code, 0, "{}", json.output());

    let secrets: Api<Secret> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let stored = secrets.get("cluster-secrets").await.unwrap().data.unwrap();
    assert_eq!(
        stored["dns_api_token"].0,
        canary.as_bytes(),
        "the canary did reach the cluster"
    );

    let push_token = sandbox.push_token.clone();
    let mut haystacks = vec![
        text.output(),
        json.output(),
        std::fs::read_to_string(&argv_log).unwrap(),
    ];
    haystacks
        .push(std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json")).unwrap());
    for file in [
        "profile.yaml",
        "kustomization.yaml",
        ".sops.yaml",
        "flux-system/gotk-sync.yaml",
        "flux-system/kustomization.yaml",
    ] {
        haystacks.push(sandbox.committed(&format!("clusters/dev/{file}")).unwrap());
    }
    for haystack in &haystacks {
        assert!(
            !haystack.contains(canary),
            "cluster secret leaked: {haystack}"
        );
        assert!(
            !haystack.contains(&push_token),
            "Git token leaked: {haystack}"
        );
        assert!(
            !haystack.contains(sandbox.git.read_token()),
            "read token leaked: {haystack}"
        );
    }
    // What Terraform was run with, both times: no secret on a command line. A plan file's
    // name is a temp file's, random.
    snapshot!(
        "terraform_argv",
        std::fs::read_to_string(&argv_log).unwrap(),
        extra = [(r"(\.gitops-bootstrap-)\w+(\.tfplan)", "$1[random]$2")]
    );
}

/// terraform/existing plus a resource whose creation takes a few seconds.
fn slow_module(sandbox: &Sandbox) -> std::path::PathBuf {
    let module = sandbox.path("slow-module");
    std::fs::create_dir_all(&module).unwrap();
    let existing = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/existing");
    for file in ["main.tf", "outputs.tf", "variables.tf"] {
        std::fs::copy(existing.join(file), module.join(file)).unwrap();
    }
    std::fs::write(
        module.join("slow.tf"),
        "resource \"terraform_data\" \"slow\" {\n  provisioner \"local-exec\" {\n    command = \"sleep 4\"\n  }\n}\n",
    )
    .unwrap();
    module
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_terraform_exits_130_and_a_rerun_converges() {
    let sandbox = Sandbox::start().await;
    let module = slow_module(&sandbox);
    sandbox.write_dev_config(EnvConfig {
        module: Some(module),
        ..sandbox.dev_config()
    });

    let mut child = sandbox.command(&CREATE);
    let mut child = child.spawn().unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Duration::from_secs(120);
    tokio::time::timeout(deadline, async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("creating module.cluster.terraform_data.slow") {
                return;
            }
        }
        panic!("Terraform never started the slow resource");
    })
    .await
    .expect("the slow resource started in time");
    let interrupted = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut rest = String::new();
    while let Some(line) = stderr.next_line().await.unwrap() {
        rest.push_str(&line);
        rest.push('\n');
    }
    let output = child.wait_with_output().await.unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: rest,
    };
    assert_eq!(run.code, 130, "{}", run.output());
    assert!(
        interrupted.elapsed() < Duration::from_secs(30),
        "stopped within the grace period"
    );
    // What it said from the interrupt on.
    snapshot!("interrupted_text", run.shown());
    assert!(
        sandbox.committed("clusters/dev/profile.yaml").is_none(),
        "nothing committed"
    );

    let rerun = sandbox.run(&CREATE).await;
    assert_eq!(rerun.code, 0, "a rerun converges: {}", rerun.output());
    assert!(sandbox.committed("clusters/dev/profile.yaml").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn over_ssh_flux_reads_with_a_per_env_deploy_key_once_it_is_registered() {
    let sandbox = Sandbox::start().await;
    let ssh = testkit::git::SshGitServer::start(sandbox.git.repos_dir())
        .await
        .expect("sshd (package openssh-server)");
    let push = Push::SshKey {
        key_file: ssh.client_key_path().to_owned(),
        known_hosts: ssh.known_hosts_path().to_owned(),
    };
    let repository = Repository {
        branch: Some(BRANCH.to_owned()),
        ..Repository::new(&ssh.url(REPO), ("tests", "tests@example.test"), push)
    };
    sandbox.write_dev_config(sandbox.dev_config().with_repository(repository));

    // The deploy key is new: Flux cannot read the repository until it is registered.
    let first = sandbox
        .run(&["create-env", ENV, "--yes", "--timeout", "3s"])
        .await;
    assert_eq!(first.code, 3, "{}", first.output());
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path(".gitops-bootstrap/dev/run.json")).unwrap(),
    )
    .unwrap();
    let deploy_key = record["deploy_key"]
        .as_str()
        .expect("deploy key recorded")
        .to_owned();
    assert!(deploy_key.starts_with("ssh-ed25519 "), "{deploy_key}");
    // Announced for registration; the wait then times out.
    let recorded = regex::escape(&deploy_key);
    snapshot!(
        "ssh_deploy_key_text",
        first.shown(),
        extra = [
            (recorded.as_str(), "[the recorded deploy key]"),
            TIMEOUT_REPORT
        ]
    );
    let operator_key =
        std::fs::read_to_string(ssh.client_key_path().with_extension("pub")).unwrap();
    assert_ne!(
        deploy_key.split(' ').nth(1),
        operator_key.split(' ').nth(1),
        "not the push key"
    );

    ssh.authorize_key(&deploy_key).unwrap();
    let second = sandbox.run(&CREATE).await;
    assert_eq!(second.code, 0, "{}", second.output());
    let secrets: Api<Secret> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let git = secrets.get("flux-system").await.unwrap().data.unwrap();
    assert_eq!(git["identity.pub"].0, deploy_key.as_bytes());
    assert_eq!(keys(&git), ["identity", "identity.pub", "known_hosts"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_that_would_replace_the_cluster_stops_unless_allowed() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let first = sandbox.run(&CREATE).await;
    assert_eq!(first.code, 0, "{}", first.output());
    let log = sandbox.log();

    // Another cluster name replaces the adopted cluster's record in terraform/existing.
    sandbox.write_dev_config(
        sandbox
            .dev_config()
            .with_variable("cluster_name", "renamed"),
    );
    let refused = sandbox.run(&CREATE).await;
    assert_eq!(refused.code, 2, "{}", refused.output());
    snapshot!("replace_refused_text", refused.shown());
    assert_eq!(sandbox.log(), log, "nothing committed");

    let allowed = sandbox
        .run(&["create-env", ENV, "--yes", "--allow-replace"])
        .await;
    assert_eq!(allowed.code, 0, "{}", allowed.output());
    let config_map: Api<ConfigMap> = Api::namespaced(sandbox.cluster.client(), "flux-system");
    let data = config_map
        .get("cluster-config")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(data["cluster_name"], "renamed");
}

#[tokio::test(flavor = "multi_thread")]
async fn re_pointing_an_env_to_another_profile_needs_change_profile() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let first = sandbox.run(&CREATE).await;
    assert_eq!(first.code, 0, "{}", first.output());
    let log = sandbox.log();

    let minimal = ["create-env", ENV, "--profile", "minimal", "--yes"];
    let refused = sandbox.run(&minimal).await;
    assert_eq!(refused.code, 2, "{}", refused.output());
    snapshot!("profile_change_refused_text", refused.shown());
    assert_eq!(sandbox.log(), log, "nothing committed");

    let moved = sandbox
        .run(&[
            "create-env",
            ENV,
            "--profile",
            "minimal",
            "--change-profile",
            "--yes",
        ])
        .await;
    assert_eq!(moved.code, 0, "{}", moved.output());
    snapshot!("profile_changed_text", moved.shown());
    snapshot!(
        "profile_changed_profile_yaml",
        sandbox.committed("clusters/dev/profile.yaml").unwrap()
    );
    // external-dns went with the old profile.
    let status = sandbox.run(&["status", ENV]).await;
    assert_eq!(status.code, 0, "{}", status.output());
    snapshot!("profile_changed_status_text", &status.stdout);
}
