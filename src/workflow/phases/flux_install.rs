//! flux-install: the Flux components applied (CRDs first, then the rest) and their controllers
//! waited for.

use tokio::time::Instant;

use kube::Client;

use super::applied;
use crate::cluster::{Components, flux};
use crate::error::Result;
use crate::workflow::Outcome;

/// `deadline`: the run's one deadline for waiting on the cluster (`--timeout`, which also
/// bounds wait-for-apps), so a short timeout is never outlasted by this wait.
pub async fn run(
    client: &Client,
    components: &Components,
    deadline: Instant,
    adopting: bool,
) -> Result<(Outcome, ())> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    let summary = flux::install(client, components, timeout, adopting).await?;
    let what = format!("Flux {} objects", components.version);
    Ok((applied(&what, &summary), ()))
}
