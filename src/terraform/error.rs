//! Errors of the Terraform adapter. Each variant names the failed operation; none carries a
//! variable value, an output value or raw JSON from Terraform.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Diagnose, ExitStatus};

use super::events::Diagnostic;

const INSTALL_HINT: &str = "install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install) \
     or OpenTofu (https://opentofu.org/docs/intro/install/), or give its path with --terraform";

#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    #[error("no terraform or tofu command found on PATH")]
    NotFound,

    #[error("the Terraform command {path} does not exist or is not executable")]
    NotExecutable { path: PathBuf },

    #[error("{path} is version {version}; gitops-bootstrap needs {minimum} or newer")]
    TooOld {
        path: PathBuf,
        version: String,
        minimum: String,
    },

    #[error("failed to read the version of {path}: {reason}")]
    VersionUnreadable { path: PathBuf, reason: String },

    #[error("failed to read Terraform module {path}: {source}")]
    ReadModule {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path} holds no *.tf files: it is not a Terraform module")]
    EmptyModule { path: PathBuf },

    #[error("failed to parse {path}: {message}")]
    ParseHcl { path: PathBuf, message: String },

    #[error(
        "module {module} declares a `backend \"{kind}\"` block, which Terraform ignores in a \
         module called by the env's generated root"
    )]
    BackendInModule { module: PathBuf, kind: String },

    #[error("failed to read var file {path}: {source}")]
    ReadVarFile {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("module {module} has no variable {names:?}, which the config sets")]
    UnknownVariables { module: PathBuf, names: Vec<String> },

    #[error("module {module} needs variable {names:?}, which the config does not set")]
    MissingVariables { module: PathBuf, names: Vec<String> },

    #[error("variable {name} is set both as a secret and as a plain value")]
    VariableSetTwice { name: String },

    #[error("failed to write the Terraform root module in {path}: {source}")]
    WriteRoot {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("failed to start terraform {command}: {source}")]
    Spawn {
        command: &'static str,
        source: std::io::Error,
    },

    #[error("failed while running terraform {command}: {source}")]
    Io {
        command: &'static str,
        source: std::io::Error,
    },

    #[error("terraform {command} failed in {dir}: {}", join_diagnostics(.errors))]
    Failed {
        command: &'static str,
        dir: PathBuf,
        errors: Vec<Diagnostic>,
    },

    #[error("terraform {command} failed in {}: the state is locked by {lock}", dir.display())]
    StateLocked {
        command: &'static str,
        dir: PathBuf,
        lock: Box<StateLock>,
    },

    #[error("terraform {command} was interrupted{}", if *.forced { " and killed after the grace period" } else { "" })]
    Interrupted { command: &'static str, forced: bool },

    #[error(
        "terraform {command} printed nothing for {} and was stopped{}",
        crate::report::duration(*idle),
        if *.forced { " (killed after the grace period)" } else { "" }
    )]
    Silent {
        command: &'static str,
        idle: Duration,
        forced: bool,
    },

    #[error("failed to parse the output of terraform {command}: {reason}")]
    ParseOutput {
        command: &'static str,
        reason: String,
    },

    #[error("failed to read Terraform state {path}: {reason}")]
    ReadState { path: PathBuf, reason: String },

    /// Never the text itself: it holds the sensitive outputs in clear.
    #[error("failed to read `terraform output -json`: {reason}")]
    MalformedOutputs { reason: String },
}

/// Who holds a Terraform state lock, from the `Lock Info:` of Terraform's error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateLock {
    pub id: String,
    pub who: String,
    pub operation: String,
    pub created: String,
}

impl StateLock {
    /// The lock named by Terraform's "Error acquiring the state lock" diagnostic.
    pub(crate) fn from_diagnostic(diagnostic: &Diagnostic) -> Option<StateLock> {
        if !diagnostic
            .summary
            .to_lowercase()
            .contains("error acquiring the state lock")
        {
            return None;
        }
        let mut lock = StateLock::default();
        for line in diagnostic.detail.lines() {
            let Some((key, value)) = line.trim().split_once(':') else {
                continue;
            };
            let value = value.trim().to_owned();
            match key.trim() {
                "ID" => lock.id = value,
                "Who" => lock.who = value,
                "Operation" => lock.operation = value.trim_start_matches("OperationType").into(),
                "Created" => lock.created = value,
                _ => {}
            }
        }
        Some(lock)
    }
}

impl std::fmt::Display for StateLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.who.is_empty() {
            "another Terraform run"
        } else {
            &self.who
        };
        write!(f, "{who}")?;
        if !self.operation.is_empty() {
            write!(f, " ({}", self.operation.to_lowercase())?;
            if !self.created.is_empty() {
                write!(f, " since {}", self.created)?;
            }
            write!(f, ")")?;
        }
        if !self.id.is_empty() {
            write!(f, ", lock ID {}", self.id)?;
        }
        Ok(())
    }
}

fn join_diagnostics(errors: &[Diagnostic]) -> String {
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    rendered.join("; ")
}

