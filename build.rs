//! Records which source the binary was built from, for `--version` and the run record:
//! `GITOPS_BOOTSTRAP_GIT_COMMIT` (full sha, or empty when unknown) and
//! `GITOPS_BOOTSTRAP_GIT_DIRTY` (`true`/`false`). It asks the local `git` only (no network);
//! a source tree without `.git` (a crates.io package) falls back to the
//! `.cargo_vcs_info.json` cargo writes when packaging, and then to "unknown".
//! It also says when the binary must be rebuilt: `init` embeds directories with include_dir,
//! and cargo does not see a proc macro read them.

use std::path::Path;
use std::process::Command;

/// What is compiled or embedded into the binary: "dirty" means one of these differs from the
/// commit, and an edit to one of them rebuilds it. (The tests and docs are not in it.)
const COMPILED: [&str; 8] = [
    "src",
    "bootstrap",
    "scaffold",
    "profiles",
    "terraform/existing",
    "build.rs",
    "Cargo.toml",
    "Cargo.lock",
];

fn main() {
    for path in COMPILED {
        println!("cargo::rerun-if-changed={path}");
    }
    let (commit, dirty) = from_git().or_else(from_cargo_vcs_info).unwrap_or_default();
    println!("cargo::rustc-env=GITOPS_BOOTSTRAP_GIT_COMMIT={commit}");
    println!("cargo::rustc-env=GITOPS_BOOTSTRAP_GIT_DIRTY={dirty}");
    // The suite checks `--version` against `git status` of exactly these paths.
    println!(
        "cargo::rustc-env=GITOPS_BOOTSTRAP_COMPILED={}",
        COMPILED.join(" ")
    );
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        // A build only reads: `git status` must not rewrite the index under the user's feet.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn from_git() -> Option<(String, bool)> {
    // Only this package's own repository counts, not one that happens to enclose it.
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let here = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    if Path::new(&top).canonicalize().ok()? != Path::new(&here).canonicalize().ok()? {
        return None;
    }
    let commit = git(&["rev-parse", "HEAD"])?;
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(COMPILED);
    let dirty = !git(&status)?.is_empty();
    // A new commit moves HEAD or the branch it names (worktrees keep these outside `.git/`).
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        // A watched path that does not exist would make every build rerun this script.
        let path = git(&["rev-parse", "--git-path", &name]).map(|path| Path::new(&top).join(path));
        if let Some(path) = path.filter(|path| path.exists()) {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }
    Some((commit, dirty))
}

/// `cargo package` writes `{"git": {"sha1": "…", "dirty": true}, …}` into the package.
fn from_cargo_vcs_info() -> Option<(String, bool)> {
    let text = std::fs::read_to_string(".cargo_vcs_info.json").ok()?;
    let info: serde_json::Value = serde_json::from_str(&text).ok()?;
    let sha1 = info.pointer("/git/sha1")?.as_str()?.to_owned();
    let dirty = info
        .pointer("/git/dirty")
        .and_then(serde_json::Value::as_bool);
    Some((sha1, dirty.unwrap_or(false)))
}
