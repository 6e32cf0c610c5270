//! flux-uninstall (teardown): what the env installed of Flux, by the manifest it applied
//! (`installed`: the committed components, object by object), removed — the controllers, then
//! (by hand, once the controllers are gone) the finalizers of the Flux objects left, the
//! objects, the CRDs, Flux's cluster RBAC and the `flux-system` namespace — and each looked
//! for again: what is still there is left behind, which stops the teardown unless forced. It
//! is the last step that deletes from the cluster: it gives the cluster up, cleared, for
//! `terraform-destroy`.

use std::time::Duration;

use super::leftovers_error;
use super::reach::{Cleared, OwnCluster};
use crate::cluster::teardown::Leftover;
use crate::cluster::uninstall::{Installed, uninstall_flux};
use crate::error::Result;
use crate::report::Reporter;
use crate::workflow::Outcome;

/// Returns what was left behind (only with `force`) and the cluster, cleared.
pub async fn run(
    cluster: OwnCluster,
    installed: &Installed,
    timeout: Duration,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<(Outcome, (Vec<Leftover>, Cleared))> {
    let done = uninstall_flux(cluster.client(), installed, timeout).await?;
    if !done.leftovers.is_empty() && !force {
        return Err(leftovers_error("Flux objects", &done.leftovers));
    }
    for leftover in &done.leftovers {
        reporter.warning(format!(
            "left behind (--force): {} (finalizers: {})",
            leftover.object,
            leftover.finalizers.join(", ")
        ));
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
        Outcome::UpToDate(format!("nothing of {} is installed", installed.origin))
    } else {
        Outcome::Done(format!(
            "deleted {} Flux objects ({} finalizers removed by hand), {} left behind",
            done.deleted,
            done.finalizers_removed.len(),
            done.leftovers.len()
        ))
    };
    Ok((outcome, (done.leftovers, cluster.emptied())))
}
