//! The content `init` writes: a starter GitOps repository, shipped inside the binary. The
//! profiles and the `existing` module are the very ones in this repository, embedded at build
//! time (build.rs reruns the build when they change).

use std::path::PathBuf;

use include_dir::{Dir, DirEntry, include_dir};

static SCAFFOLD: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/scaffold");
static PROFILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/profiles");
static EXISTING_MODULE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/terraform/existing");

/// Every file of the starter repository: its path inside the repository and its bytes,
/// sorted by path.
pub fn files() -> Vec<(PathBuf, &'static [u8])> {
    let mut files = Vec::new();
    for (prefix, dir) in [
        ("", &SCAFFOLD),
        ("profiles", &PROFILES),
        ("terraform/existing", &EXISTING_MODULE),
    ] {
        collect(dir, &PathBuf::from(prefix), &mut files);
    }
    files.sort();
    files
}

fn collect(
    dir: &'static Dir<'static>,
    prefix: &PathBuf,
    files: &mut Vec<(PathBuf, &'static [u8])>,
) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(sub) => collect(sub, prefix, files),
            // Entry paths are relative to the embedded root.
            DirEntry::File(file) => files.push((prefix.join(file.path()), file.contents())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_repository_has_its_parts() {
        let paths: Vec<String> = files()
            .iter()
            .map(|(path, _)| path.to_string_lossy().into_owned())
            .collect();
        for expected in [
            ".github/workflows/gitops-bootstrap.yml",
            ".gitlab-ci.yml",
            ".sops.yaml",
            "README.md",
            "gitops-bootstrap.toml",
            "profiles/minimal/kustomization.yaml",
            "profiles/apps/cert-manager/release.yaml",
            "terraform/existing/outputs.tf",
        ] {
            assert!(
                paths.contains(&expected.to_owned()),
                "{expected} in {paths:?}"
            );
        }
    }
}
