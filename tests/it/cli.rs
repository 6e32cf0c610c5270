//! The command line as a new user meets it: help, `config schema`, completions, `doctor`,
//! `plan`, JSON events and the documented exit codes, through the real binary.

use std::process::Output;

use crate::support::bin;

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A project with a config for env `dev` on terraform/existing and a fake kubeconfig.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        "apiVersion: v1\nkind: Config\n",
    )
    .unwrap();
    let config = format!(
        r#"[repository]
url = "https://git.example.test/fleet.git"
author_name = "Bootstrap Bot"
author_email = "bot@example.test"
push = {{ method = "token", token_env = "CLI_TEST_GIT_TOKEN" }}
read = {{ token_env = "CLI_TEST_GIT_READ_TOKEN" }}

[envs.dev]
module = "{root}/terraform/existing"
profile = "standard"
flux_version = "v2.4.0"
ci = true

[envs.dev.variables]
cluster_name = "dev"
kubeconfig_path = "{kubeconfig}"
"#,
        root = env!("CARGO_MANIFEST_DIR"),
        kubeconfig = dir.path().join("kubeconfig").display()
    );
    std::fs::write(dir.path().join("gitops-bootstrap.toml"), config).unwrap();
    dir
}

#[test]
fn help_lists_only_the_working_commands() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let (stdout, _) = text(&output);
    for command in [
        "create-env",
        "status",
        "plan",
        "doctor",
        "config",
        "completions",
    ] {
        assert!(stdout.contains(command), "{command} in help: {stdout}");
    }
    assert!(stdout.contains("Exit codes"), "{stdout}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path()).args(["create-env"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = bin(dir.path())
        .args(["create-env", "dev", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn config_schema_is_json_describing_envs() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path()).args(["config", "schema"]).output().unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let text = schema.to_string();
    for key in ["envs", "module", "flux_version", "token_env", "outputs"] {
        assert!(text.contains(key), "{key} in the schema");
    }
}

#[test]
fn completions_are_generated_for_bash() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("create-env"));
}

