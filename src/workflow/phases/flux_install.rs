//! flux-install: the Flux components applied (CRDs first, then the rest) and their controllers
//! waited for; or, with the Flux Operator, the operator applied and waited for, then the
//! FluxInstance as committed.

use tokio::time::Instant;

use kube::Client;

use super::applied;
use crate::cluster::Installation;
use crate::error::Result;
use crate::workflow::Outcome;

/// `deadline`: the run's one deadline for waiting on the cluster (`--timeout`, which also
/// bounds wait-for-apps), so a short timeout is never outlasted by this wait.
pub async fn run(
    client: &Client,
    install: &Installation,
    sync_manifest: &str,
    deadline: Instant,
    adopting: bool,
) -> Result<(Outcome, ())> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    let summary = install
        .install(client, sync_manifest, timeout, adopting)
        .await?;
    let what = match install {
        Installation::Components(components) => format!("Flux {} objects", components.version),
        Installation::Operator { .. } => "Flux Operator objects".to_owned(),
    };
    Ok((applied(&what, &summary), ()))
}
