//! `lint` and `lint --fix` on a repository laid out as real fleets are (tests/it/fixtures/
//! lint-fleet): clusters on two Flux versions, block scalars, a `v1beta1` Kustomization with
//! fields `v1` lacks, a Terraform template, a non-UTF-8 file, symlinks, a placeholder-only
//! Secret, a user kustomization re-including the profile; `--profile` finding profiles where
//! the config says; the rewritten files dry-run against the test cluster's Flux CRDs.

use std::path::{Path, PathBuf};

use crate::lint::lint_config;
use crate::support::{bin, copy_dir, snapshot, stdout};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the fixture with a config (env `dev`: Flux v2.8.0, profile `web`), a non-UTF-8
/// file and two symlinks (one to a file of the repository, one leaving it).
fn fleet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_dir(&manifest_dir().join("tests/it/fixtures/lint-fleet"), root);
    lint_config("web", "v2.8.0")
        .write(&root.join("gitops-bootstrap.toml"))
        .unwrap();
    std::fs::write(
        root.join("profiles/web/latin1.yaml"),
        b"# caf\xe9\nkind: ConfigMap\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../../platform/web/namespace.yaml",
        root.join("profiles/web/linked.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/nonexistent/elsewhere.yaml",
        root.join("profiles/web/outside.yaml"),
    )
    .unwrap();
    dir
}

