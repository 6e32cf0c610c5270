//! `status <env> --drift`: what differs between the running env and its sources of truth —
//! Terraform's resources against the state (`plan -refresh-only`), Flux against the branch tip,
//! and the live objects against what Flux applied — changing nothing.

use std::path::Path;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::status::{connect_env, created_env, root_kustomization};
use super::{Outcome, git, run_step};
use crate::cluster::drift::{FluxDrift, flux_drift};
use crate::cluster::{FLUX_NAMESPACE, ObjectName};
use crate::config::{Config, EnvConfig};
use crate::error::{Error, Result};
use crate::report::{Reporter, short_sha};
use crate::terraform::PlanMode;

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

/// Three steps: terraform-drift, branch-tip, flux-drift.
pub async fn run(
    reporter: &dyn Reporter,
    config: &Config,
    env: &EnvConfig,
    terraform_binary: Option<&Path>,
    cancel: &CancellationToken,
) -> Result<Drift> {
    let refreshing = async {
        let (tf, root) = created_env(config, env, terraform_binary, cancel).await?;
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
    };
    let (tf, root, terraform) = run_step(reporter, "terraform-drift", refreshing).await.1?;
    let reading_tip = async {
        let tip = git::branch_tip(env).await?.ok_or_else(|| {
            Error::bad_input(format!(
                "branch {} of {} does not exist: env {} was never committed",
                env.repository.branch, env.repository.url, env.name
            ))
        })?;
        Ok((Outcome::Done(short_sha(&tip).to_owned()), tip))
    };
    let tip = run_step(reporter, "branch-tip", reading_tip).await.1?;
    let comparing = async {
        let (client, _) = connect_env(&tf, &root, env, cancel).await?;
        let repository = repository_of_root();
        let drift = flux_drift(&client, &repository, &tip).await?;
        let outcome = if drift.is_clean() {
            Outcome::UpToDate("Flux is at the tip and nothing changed".to_owned())
        } else {
            Outcome::Done(format!(
                "{} behind, {} suspended, {} changed, {} missing",
                drift.behind.len(),
                drift.suspended.len(),
                drift.changed.len(),
                drift.missing.len()
            ))
        };
        Ok((outcome, drift))
    };
    let flux = run_step(reporter, "flux-drift", comparing).await.1?;
    Ok(Drift {
        env: env.name.clone(),
        drifted: !terraform.is_clean() || !flux.is_clean(),
        terraform,
        branch_tip: tip,
        flux,
    })
}

/// The GitRepository the root Kustomization reads (create-env names both `flux-system`).
fn repository_of_root() -> ObjectName {
    let root = root_kustomization();
    ObjectName::namespaced("GitRepository", FLUX_NAMESPACE, &root.name)
}
