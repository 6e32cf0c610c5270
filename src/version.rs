//! Which build this is: the crate version and the commit it was built from, as `build.rs`
//! found them. `--version` prints it and the run record keeps it, so a CI log or a record
//! says exactly which build ran.

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub version: String,
    /// The full commit sha; `None` when built outside a Git checkout and not from a package.
    pub commit: Option<String>,
    /// Tracked files differed from the commit when the binary was built.
    pub dirty: bool,
}

impl BuildInfo {
    /// This binary's.
    pub fn current() -> BuildInfo {
        BuildInfo::new(
            env!("CARGO_PKG_VERSION"),
            env!("GITOPS_BOOTSTRAP_GIT_COMMIT"),
            env!("GITOPS_BOOTSTRAP_GIT_DIRTY"),
        )
    }

    fn new(version: &str, commit: &str, dirty: &str) -> BuildInfo {
        BuildInfo {
            version: version.to_owned(),
            commit: (!commit.is_empty()).then(|| commit.to_owned()),
            dirty: dirty == "true",
        }
    }
}

/// `0.1.0 (commit 3e2e…, dirty)`, what `--version` prints after the program name.
impl fmt::Display for BuildInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let commit = self.commit.as_deref().unwrap_or("unknown");
        let dirty = if self.dirty { ", dirty" } else { "" };
        write!(f, "{} (commit {commit}{dirty})", self.version)
    }
}

/// clap wants the version text for the program's lifetime.
pub static VERSION_TEXT: LazyLock<String> = LazyLock::new(|| BuildInfo::current().to_string());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_text_names_the_commit_and_a_dirty_tree() {
        let sha = "3e2e2b2c1a3f0000000000000000000000000000";
        assert_eq!(
            BuildInfo::new("1.2.3", sha, "false").to_string(),
            format!("1.2.3 (commit {sha})")
        );
        assert_eq!(
            BuildInfo::new("1.2.3", sha, "true").to_string(),
            format!("1.2.3 (commit {sha}, dirty)")
        );
        assert_eq!(
            BuildInfo::new("1.2.3", "", "false").to_string(),
            "1.2.3 (commit unknown)"
        );
    }

    #[test]
    fn this_build_knows_its_version() {
        let build = BuildInfo::current();
        assert_eq!(build.version, env!("CARGO_PKG_VERSION"));
        // The suite runs from a checkout: the commit is known and is a full sha.
        let commit = build.commit.expect("built from a Git checkout");
        assert_eq!(commit.len(), 40, "{commit}");
    }
}
