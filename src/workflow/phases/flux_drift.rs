//! flux-drift (status --drift): Flux against the branch tip (the GitRepository's artifact,
//! every Kustomization's last applied revision, suspended objects) and the live objects
//! against what Flux applied (their managedFields) — and the tool's own objects against hand
//! edits — read through the env's outputs.

use tokio_util::sync::CancellationToken;

use crate::cluster::bootstrap::own_objects;
use crate::cluster::drift::{FluxDrift, flux_drift};
use crate::cluster::{FLUX_NAMESPACE, ObjectName};
use crate::config::EnvConfig;
use crate::error::Result;
use crate::terraform::{EnvRoot, Terraform};
use crate::workflow::Outcome;
use crate::workflow::phases::reach::{self, Patience};
use crate::workflow::status::root_kustomization;

pub async fn run(
    tf: &Terraform,
    root: &EnvRoot,
    env: &EnvConfig,
    tip: &str,
    cancel: &CancellationToken,
) -> Result<(Outcome, FluxDrift)> {
    let found = reach::run(tf, root, env, Patience::Existing, cancel).await?;
    let reached = found.readable(&env.name)?;
    let own = own_objects(&env.repository.substitution);
    let drift = flux_drift(reached.client(), &repository_of_root(), tip, &own).await?;
    let outcome = if drift.is_clean() {
        Outcome::UpToDate("Flux is at the tip and nothing changed".to_owned())
    } else {
        Outcome::Done(format!(
            "{} behind, {} suspended, {} changed, {} missing, {} with changed config",
            drift.behind.len(),
            drift.suspended.len(),
            drift.changed.len(),
            drift.missing.len(),
            drift.stale_config.len()
        ))
    };
    Ok((outcome, drift))
}

/// The GitRepository the root Kustomization reads (create-env names both `flux-system`).
fn repository_of_root() -> ObjectName {
    let root = root_kustomization();
    ObjectName::namespaced("GitRepository", FLUX_NAMESPACE, &root.name)
}
