//! flux-uninstall (teardown): the controllers, then (by hand, once the controllers are gone)
//! the finalizers of the Flux objects left, the objects, the CRDs, Flux's cluster RBAC and the
//! `flux-system` namespace.

use std::time::Duration;

use kube::Client;

use super::leftovers_error;
use crate::cluster::teardown::uninstall_flux;
use crate::error::Result;
use crate::report::Reporter;
use crate::workflow::Outcome;

pub async fn run(
    client: &Client,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(Outcome, ())> {
    let done = uninstall_flux(client, timeout).await?;
    if !done.leftovers.is_empty() {
        return Err(leftovers_error("Flux objects", &done.leftovers));
    }
    if !done.finalizers_removed.is_empty() {
        let objects: Vec<String> = done
            .finalizers_removed
            .iter()
            .map(ToString::to_string)
            .collect();
        reporter.notice(format!(
            "removed Flux's finalizer by hand (its controller was gone) from {}",
            objects.join(", ")
        ));
    }
    let outcome = if done.deleted == 0 {
        Outcome::UpToDate("Flux is not installed".to_owned())
    } else {
        Outcome::Done(format!(
            "deleted {} Flux objects ({} finalizers removed by hand)",
            done.deleted,
            done.finalizers_removed.len()
        ))
    };
    Ok((outcome, ()))
}
