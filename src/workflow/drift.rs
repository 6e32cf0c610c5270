//! `status <env> --drift`: what differs between the running env and its sources of truth —
//! three steps, changing nothing: terraform-drift (Terraform's resources against the state,
//! `plan -refresh-only`), branch-tip, and flux-drift (Flux against the branch tip, the live
//! objects against what Flux applied).

use std::path::Path;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use super::phases::terraform_drift::TerraformDrift;
use super::phases::{branch_tip, flux_drift, terraform_drift};
use super::run_step;
use crate::cluster::drift::FluxDrift;
use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::report::Reporter;

/// Everything `status --drift` found.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub env: String,
    pub drifted: bool,
    pub terraform: TerraformDrift,
    /// The commit the env's branch points at.
    pub branch_tip: String,
    pub flux: FluxDrift,
}

pub async fn run(
    reporter: &dyn Reporter,
    config: &Config,
    env: &EnvConfig,
    terraform_binary: Option<&Path>,
    cancel: &CancellationToken,
) -> Result<Drift> {
    let refreshing = terraform_drift::run(config, env, terraform_binary, cancel);
    let (tf, root, terraform) = run_step(reporter, "terraform-drift", refreshing).await.1?;
    let tip = run_step(reporter, "branch-tip", branch_tip::run(env))
        .await
        .1?;
    let comparing = flux_drift::run(&tf, &root, env, &tip, cancel);
    let flux = run_step(reporter, "flux-drift", comparing).await.1?;
    Ok(Drift {
        env: env.name.clone(),
        drifted: !terraform.is_clean() || !flux.is_clean(),
        terraform,
        branch_tip: tip,
        flux,
    })
}
