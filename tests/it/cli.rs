//! The command line as a new user meets it: help, `config schema`, completions, `doctor`,
//! `plan`, JSON events and the documented exit codes, through the real binary.

use std::path::Path;
use std::process::Output;

use testkit::env_config::{ConfigFile, EnvConfig, Push, Repository};

use crate::support::{bin, snapshot};

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A project with a config for env `dev` on terraform/existing and a fake kubeconfig.
fn project() -> tempfile::TempDir {
    project_with(|_| {})
}

/// [`project`] with env `dev`'s config changed by `change`.
fn project_with(change: impl FnOnce(&mut EnvConfig)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let repository = Repository::new(
        "https://git.example.test/fleet.git",
        ("Bootstrap Bot", "bot@example.test"),
        Push::token("CLI_TEST_GIT_TOKEN"),
    )
    .with_read_token("CLI_TEST_GIT_READ_TOKEN");
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/existing");
    let mut dev = EnvConfig {
        ci: true,
        ..EnvConfig::on_module(module, "standard")
    }
    .with_flux_version("v2.4.0")
    .with_variable("cluster_name", "dev")
    .with_variable("kubeconfig_path", kubeconfig.display().to_string());
    change(&mut dev);
    ConfigFile::of_env("dev", dev)
        .with_repository(repository)
        .write(&dir.path().join("gitops-bootstrap.toml"))
        .unwrap();
    dir
}

