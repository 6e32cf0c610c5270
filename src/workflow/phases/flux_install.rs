//! flux-install: the Flux components applied (CRDs first, then the rest) and their controllers
//! waited for; or, with the Flux Operator, the operator applied and waited for, then the
//! FluxInstance as committed.

use std::time::Duration;

use kube::Client;

use super::applied;
use crate::cluster::Installation;
use crate::error::Result;
use crate::workflow::Outcome;

/// `timeout`: what is left of the run's one deadline for waiting on the cluster (`--timeout`,
/// which also bounds wait-for-apps), so a short timeout is never outlasted by this wait.
pub async fn run(
    client: &Client,
    install: &Installation,
    sync_manifest: &str,
    timeout: Duration,
    adopting: bool,
) -> Result<(Outcome, ())> {
    let summary = install
        .install(client, sync_manifest, timeout, adopting)
        .await?;
    let what = match install {
        Installation::Components(components) => format!("Flux {} objects", components.version),
        Installation::Operator { .. } => "Flux Operator objects".to_owned(),
    };
    Ok((applied(&what, &summary), ()))
}
