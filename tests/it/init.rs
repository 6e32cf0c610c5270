//! `init` and `envs` through the real binary: the scaffolded repository lints clean with the
//! real `kubectl kustomize`, a second init changes nothing, init never overwrites without
//! `--force`, a fresh scaffold's env comes up in the sandbox with only the repository's
//! address and the kubeconfig beside its config, init checks every path before writing any (a file in the way, a symlink out of
//! the directory: nothing written, `--force` or not), and `envs` prints the envs as a table and as GitHub / GitLab CI matrices.

use testkit::env_config::{ConfigFile, EnvConfig};

use crate::support::sandbox::Sandbox;
use crate::support::{bin, snapshot, stdout};

#[test]
fn init_then_lint_is_clean_and_a_second_init_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin(dir.path()).args(["init", "repo"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    snapshot!("init_text", stdout(&output));
    let repo = dir.path().join("repo");

    let lint = bin(&repo).arg("lint").output().unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", stdout(&lint));
    // The starter config is valid and its env's profile lints clean as that env runs it.
    let lint = bin(&repo).args(["lint", "--env", "dev"]).output().unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", stdout(&lint));

    let again = bin(dir.path())
        .args(["init", "repo", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    // Nothing written, nothing overwritten, every file unchanged.
    snapshot!("init_again_json", stdout(&again));
}

#[test]
fn init_over_an_existing_repository_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "# ours\n").unwrap();
    let output = bin(dir.path()).arg("init").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    snapshot!("init_over_a_repository", stderr(&output));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "nothing else was written");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "# ours\n"
    );

    let output = bin(dir.path()).args(["init", "--force"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    snapshot!("init_forced_text", stdout(&output));
    assert!(
        dir.path()
            .join("profiles/minimal/kustomization.yaml")
            .is_file()
    );
}

#[test]
fn envs_are_a_table_and_ci_matrices() {
    let dir = tempfile::tempdir().unwrap();
    let init = bin(dir.path()).arg("init").output().unwrap();
    assert_eq!(init.status.code(), Some(0));
    let config = dir.path().join("gitops-bootstrap.toml");
    // Two more envs after the scaffold's own.
    let more = ["staging", "prod"]
        .into_iter()
        .fold(ConfigFile::default(), |more, env| {
            let config = EnvConfig::on_module("terraform/existing", "standard")
                .with_flux_version("v2.4.0")
                .with_variable("cluster_name", env)
                .with_path_variable("kubeconfig_path", format!("{env}.kubeconfig"));
            more.with_env(env, config)
        });
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n{}", more.to_toml())).unwrap();

    let output = bin(dir.path()).arg("envs").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    snapshot!("envs_text", stdout(&output));
    let output = bin(dir.path())
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    snapshot!("envs_json", stdout(&output));
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Issue 20 item 4: a file where init must make a directory stops it before the first write.
#[test]
fn init_over_a_file_in_the_way_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(repo.join("profiles"), "not a directory\n").unwrap();
    for force in [false, true] {
        let mut command = bin(dir.path());
        command.args(["init", "repo"]);
        if force {
            command.arg("--force");
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        snapshot!("init_file_in_the_way", stderr(&output));
        let left: Vec<_> = std::fs::read_dir(&repo).unwrap().collect();
        assert_eq!(left.len(), 1, "nothing else was written");
    }
}

/// Issue 20 item 4: `init --force` never writes through a symlink leading out of the
/// directory, to a file or to a directory.
#[test]
fn init_force_never_follows_a_symlink_out_of_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("module")).unwrap();
    std::fs::write(outside.join("notes.md"), "mine\n").unwrap();
    std::fs::create_dir(&repo).unwrap();
    std::os::unix::fs::symlink(outside.join("notes.md"), repo.join("README.md")).unwrap();
    std::os::unix::fs::symlink(outside.join("module"), repo.join("terraform")).unwrap();
    let output = bin(&repo).args(["init", "--force"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    snapshot!("init_symlink_out", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(outside.join("notes.md")).unwrap(),
        "mine\n"
    );
    assert_eq!(
        std::fs::read_dir(outside.join("module")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(&repo).unwrap().count(),
        2,
        "nothing written"
    );

    // A symlink that stays inside the directory is followed as any path is.
    std::fs::remove_file(repo.join("README.md")).unwrap();
    std::fs::remove_file(repo.join("terraform")).unwrap();
    std::fs::create_dir(repo.join("tf")).unwrap();
    std::os::unix::fs::symlink("tf", repo.join("terraform")).unwrap();
    let output = bin(&repo).args(["init"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(repo.join("tf/existing/main.tf").is_file());
}

/// Issue 20 item 3: the scaffold's env comes up as a new user sets it up: the repository's
/// address in the config (with the sandbox's CA and offline Flux components, relative paths as
/// the user would write them) and the cluster's kubeconfig in `dev.kubeconfig` beside it.
#[tokio::test(flavor = "multi_thread")]
async fn create_env_on_a_fresh_scaffold_comes_up() {
    let sandbox = Sandbox::start().await;
    let init = sandbox.run(&["init"]).await;
    assert_eq!(init.code, 0, "{}", init.output());
    let config = sandbox.path("gitops-bootstrap.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let url = "url = \"https://git.example.com/platform/fleet.git\"";
    let flux = "flux_version = \"v2.4.0\"";
    assert!(text.contains(url) && text.contains(flux), "{text}");
    let text = text
        .replace(
            url,
            &format!("url = \"{}\"\nca_file = \"git-ca.pem\"", sandbox.repo_url()),
        )
        .replace(
            flux,
            &format!("{flux}\nflux_manifests = \"gotk-components.yaml\""),
        );
    std::fs::write(&config, text).unwrap();
    std::fs::copy(
        sandbox.cluster.kubeconfig_path(),
        sandbox.path("dev.kubeconfig"),
    )
    .unwrap();

    let tokens = [
        ("GIT_PUSH_TOKEN", sandbox.push_token.as_str()),
        ("GIT_READ_TOKEN", sandbox.git.read_token()),
    ];
    let created = sandbox
        .run_with_env(&["create-env", "dev", "--yes"], &tokens)
        .await;
    assert_eq!(created.code, 0, "{}", created.output());
    assert!(sandbox.committed("clusters/dev/profile.yaml").is_some());
}