#[test]
fn config_errors_name_the_key_and_position_and_exit_2() {
    let dir = project();
    let path = dir.path().join("gitops-bootstrap.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        config.replace("ci = true", "ci = true\ntoken = \"abc\""),
    )
    .unwrap();
    let output = bin(dir.path()).args(["plan", "dev"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("token"), "{stderr}");
    assert!(
        stderr.contains("gitops-bootstrap.toml:13:1"),
        "line:column of the unknown key: {stderr}"
    );
    assert!(!stderr.contains("abc"), "the value is not echoed: {stderr}");

    std::fs::write(&path, config).unwrap();
    let output = bin(dir.path())
        .args(["--config", "gitops-bootstrap.toml", "plan", "Prod"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("unknown environment `Prod`"), "{stderr}");
}

#[test]
fn create_env_needs_yes_when_nobody_can_confirm() {
    let dir = project();
    let output = bin(dir.path())
        .args(["create-env", "dev"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("--yes"));
}

#[test]
fn doctor_checks_tools_config_module_and_warns_about_ci_state() {
    let dir = project();
    let output = bin(dir.path()).args(["doctor", "dev"]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("✔ terraform: Terraform"), "{stdout}");
    assert!(stdout.contains("✔ kubectl: "), "{stdout}");
    assert!(stdout.contains("✔ config:"), "{stdout}");
    assert!(stdout.contains("✔ env dev module:"), "{stdout}");
    assert!(
        stdout.contains("⚠ env dev repository"),
        "token missing: not checked: {stdout}"
    );
    assert!(
        stdout.contains("⚠ env dev state"),
        "CI env with local sensitive state: {stdout}"
    );
}

#[test]
fn doctor_warns_with_the_fix_when_kubectl_is_missing() {
    let dir = project();
    let output = bin(dir.path())
        .env("GITOPS_BOOTSTRAP_KUBECTL", "/nonexistent/kubectl")
        .args(["doctor"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("⚠ kubectl: cannot build with kustomize: `kubectl` was not found on PATH (lint needs it)\n    fix: install kubectl"),
        "{stdout}"
    );
}

#[test]
fn doctor_fails_with_the_fix_when_terraform_is_missing() {
    let dir = project();
    let output = bin(dir.path())
        .args(["doctor", "--terraform", "/nonexistent/terraform"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (stdout, _) = text(&output);
    assert!(stdout.contains("✘ terraform"), "{stdout}");
    assert!(stdout.contains("fix:"), "{stdout}");
}

#[test]
fn plan_shows_what_terraform_would_add_as_text_and_json() {
    let dir = project();
    let output = bin(dir.path()).args(["plan", "dev"]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("1 to add"), "{stdout}");
    // The repository cannot be read here: its section says why, the Terraform plan stands.
    insta::assert_snapshot!("plan_without_repository", stdout);
    assert!(
        stderr.contains("the repository is not compared"),
        "{stderr}"
    );
    assert!(
        !dir.path()
            .join(".gitops-bootstrap/dev/terraform/terraform.tfstate")
            .exists(),
        "plan applies nothing"
    );

    let output = bin(dir.path())
        .args(["--output", "json", "plan", "dev"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("NDJSON"))
        .collect();
    assert_eq!(events.first().unwrap()["event"], "step_started");
    let result = events.last().unwrap();
    assert_eq!(result["event"], "result");
    assert_eq!(
        result["result"]["terraform"]["adds"][0],
        "module.cluster.terraform_data.adopted_cluster"
    );
    assert_eq!(result["result"]["repository"]["state"], "skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_reaches_the_repository_with_the_push_credentials() {
    let sandbox = crate::support::sandbox::Sandbox::start().await;
    sandbox.write_config();
    let run = sandbox.run(&["doctor", "dev"]).await;
    assert_eq!(run.code, 0, "{}", run.output());
    assert!(
        run.stdout.contains("✔ env dev repository:") && run.stdout.contains("reachable"),
        "{}",
        run.stdout
    );
    let wrong = sandbox
        .run_with_env(
            &["doctor", "dev"],
            &[("SANDBOX_GIT_PUSH_TOKEN", "not-the-token")],
        )
        .await;
    assert_eq!(wrong.code, 1, "{}", wrong.output());
    assert!(
        wrong.stdout.contains("✘ env dev repository:"),
        "{}",
        wrong.stdout
    );
    assert!(!wrong.output().contains("not-the-token"));
}

/// Issue 8, defect 6: contract errors came only after `terraform apply`, and doctor showed ✔
/// for a module with no outputs. Now the declarations are checked before Terraform runs.
#[test]
fn a_mapping_typo_stops_create_env_before_terraform_runs() {
    let dir = project();
    let path = dir.path().join("gitops-bootstrap.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{config}\n[envs.dev.outputs]\ncluster_name = \"cluster_nam\"\n"),
    )
    .unwrap();
    let output = bin(dir.path())
        .args(["create-env", "dev", "--yes"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "maps `cluster_name` to output `cluster_nam`, which the module does not declare"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `cluster_name`?"), "{stderr}");
    assert!(
        !dir.path().join(".gitops-bootstrap/dev/terraform").exists(),
        "Terraform never ran"
    );

    let output = bin(dir.path()).args(["doctor", "dev"]).output().unwrap();
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✘ env dev module:"), "{stdout}");
    assert!(stdout.contains("did you mean `cluster_name`?"), "{stdout}");
}

/// `doctor dev` on a project whose env uses a module made of `main_tf`: its exit code and the
/// module's check with its fix.
fn doctor_module_check(main_tf: &str) -> (Option<i32>, String) {
    let dir = project();
    let module = dir.path().join("module");
    std::fs::create_dir(&module).unwrap();
    std::fs::write(module.join("main.tf"), main_tf).unwrap();
    let path = dir.path().join("gitops-bootstrap.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let module_line = format!(
        "module = \"{}/terraform/existing\"",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::write(
        &path,
        config
            .replace(&module_line, "module = \"module\"")
            .replace("kubeconfig_path", "# kubeconfig_path"),
    )
    .unwrap();
    let output = bin(dir.path()).args(["doctor", "dev"]).output().unwrap();
    let (stdout, _) = text(&output);
    let module_check: String = stdout
        .lines()
        .skip_while(|line| !line.starts_with("✘ env dev module"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    (output.status.code(), module_check)
}

#[test]
fn doctor_fails_a_module_that_declares_no_outputs() {
    let (code, module_check) = doctor_module_check("variable \"cluster_name\" {}\n");
    assert_eq!(code, Some(1), "{module_check}");
    insta::assert_snapshot!(module_check);
}

/// Issue 8 item 12: a credential plugin the module names literally is looked up on PATH before
/// any apply, by doctor as by create-env's preflight.
#[test]
fn doctor_fails_a_credential_plugin_that_is_not_on_path() {
    let (code, module_check) = doctor_module_check(
        r#"
output "cluster_name" { value = "dev" }
output "cluster_endpoint" { value = "https://api.dev.example" }
output "cluster_ca_certificate" { value = "LS0t" }
output "cluster_exec" {
  value = { command = "no-such-get-token-5f3a", args = ["eks", "get-token"] }
}
"#,
    );
    assert_eq!(code, Some(1), "{module_check}");
    insta::assert_snapshot!(module_check);
}
