//! summary: what create-env made and what the operator must do with it (back up the age key,
//! register the deploy key), as notices and as the command's result.

use std::path::PathBuf;

use serde::Serialize;

use crate::cluster::Snapshot;
use crate::error::Result;
use crate::report::Reporter;
use crate::workflow::Outcome;

/// The `result` of create-env.
#[derive(Debug, Clone, Serialize)]
pub struct CreateEnvResult {
    pub env: String,
    pub profile: String,
    pub cluster_name: String,
    pub repository: String,
    pub branch: String,
    pub commit: String,
    pub flux_version: String,
    pub age_recipient: String,
    pub age_key_file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_key: Option<String>,
    pub apps: Snapshot,
}

/// Tells the operator what to keep and what to register; the result itself is the command's.
pub async fn run(reporter: &dyn Reporter, result: &CreateEnvResult) -> Result<(Outcome, ())> {
    reporter.notice(format!(
        "the age key of env {} is {} — back it up: rebuilding the env needs it to decrypt its secrets",
        result.env,
        result.age_key_file.display()
    ));
    if let Some(key) = &result.deploy_key {
        reporter.notice(format!(
            "register this read-only deploy key for Flux on {}: {key}",
            result.repository
        ));
    }
    let summary = format!(
        "env {} runs profile {} ({}/{} Flux objects Ready)",
        result.env, result.profile, result.apps.ready, result.apps.total
    );
    Ok((Outcome::Done(summary), ()))
}

impl CreateEnvResult {
    /// The result for people: what runs where, and how to reach it.
    pub fn text(&self) -> String {
        let mut text = format!(
            "env {} is ready: cluster {}, profile {}, {}/{} Flux objects Ready\n",
            self.env, self.cluster_name, self.profile, self.apps.ready, self.apps.total
        );
        text.push_str(&format!(
            "  GitOps: {} ({} @ {})\n  Flux: {}\n  age recipient: {} (key: {})\n",
            self.repository,
            self.branch,
            self.commit.get(..7).unwrap_or(&self.commit),
            self.flux_version,
            self.age_recipient,
            self.age_key_file.display()
        ));
        text.push_str(&format!(
            "  next: `gitops-bootstrap status {}`; kubectl access comes from the env's Terraform output (`terraform output -raw kubeconfig` in its state directory)",
            self.env
        ));
        text
    }
}