/// Every file of the fixture, relative, with its bytes.
fn contents(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let relative = entry.path().strip_prefix(root).unwrap();
            (
                relative.to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn fixture_file(path: &str) -> String {
    std::fs::read_to_string(
        manifest_dir()
            .join("tests/it/fixtures/lint-fleet")
            .join(path),
    )
    .unwrap()
}

#[test]
fn an_env_lint_reports_what_the_fleet_gets_wrong_and_nothing_else() {
    let repo = fleet();
    let output = bin(repo.path())
        .args(["lint", "--env", "dev"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    snapshot!("fleet_env_text", stdout(&output));
}

#[test]
fn profile_honours_the_configs_profiles_dir() {
    let repo = tempfile::tempdir().unwrap();
    copy_dir(
        &manifest_dir().join("tests/fixtures/fleet"),
        &repo.path().join("fleet"),
    );
    let mut config = lint_config("home", "v2.8.0");
    let repository = config.repository.as_mut().unwrap();
    repository.path = Some("fleet".to_owned());
    repository.profiles_dir = Some("clusters/_profiles".to_owned());
    config
        .write(&repo.path().join("gitops-bootstrap.toml"))
        .unwrap();
    // Found where the config keeps it (no `profile home not found`, exit 2).
    let output = bin(repo.path())
        .args(["lint", "--profile", "home"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    snapshot!("fleet_config_profiles_dir", stdout(&output));

    // Without the config, the flag says where.
    std::fs::remove_file(repo.path().join("gitops-bootstrap.toml")).unwrap();
    let output = bin(repo.path())
        .args([
            "lint",
            "--profile",
            "_base",
            "--profiles-dir",
            "fleet/clusters/_profiles",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    snapshot!("fleet_profiles_dir_flag", stdout(&output));
}

#[test]
fn fix_rewrites_only_what_every_cluster_applying_a_file_serves() {
    let repo = fleet();
    let before = contents(repo.path());
    let output = bin(repo.path())
        .args(["lint", "--fix", "--env", "dev"])
        .output()
        .unwrap();
    snapshot!("fleet_fix_text", stdout(&output));

    // The v1beta1 Kustomization: v1, `validation` gone, the strategic-merge patch in `patches`.
    snapshot!(
        "fleet_fixed_apps",
        std::fs::read_to_string(repo.path().join("profiles/web/apps.yaml")).unwrap()
    );
    // The HelmRelease: its real apiVersion line, not the one in the block scalar.
    let release = std::fs::read_to_string(repo.path().join("platform/web/release.yaml")).unwrap();
    assert_eq!(
        release,
        fixture_file("platform/web/release.yaml").replace(
            "\napiVersion: helm.toolkit.fluxcd.io/v2beta2\n",
            "\napiVersion: helm.toolkit.fluxcd.io/v2\n"
        )
    );
    // Nothing else changed: not the HelmRepository clusters/old (Flux 2.1) applies too.
    let after = contents(repo.path());
    let changed: Vec<&str> = after
        .iter()
        .zip(&before)
        .filter(|(new, old)| new != old)
        .map(|(new, _)| new.0.as_str())
        .collect();
    assert_eq!(
        changed,
        ["platform/web/release.yaml", "profiles/web/apps.yaml"]
    );

    // A second run has nothing left to rewrite.
    let again = bin(repo.path())
        .args(["lint", "--fix", "--env", "dev"])
        .output()
        .unwrap();
    assert_eq!(contents(repo.path()), after);
    snapshot!("fleet_fix_again_text", stdout(&again));
}

#[test]
fn fix_writes_nothing_when_the_run_fails() {
    let repo = fleet();
    let before = contents(repo.path());
    let output = bin(repo.path())
        .args(["lint", "--fix", "--profile", "nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        contents(repo.path()),
        before,
        "an unknown profile rewrites nothing"
    );

    // One file that cannot be written: none is.
    let locked = repo.path().join("platform/web/release.yaml");
    make_unwritable(&locked);
    let output = bin(repo.path())
        .args(["lint", "--fix", "--env", "dev"])
        .output()
        .unwrap();
    make_writable(&locked);
    assert_eq!(output.status.code(), Some(1));
    snapshot!(
        "fleet_fix_unwritable",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(contents(repo.path()), before);
}

/// Read-only for everyone; `chattr +i` too where permissions do not stop the user (root).
fn make_unwritable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
    if std::fs::OpenOptions::new().write(true).open(path).is_ok() {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .expect("chattr, to make a file unwritable for root");
        assert!(status.success());
    }
    assert!(std::fs::OpenOptions::new().write(true).open(path).is_err());
}

fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(path)
        .status();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// What `--fix` wrote passes the Flux CRDs under Strict server-side dry-run; the same
/// Kustomization with only its apiVersion line changed (the old `--fix`) is refused for the
/// fields v1 lacks.
#[tokio::test]
async fn fixed_files_pass_a_strict_server_side_dry_run() {
    use crate::flux_schemas::{Scratch, dry_run_apply, install_missing_crds, remove_crds};

    let repo = fleet();
    let output = bin(repo.path())
        .args(["lint", "--fix", "--env", "dev"])
        .output()
        .unwrap();
    assert!(stdout(&output).starts_with("fixed "), "{}", stdout(&output));

    let cluster = testkit::cluster::TestCluster::start()
        .await
        .expect("a test cluster");
    let client = cluster.client();
    let installed = install_missing_crds(&client).await;
    let scratch = Scratch::create(&client).await;
    let mut applied = Vec::new();
    for file in ["profiles/web/apps.yaml", "platform/web/release.yaml"] {
        let text = std::fs::read_to_string(repo.path().join(file)).unwrap();
        for doc in crate::profiles::documents(&text) {
            let object = serde_json::to_value(doc).unwrap();
            let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
            if let Err(status) = dry_run_apply(&client, &scratch.name, object).await {
                panic!("{what} of {file} refused: {}", status.message);
            }
            applied.push(what);
        }
    }
    assert_eq!(
        applied,
        [
            "\"Kustomization\" \"shared\"",
            "\"Kustomization\" \"web\"",
            "\"HelmRelease\" \"web\""
        ]
    );
    let mut naive = serde_json::to_value(
        crate::profiles::documents(&fixture_file("profiles/web/apps.yaml")).remove(0),
    )
    .unwrap();
    naive["apiVersion"] = "kustomize.toolkit.fluxcd.io/v1".into();
    let refused = dry_run_apply(&client, &scratch.name, naive).await;
    scratch.remove().await;
    remove_crds(&client, installed).await;
    let status = refused.expect_err("v1 has no patchesStrategicMerge nor validation");
    snapshot!("fleet_naive_v1_refused", status.message);
}
