//! suspend-sync (teardown): the root Kustomization suspended first, so Flux does not recreate
//! what the steps after it delete — and a pass of it already under way let end, since
//! suspending stops the next pass, not the current one, which may still apply the apps
//! delete-apps is about to delete.

use std::time::Duration;

use super::reach::OwnCluster;
use crate::cluster::teardown::{RootPass, await_root_pass, suspend_root};
use crate::error::Result;
use crate::report::Reporter;
use crate::workflow::Outcome;

/// `timeout` bounds the wait for a pass under way (a controller that died mid-pass never
/// ends it).
pub async fn run(
    cluster: &OwnCluster,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(Outcome, ())> {
    let changed = suspend_root(cluster.client()).await?;
    match await_root_pass(cluster.client(), timeout).await? {
        RootPass::Idle => {}
        // How long it took is the controller's pace, not the outcome: logged, not summarised.
        RootPass::Ended(took) => tracing::info!(?took, "the root's pass under way ended"),
        RootPass::StillRunning(bound) => reporter.warning(format!(
            "the root Kustomization's pass under way had not ended after {bound:?}: going on (delete-apps deletes again what it re-applies)"
        )),
    }
    let outcome = if changed {
        Outcome::Done("suspended Kustomization flux-system/flux-system".to_owned())
    } else {
        Outcome::UpToDate("the root Kustomization is suspended or absent".to_owned())
    };
    Ok((outcome, ()))
}
