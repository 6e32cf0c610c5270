//! What stops a lint before it can report findings: bad input, a missing kustomize.

use std::path::PathBuf;

use crate::error::{Diagnose, ExitStatus};

#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("cannot lint {}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("cannot write {}: {message}", path.display())]
    Write {
        path: PathBuf,
        message: String,
        /// Files already rewritten before this one failed.
        written: Vec<String>,
    },
    #[error("profile {name} not found in {}", dir.display())]
    UnknownProfile {
        name: String,
        dir: PathBuf,
        known: Vec<String>,
    },
    #[error("no profile to lint: {} holds no profile directory", dir.display())]
    NoProfiles { dir: PathBuf },
    #[error("cannot build with kustomize: `kubectl` was not found on PATH")]
    KustomizeMissing,
}

impl Diagnose for LintError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            LintError::Write { .. } => ExitStatus::Failure,
            _ => ExitStatus::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            LintError::NotADirectory { .. } | LintError::NoProfiles { .. } => Some(
                "give the GitOps repository's directory (holding profiles/) as PATH".to_owned(),
            ),
            LintError::UnknownProfile { known, .. } => Some(if known.is_empty() {
                "create profiles/<profile>/kustomization.yaml (see `gitops-bootstrap init`)"
                    .to_owned()
            } else {
                format!("known profiles: {}", known.join(", "))
            }),
            LintError::KustomizeMissing => Some(
                "install kubectl (it bundles kustomize) or set GITOPS_BOOTSTRAP_KUBECTL to it"
                    .to_owned(),
            ),
            LintError::Write { written, .. } if !written.is_empty() => Some(format!(
                "already rewritten: {}; make the file writable and rerun `lint --fix`",
                written.join(", ")
            )),
            LintError::Write { .. } => {
                Some("make the file writable and rerun `lint --fix`".to_owned())
            }
            LintError::Read { .. } => None,
        }
    }
}
