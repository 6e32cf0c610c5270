//! terraform-drift (status --drift): a `-refresh-only` plan of the env's root, whose
//! `resource_drift` lists what changed outside Terraform. Refuses an env never created.

use std::path::Path;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::terraform::{EnvRoot, PlanMode, Terraform};
use crate::workflow::Outcome;
use crate::workflow::status::reach_env;

/// Terraform's part: resources changed outside Terraform, and outputs that would change.
#[derive(Debug, Clone, Serialize)]
pub struct TerraformDrift {
    pub drifted: Vec<String>,
    pub outputs_change: bool,
}

impl TerraformDrift {
    pub fn is_clean(&self) -> bool {
        self.drifted.is_empty() && !self.outputs_change
    }
}

/// The drift, and the Terraform and root the cluster's comparison reads outputs with.
pub async fn run(
    config: &Config,
    env: &EnvConfig,
    terraform_binary: Option<&Path>,
    cancel: &CancellationToken,
) -> Result<(Outcome, (Terraform, EnvRoot, TerraformDrift))> {
    let (tf, root, found) = reach_env(config, env, terraform_binary, cancel).await?;
    // The same refusal status gives an env never created.
    found.created(&env.name)?;
    let summary = tf
        .plan(&root, PlanMode::RefreshOnly, cancel)
        .await?
        .summary()
        .clone();
    let drift = TerraformDrift {
        drifted: summary.drifted,
        outputs_change: summary.outputs_change,
    };
    let outcome = if drift.is_clean() {
        Outcome::UpToDate("no drift".to_owned())
    } else {
        Outcome::Done(format!(
            "{} resources changed outside Terraform{}",
            drift.drifted.len(),
            if drift.outputs_change {
                ", outputs differ"
            } else {
                ""
            }
        ))
    };
    Ok((outcome, (tf, root, drift)))
}
