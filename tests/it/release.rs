//! How the tool reaches its users: `cargo install` from the repository, `--version` naming
//! the commit, the man pages, and the cargo-dist release plan. Runs cargo, git and `dist`.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

use crate::support::snapshot;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn run(command: &mut Command) -> String {
    let output = command.output().expect("start the command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn git(args: &[&str]) -> String {
    run(Command::new("git").current_dir(MANIFEST_DIR).args(args))
        .trim()
        .to_owned()
}

/// The target dir holding the suite's binaries (`<target>/debug/gitops-bootstrap`), so a
/// nested cargo reuses what the suite built, whatever `CARGO_TARGET_DIR` says.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_gitops-bootstrap"))
        .ancestors()
        .nth(2)
        .expect("<target>/debug/gitops-bootstrap")
        .to_owned()
}

/// What `--version` must say about this checkout: the commit, and "dirty" exactly when
/// something compiled into the binary differs from it (build.rs's own rule).
fn expected_version() -> String {
    let commit = git(&["rev-parse", "HEAD"]);
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(env!("GITOPS_BOOTSTRAP_COMPILED").split(' '));
    let dirty = if git(&status).is_empty() {
        ""
    } else {
        ", dirty"
    };
    format!(
        "gitops-bootstrap {} (commit {commit}{dirty})\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[test]
fn cargo_install_from_the_repository_yields_a_binary_naming_its_commit() {
    let root = tempfile::tempdir().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // --debug reuses the suite's build (a release build would take minutes on 2 cores);
    // --offline proves the install needs nothing from the network.
    run(Command::new(cargo)
        .current_dir(MANIFEST_DIR)
        .env("CARGO_TARGET_DIR", target_dir())
        .args([
            "install",
            "--quiet",
            "--locked",
            "--offline",
            "--debug",
            "--path",
            ".",
        ])
        .arg("--root")
        .arg(root.path()));
    let installed = root.path().join("bin/gitops-bootstrap");
    let version = run(Command::new(&installed).arg("--version"));
    assert_eq!(version, expected_version());
}

#[test]
fn man_pages_are_generated_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let man_dir = |output: &str| {
        let stdout = run(Command::cargo_bin("gitops-bootstrap")
            .unwrap()
            .args(["--output", output, "man", "--dir"])
            .arg(&pages));
        stdout.replace(&pages.display().to_string(), "[DIR]")
    };
    snapshot!("man_dir_text", man_dir("text"));
    snapshot!("man_dir_json", man_dir("json"));

    let main_page = std::fs::read_to_string(pages.join("gitops-bootstrap.1")).unwrap();
    let stdout_page = run(Command::cargo_bin("gitops-bootstrap").unwrap().arg("man"));
    assert_eq!(
        stdout_page, main_page,
        "`man` prints the page `man --dir` writes"
    );
    let cli = <gitops_bootstrap::cli::Cli as clap::CommandFactory>::command();
    for command in cli.get_subcommands() {
        let name = format!("gitops-bootstrap-{}", command.get_name());
        assert!(
            main_page.contains(&name.replace('-', "\\-")),
            "{name} missing from gitops-bootstrap.1"
        );
        let page = std::fs::read_to_string(pages.join(format!("{name}.1")))
            .unwrap_or_else(|err| panic!("{name}.1: {err}"));
        assert!(page.contains(".SH SYNOPSIS"), "{name}.1:\n{page}");
    }
}

/// `dist`: the generated release workflow matches dist-workspace.toml, and the plan builds
/// archives with checksums for the four targets, plus the shell installer.
#[test]
fn dist_plans_archives_checksums_and_the_installer_for_every_target() {
    let dist = |args: &[&str]| {
        run(Command::new("dist")
            .current_dir(MANIFEST_DIR)
            .env("CARGO_TARGET_DIR", target_dir())
            .args(args))
    };
    // Fails when .github/workflows/release.yml was edited by hand or not regenerated.
    dist(&["generate", "--check"]);
    let plan = dist(&["plan", "--output-format=json", "--no-local-paths"]);
    let plan: serde_json::Value = serde_json::from_str(&plan).expect("dist plan's JSON");
    let mut artifacts: Vec<String> = plan["artifacts"]
        .as_object()
        .expect("artifacts by name")
        .iter()
        .map(|(name, artifact)| {
            let targets = artifact["target_triples"]
                .as_array()
                .map_or(String::new(), |t| {
                    let t: Vec<&str> = t.iter().filter_map(|t| t.as_str()).collect();
                    format!(" for {}", t.join(", "))
                });
            format!(
                "{name}: {}{targets}",
                artifact["kind"].as_str().unwrap_or("?")
            )
        })
        .collect();
    artifacts.sort();
    snapshot!(
        "dist_plans_archives_checksums_and_the_installer_for_every_target",
        artifacts.join("\n")
    );
}
