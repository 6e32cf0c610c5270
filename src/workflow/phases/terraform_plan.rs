//! terraform-plan (plan): the env's root prepared and `terraform plan` run, saving nothing —
//! the plan file is dropped with the summary read from it.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::terraform::{EnvRoot, PlanMode, PlanSummary, Terraform};
use crate::workflow::{Outcome, terraform};

/// Terraform's plan, and the Terraform and root the later sections read outputs with.
pub struct TerraformPlanned {
    pub terraform: Terraform,
    pub root: EnvRoot,
    pub summary: PlanSummary,
}

pub async fn run(
    config: &Config,
    env: &EnvConfig,
    terraform_binary: Option<&Path>,
    cancel: &CancellationToken,
) -> Result<(Outcome, TerraformPlanned)> {
    let (tf, root) = terraform::prepare(config, env, terraform_binary, cancel).await?;
    let summary = tf
        .plan(&root, PlanMode::Apply, cancel)
        .await?
        .summary()
        .clone();
    let outcome = if summary.is_empty() {
        Outcome::UpToDate(summary.describe())
    } else {
        Outcome::Done(summary.describe())
    };
    let planned = TerraformPlanned {
        terraform: tf,
        root,
        summary,
    };
    Ok((outcome, planned))
}
