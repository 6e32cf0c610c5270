//! `lint` through the real binary and the real `kubectl kustomize`: the shipped profiles lint
//! clean, a fixture repository with one mistake per rule yields exactly those findings at their
//! lines, `--fix` repairs Flux API versions and nothing else, bad input exits 2; create-env
//! runs the lint before Terraform.

use crate::support::sandbox::{ENV, Sandbox};
use crate::support::{bin, copy_dir, json_events, snapshot, stdout};
use std::path::{Path, PathBuf};

use testkit::env_config::{ConfigFile, EnvConfig, Push, Repository};

/// A config for lint tests: a top-level repository and env `dev` running `profile` with Flux
/// `flux_version` on the shipped `terraform/existing` module, its cluster named `dev` at a
/// kubeconfig that is not there.
pub(crate) fn lint_config(profile: &str, flux_version: &str) -> ConfigFile {
    let repository = Repository::new(
        "https://git.example.test/fleet.git",
        ("Bootstrap Bot", "bot@example.test"),
        Push::token("LINT_TEST_GIT_TOKEN"),
    )
    .with_read_token("LINT_TEST_GIT_READ_TOKEN");
    let dev = EnvConfig::on_module(manifest_dir().join("terraform/existing"), profile)
        .with_flux_version(flux_version)
        .with_variable("cluster_name", "dev")
        .with_variable("kubeconfig_path", "/nonexistent/kubeconfig");
    ConfigFile::of_env("dev", dev).with_repository(repository)
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the fixture repository of tests/it/fixtures/lint-repo.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &manifest_dir().join("tests/it/fixtures/lint-repo"),
        dir.path(),
    );
    dir
}