/// What doctor, preflight and the shipped modules' paths tell of this machine:
/// where the tools are installed, where the repository is checked out.
pub(crate) const MACHINE: [(&str, &str); 2] = [
    (r#"[^\s"]*/bin/(terraform|git|kubectl)\b"#, "[bin]/$1"),
    (env!("CARGO_MANIFEST_DIR"), "[checkout]"),
];

#[test]
fn help_lists_only_the_working_commands() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path()).arg("--help").output().unwrap();
    assert!(output.status.success());
    snapshot!("help", text(&output).0);
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["text", "json"] {
        let output = bin(dir.path())
            .args(["--output", format, "--version"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        // Built from a checkout with changes or without.
        let dirty = [(r", dirty\)", ")")];
        snapshot!(format!("version_{format}"), text(&output).0, extra = dirty);
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path()).args(["create-env"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let missing = text(&output).1;
    let output = bin(dir.path())
        .args(["create-env", "dev", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    snapshot!("usage_errors", format!("{missing}---\n{}", text(&output).1));
}

#[test]
fn config_schema_is_json_describing_envs() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path()).args(["config", "schema"]).output().unwrap();
    assert!(output.status.success());
    let _: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    snapshot!("config_schema", text(&output).0);
}

#[test]
fn completions_are_generated_for_bash() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(output.status.success());
    snapshot!("completions_bash", text(&output).0);
}

/// The commands that print a document (config schema, completions, man) print it whole as
/// text; as JSON, one `result` event holds that same document.
#[test]
fn documents_are_printed_whole_and_held_by_one_json_result() {
    let dir = tempfile::tempdir().unwrap();
    // The man page names the commit, from a checkout with changes or without.
    let dirty = [(r", dirty\)", ")")];
    let man = bin(dir.path()).arg("man").output().unwrap();
    assert!(man.status.success(), "{man:?}");
    snapshot!("man_text", text(&man).0, extra = dirty);
    for (args, field) in [
        (&["config", "schema"][..], None),
        (&["completions", "bash"][..], Some("script")),
        (&["man"][..], Some("roff")),
    ] {
        let printed = bin(dir.path()).args(args).output().unwrap();
        let output = bin(dir.path())
            .args(["--output", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let event: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let (held, document): (_, serde_json::Value) = match field {
            None => (
                &event["result"],
                serde_json::from_slice(&printed.stdout).unwrap(),
            ),
            Some(field) => (&event["result"][field], text(&printed).0.into()),
        };
        assert_eq!(*held, document, "{args:?}");
        // The event as printed, the document it holds left out.
        let printed = text(&output).0;
        let shown = printed.replacen(&held.to_string(), "\"[the document printed as text]\"", 1);
        assert_ne!(
            shown, printed,
            "{args:?}: the document is printed as serde_json does"
        );
        snapshot!(format!("{}_json", args.join("_")), shown);
    }
}

#[test]
fn envs_without_a_config_file_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path()).arg("envs").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let json = bin(dir.path())
        .args(["--output", "json", "envs"])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(2));
    snapshot!(
        "envs_without_config",
        format!("{}---\n{}", text(&output).1, text(&json).0)
    );
}

/// Every command's refusal that needs no cluster, as text (stdout, then stderr) and as JSON
/// events: what failed, why, and what to do, with the documented exit code.
#[test]
fn every_command_fails_alike_as_text_and_json() {
    let dir = project();
    let cases: [(&[&str], i32); 12] = [
        (&["create-env", "dev"], 2),
        (&["status", "dev"], 2),
        (&["status", "dev", "--drift"], 2),
        (&["teardown", "dev"], 2),
        (&["teardown", "dev", "--yes"], 2),
        (&["rebuild", "dev"], 2),
        (&["rebuild", "dev", "--yes"], 2),
        (&["plan", "Prod"], 2),
        (&["doctor", "--terraform", "/nonexistent/terraform"], 1),
        (&["lint", "--profile", "nope"], 2),
        (&["init", "."], 2),
        (&["man", "--dir", "gitops-bootstrap.toml"], 1),
    ];
    let mut told = Vec::new();
    for (args, code) in cases {
        told.push(format!(
            "## gitops-bootstrap {} (exit {code})",
            args.join(" ")
        ));
        for format in ["text", "json"] {
            let output = bin(dir.path())
                .args(["--output", format])
                .args(args)
                .output()
                .unwrap();
            assert_eq!(
                output.status.code(),
                Some(code),
                "{args:?} {format}: {output:?}"
            );
            let (stdout, stderr) = text(&output);
            told.push(format!("### {format}\n{stdout}{stderr}"));
        }
    }
    snapshot!("every_command_fails", told.join("\n"), extra = MACHINE);
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
    let (_, unknown_key) = text(&output);
    assert!(
        !unknown_key.contains("abc"),
        "the value is not echoed: {unknown_key}"
    );

    std::fs::write(&path, config).unwrap();
    let output = bin(dir.path())
        .args(["--config", "gitops-bootstrap.toml", "plan", "Prod"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let (_, unknown_env) = text(&output);
    snapshot!("config_errors", format!("{unknown_key}---\n{unknown_env}"));
}

#[test]
fn doctor_checks_tools_config_module_and_warns_about_ci_state() {
    let dir = project();
    for format in ["text", "json"] {
        let output = bin(dir.path())
            .args(["--output", format, "doctor", "dev"])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        // The token missing: the repository is not checked; a CI env with local state.
        assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
        snapshot!(format!("doctor_{format}"), stdout, extra = MACHINE);
    }
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
    snapshot!("doctor_without_kubectl", stdout, extra = MACHINE);
}

#[test]
fn plan_shows_what_terraform_would_add_as_text_and_json() {
    let dir = project();
    let output = bin(dir.path()).args(["plan", "dev"]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    // The repository cannot be read here: its section says why, the Terraform plan stands.
    snapshot!("plan_without_repository", stdout);
    snapshot!("plan_without_repository_progress", stderr);
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
    crate::support::json_events(&output);
    snapshot!("plan_without_repository_json", text(&output).0);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_reaches_the_repository_with_the_push_credentials() {
    let sandbox = crate::support::sandbox::Sandbox::start().await;
    sandbox.write_config();
    let run = sandbox.run(&["doctor", "dev"]).await;
    assert_eq!(run.code, 0, "{}", run.output());
    let wrong = sandbox
        .run_with_env(
            &["doctor", "dev"],
            &[("SANDBOX_GIT_PUSH_TOKEN", "not-the-token")],
        )
        .await;
    assert_eq!(wrong.code, 1, "{}", wrong.output());
    assert!(!wrong.output().contains("not-the-token"));
    let repository = |stdout: &str| -> String {
        let lines: Vec<&str> = stdout
            .lines()
            .skip_while(|line| !line.contains(" env dev repository:"))
            .take_while(|line| line.contains(" env dev repository:") || line.starts_with(' '))
            .collect();
        lines.join("\n")
    };
    snapshot!(
        "doctor_repository",
        format!(
            "{}\n---\n{}",
            repository(&run.stdout),
            repository(&wrong.stdout)
        )
    );
}

/// Issue 8, defect 6: contract errors came only after `terraform apply`, and doctor showed ✔
/// for a module with no outputs. Now the declarations are checked before Terraform runs.
#[test]
fn a_mapping_typo_stops_create_env_before_terraform_runs() {
    let dir = project_with(|dev| {
        dev.outputs
            .insert("cluster_name".into(), "cluster_nam".into());
    });
    let output = bin(dir.path())
        .args(["create-env", "dev", "--yes"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    snapshot!("mapping_typo_create_env", stderr, extra = MACHINE);
    assert!(
        !dir.path().join(".gitops-bootstrap/dev/terraform").exists(),
        "Terraform never ran"
    );

    let output = bin(dir.path()).args(["doctor", "dev"]).output().unwrap();
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    snapshot!("mapping_typo_doctor", stdout, extra = MACHINE);
}

/// `doctor dev` on a project whose env uses a module made of `main_tf`: its exit code and the
/// module's check with its fix.
fn doctor_module_check(main_tf: &str) -> (Option<i32>, String) {
    // The module declares no kubeconfig_path: the env sets none.
    let dir = project_with(|dev| {
        dev.module = Some("module".into());
        dev.variables.remove("kubeconfig_path");
    });
    let module = dir.path().join("module");
    std::fs::create_dir(&module).unwrap();
    std::fs::write(module.join("main.tf"), main_tf).unwrap();
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
    snapshot!(
        "doctor_fails_a_module_that_declares_no_outputs",
        module_check
    );
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
    snapshot!(
        "doctor_fails_a_credential_plugin_that_is_not_on_path",
        module_check
    );
}
