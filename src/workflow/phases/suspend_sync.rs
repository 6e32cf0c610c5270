//! suspend-sync (teardown): the root Kustomization suspended first, so Flux does not recreate
//! what the steps after it delete.

use super::reach::OwnCluster;
use crate::cluster::teardown::suspend_root;
use crate::error::Result;
use crate::workflow::Outcome;

pub async fn run(cluster: &OwnCluster) -> Result<(Outcome, ())> {
    let outcome = if suspend_root(cluster.client()).await? {
        Outcome::Done("suspended Kustomization flux-system/flux-system".to_owned())
    } else {
        Outcome::UpToDate("the root Kustomization is suspended or absent".to_owned())
    };
    Ok((outcome, ()))
}