#[test]
fn shipped_profiles_lint_clean() {
    let repo = tempfile::tempdir().unwrap();
    copy_dir(
        &manifest_dir().join("profiles"),
        &repo.path().join("profiles"),
    );
    let output = bin(repo.path()).arg("lint").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    snapshot!("shipped_profiles", stdout(&output));
    let output = bin(repo.path())
        .args(["--output", "json", "lint"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    snapshot!("shipped_profiles_json", stdout(&output));

    // The apps the profiles' Kustomizations apply are linted too, not only the profiles.
    let release = repo.path().join("profiles/apps/external-dns/release.yaml");
    let text = std::fs::read_to_string(&release).unwrap();
    std::fs::write(
        &release,
        text.replace("${dns_policy:=upsert-only}", "${dns_policy}"),
    )
    .unwrap();
    let output = bin(repo.path())
        .args(["lint", "--profile", "standard"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    snapshot!("shipped_profiles_unresolved", stdout(&output));
}

#[test]
fn every_seeded_mistake_is_found_at_its_line() {
    let repo = fixture();
    let output = bin(repo.path()).arg("lint").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "errors exit 1");
    snapshot!("fixture_text", stdout(&output));

    let output = bin(repo.path())
        .args(["lint", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let events = json_events(&output);
    let (last, findings) = events.split_last().unwrap();
    assert!(findings.iter().all(|event| event["event"] == "finding"));
    assert_eq!(last["event"], "result");
    assert_eq!(last["result"]["errors"], 10);
    snapshot!("fixture_json", stdout(&output));

    // Every finding is on the line after a `# mistake:` comment, and every such comment has
    // its finding: exactly the seeded mistakes, each at its location.
    let found: Vec<(String, usize)> = findings
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let mut seeded = Vec::new();
    for entry in walk(repo.path()) {
        let text = std::fs::read_to_string(&entry).unwrap();
        let file = entry
            .strip_prefix(repo.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for (index, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("# mistake:") {
                seeded.push((file.clone(), index + 2));
            }
        }
    }
    seeded.sort();
    assert_eq!(found, seeded);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn fix_rewrites_only_flux_api_versions() {
    let repo = fixture();
    let output = bin(repo.path())
        .args(["lint", "--fix", "--profile", "main"])
        .output()
        .unwrap();
    // What was fixed, then what is left (no flux-api- finding).
    snapshot!("fix_text", stdout(&output));
    // Only the two apiVersion lines differ from the fixture.
    let mut changed = Vec::new();
    for file in [
        "profiles/apps/app-b/repository.yaml",
        "profiles/components/app-b/app-b.yaml",
    ] {
        let before = std::fs::read_to_string(
            manifest_dir()
                .join("tests/it/fixtures/lint-repo")
                .join(file),
        )
        .unwrap();
        let after = std::fs::read_to_string(repo.path().join(file)).unwrap();
        assert_eq!(before.lines().count(), after.lines().count());
        for (old, new) in before.lines().zip(after.lines()) {
            if old != new {
                changed.push(format!("{old} -> {new}"));
            }
        }
    }
    assert_eq!(
        changed,
        [
            "apiVersion: source.toolkit.fluxcd.io/v1beta2 -> apiVersion: source.toolkit.fluxcd.io/v1",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1beta1 -> apiVersion: kustomize.toolkit.fluxcd.io/v1",
        ]
    );
    // A second --fix has nothing left to do.
    let again = bin(repo.path())
        .args(["lint", "--fix", "--profile", "main"])
        .output()
        .unwrap();
    snapshot!("fix_again_text", stdout(&again));
}

#[test]
fn bad_input_exits_2_with_a_hint() {
    let repo = fixture();
    let output = bin(repo.path())
        .args(["lint", "--profile", "nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let unknown_profile = String::from_utf8_lossy(&output.stderr).into_owned();

    let output = bin(repo.path())
        .args(["lint", "no-such-dir"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let no_dir = String::from_utf8_lossy(&output.stderr);
    snapshot!("bad_input", format!("{unknown_profile}---\n{no_dir}"));
}

#[test]
fn an_env_lint_knows_its_cluster_config_and_flux_version() {
    let repo = fixture();
    let mut config = lint_config("main", "v2.2.0");
    let greeting = serde_json::json!({"greeting": "hello"});
    let dev = config.envs.get_mut("dev").unwrap();
    dev.variables.insert("cluster_config".to_owned(), greeting);
    config
        .write(&repo.path().join("gitops-bootstrap.toml"))
        .unwrap();
    let output = bin(repo.path())
        .args(["lint", "--env", "dev"])
        .output()
        .unwrap();
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    // greeting comes from the env's cluster_config (no unresolved-variable); Flux 2.2 still
    // serves v1beta1 (deprecated), and has no HelmRelease v2 yet (2.3 brought it).
    snapshot!("env_flux_2_2_text", text);
}

/// create-env runs the env's lint in preflight: an error in what the env applies stops it
/// before Terraform runs; findings elsewhere (another profile, a template outside the profiles)
/// are reported, not blocking; `--skip-lint` goes on and says so; a rerun on an unchanged tree
/// reuses the last clean lint instead of building again.
#[tokio::test(flavor = "multi_thread")]
async fn create_env_stops_before_terraform_on_a_lint_error_unless_skipped() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  token: plain\n";
    // Outside every build of the env, so Flux would not apply it there: reported only.
    sandbox.commit_file(
        "profiles/other/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - token.yaml\n",
        "test: another profile",
    );
    sandbox.commit_file(
        "profiles/other/token.yaml",
        secret,
        "test: a plaintext Secret elsewhere",
    );
    sandbox.commit_file(
        "terraform/values.yaml.tftpl.yaml",
        "hosts:\n%{ for host in hosts ~}\n  - ${host}\n%{ endfor ~}\n",
        "test: a Terraform template",
    );
    // In the env's profile: this one blocks (with a namespace, so that Flux can apply it
    // once --skip-lint lets it through).
    let standard = include_str!("../../profiles/standard/kustomization.yaml");
    sandbox.commit_file(
        "profiles/standard/kustomization.yaml",
        &format!("{standard}resources:\n  - token.yaml\n"),
        "test: the profile applies a Secret",
    );
    sandbox.commit_file(
        "profiles/standard/token.yaml",
        &secret.replace(
            "  name: token\n",
            "  name: token\n  namespace: flux-system\n",
        ),
        "test: a plaintext Secret",
    );

    let run = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(run.code, 2, "{}", run.output());
    // The template is not linted: no line names it.
    snapshot!("create_env_lint_error", preflight_lint(&run.stderr));
    let state = sandbox.path(&format!(
        ".gitops-bootstrap/{ENV}/terraform/terraform.tfstate"
    ));
    assert!(!state.exists(), "Terraform did not run");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path(&format!(".gitops-bootstrap/{ENV}/run.json")))
            .unwrap(),
    )
    .unwrap();
    let steps: Vec<&str> = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["preflight"], "{record}");

    let run = sandbox
        .run(&["create-env", ENV, "--yes", "--skip-lint"])
        .await;
    assert_eq!(run.code, 0, "{}", run.output());
    let skipped = lint_lines(&run.stderr);

    // Fixed in Git (the profile no longer applies token.yaml: reported, not blocking): linted
    // once, then remembered while the tree stays the same.
    sandbox.commit_file(
        "profiles/standard/kustomization.yaml",
        standard,
        "test: fixed",
    );
    let first = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(first.code, 0, "{}", first.output());
    let again = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(again.code, 0, "{}", again.output());
    snapshot!(
        "create_env_lint_skipped_then_remembered",
        [
            skipped,
            lint_lines(&first.stderr),
            lint_lines(&again.stderr)
        ]
        .join("\n---\n"),
        extra = crate::cli::MACHINE
    );
}

/// The lines of a create-env's progress that speak of the lint.
fn lint_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("lint"))
        .collect();
    lines.join("\n")
}

/// What create-env's preflight said of the lint on stderr: each finding it reported (a
/// warning) or stopped on (the error), each with its fix, and the hint.
fn preflight_lint(stderr: &str) -> String {
    let mut said = Vec::new();
    let mut inside = false;
    for line in stderr.lines() {
        let start = match (line.split_once("warning: "), line.split_once("error: ")) {
            (Some((_, rest)), _) if rest.starts_with("lint") => Some(format!("warning: {rest}")),
            (_, Some((_, rest))) if rest.contains("does not lint") => Some(rest.to_owned()),
            _ => None,
        };
        match start {
            Some(text) => {
                inside = true;
                said.push(text);
            }
            // A finding's fix, the error's other findings, its hint.
            None if inside && line.starts_with("  ") => said.push(line.to_owned()),
            None => inside = false,
        }
    }
    said.join("\n")
}

/// A user's `clusters/<env>/` that applies the env's profile again, or declares an object with
/// one of the tool's names, stops create-env before Terraform with what to change.
#[tokio::test(flavor = "multi_thread")]
async fn create_env_stops_on_a_profile_applied_twice_and_the_tools_names() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    sandbox.commit_file(
        &format!("clusters/{ENV}/platform/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../../profiles/standard\n  - settings.yaml\n",
        "test: the user's platform includes the profile",
    );
    sandbox.commit_file(
        &format!("clusters/{ENV}/platform/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-config\n  namespace: flux-system\ndata:\n  region: eu\n",
        "test: a ConfigMap named like the tool's",
    );
    let run = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(run.code, 2, "{}", run.output());
    snapshot!(
        "create_env_profile_applied_twice",
        preflight_lint(&run.stderr)
    );
    assert!(
        !sandbox
            .path(&format!(
                ".gitops-bootstrap/{ENV}/terraform/terraform.tfstate"
            ))
            .exists(),
        "Terraform did not run"
    );
}