impl Diagnose for TerraformError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            TerraformError::NotFound
            | TerraformError::NotExecutable { .. }
            | TerraformError::TooOld { .. }
            | TerraformError::EmptyModule { .. }
            | TerraformError::ParseHcl { .. }
            | TerraformError::BackendInModule { .. }
            | TerraformError::ReadVarFile { .. }
            | TerraformError::UnknownVariables { .. }
            | TerraformError::MissingVariables { .. }
            | TerraformError::VariableSetTwice { .. }
            | TerraformError::MalformedOutputs { .. } => ExitStatus::BadInput,
            TerraformError::Interrupted { .. } => ExitStatus::Interrupted,
            TerraformError::Silent { .. } => ExitStatus::TimedOut,
            _ => ExitStatus::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            TerraformError::NotFound
            | TerraformError::NotExecutable { .. }
            | TerraformError::TooOld { .. } => Some(INSTALL_HINT.to_owned()),
            TerraformError::Silent { .. } => Some(
                "Terraform reports progress every 10 s while it works, so it was stuck (a provider \
                 or a provisioner waiting on something): check what the module calls, then rerun; \
                 --terraform-idle-timeout sets the bound"
                    .to_owned(),
            ),
            TerraformError::Interrupted { forced: true, .. } => Some(
                "Terraform may have left its state locked: if the next run says so, \
                 run `terraform force-unlock <LOCK_ID>` in the environment's terraform directory"
                    .to_owned(),
            ),
            TerraformError::Interrupted { forced: false, .. } => Some(
                "Terraform stopped cleanly and saved its state: rerun the same command to \
                 carry on from there"
                    .to_owned(),
            ),
            TerraformError::StateLocked { dir, lock, .. } => Some(format!(
                "wait for that run to finish and rerun; if it is gone (killed, or its machine \
                 lost), release the lock with `terraform force-unlock {}` in {}",
                if lock.id.is_empty() {
                    "<LOCK_ID>"
                } else {
                    &lock.id
                },
                dir.display()
            )),
            TerraformError::BackendInModule { .. } => Some(
                "it is a root with its own state: write `root = \"<dir>\"` instead of `module =` \
                 in the env's config to run it in place with that backend, or remove the block \
                 and set [envs.<env>.backend]"
                    .to_owned(),
            ),
            TerraformError::MalformedOutputs { .. } => Some(
                "run `terraform output -json` in the env's Terraform directory to see what it \
                 prints"
                    .to_owned(),
            ),
            TerraformError::UnknownVariables { .. } | TerraformError::MissingVariables { .. } => {
                Some(
                    "compare the config's terraform variables with the module's variables"
                        .to_owned(),
                )
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terraform::events::Severity;

    #[test]
    fn failures_show_diagnostics_and_statuses_match_the_cause() {
        let err = TerraformError::Failed {
            command: "apply",
            dir: "/state/dev/terraform".into(),
            errors: vec![
                Diagnostic {
                    severity: Severity::Error,
                    summary: "Invalid value".into(),
                    detail: "must be a DNS label".into(),
                    address: None,
                },
                Diagnostic {
                    severity: Severity::Error,
                    summary: "execution halted".into(),
                    detail: String::new(),
                    address: None,
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "terraform apply failed in /state/dev/terraform: Invalid value: must be a DNS label; execution halted"
        );
        assert_eq!(err.exit_status(), ExitStatus::Failure);

        let interrupted = TerraformError::Interrupted {
            command: "apply",
            forced: false,
        };
        assert_eq!(interrupted.exit_status().code(), 130);
        assert!(
            interrupted
                .hint()
                .unwrap()
                .contains("rerun the same command")
        );
        let killed = TerraformError::Interrupted {
            command: "apply",
            forced: true,
        };
        assert!(killed.hint().unwrap().contains("force-unlock"));

        let locked = Diagnostic {
            severity: Severity::Error,
            summary: "Error acquiring the state lock".into(),
            detail: "Error message: resource temporarily unavailable\nLock Info:\n  ID:        \
                     5e1f-77\n  Path:      terraform.tfstate\n  Operation: OperationTypeApply\n  \
                     Who:       ci@runner-3\n  Version:   1.11.0\n  Created:   2026-11-30 \
                     03:00:00 UTC\n  Info:\n\nTerraform acquires a state lock..."
                .into(),
            address: None,
        };
        let lock = StateLock::from_diagnostic(&locked).unwrap();
        let err = TerraformError::StateLocked {
            command: "plan",
            dir: "/state/dev/terraform".into(),
            lock: Box::new(lock),
        };
        assert_eq!(
            err.to_string(),
            "terraform plan failed in /state/dev/terraform: the state is locked by ci@runner-3 \
             (apply since 2026-11-30 03:00:00 UTC), lock ID 5e1f-77"
        );
        assert!(
            err.hint()
                .unwrap()
                .contains("`terraform force-unlock 5e1f-77` in /state/dev/terraform")
        );

        let missing = crate::Error::from(TerraformError::NotFound);
        assert_eq!(missing.status(), ExitStatus::BadInput);
        assert!(missing.hint().unwrap().contains("install Terraform"));
    }
}
