//! hand-over (create-env): when the env's install method changes, the cluster's Flux changes
//! hands before the commit that drops the old method's files is pushed — to the Flux Operator
//! (it takes the classic install over and relabels it), or back (the FluxInstance stops
//! reconciling) — so Flux, reconciling that commit, prunes neither itself nor the FluxInstance
//! whose finalizer would uninstall it.

use std::time::Duration;

use kube::Client;

use crate::cluster::Installation;
use crate::error::Result;
use crate::workflow::Outcome;

/// Runs only when [`Installation::needs_hand_over`]; `sync_manifest`: the FluxInstance about
/// to be committed (operator); `timeout`: the run's (`--timeout`).
pub async fn run(
    client: &Client,
    install: &Installation,
    sync_manifest: &str,
    timeout: Duration,
    adopting: bool,
) -> Result<(Outcome, ())> {
    let done = install
        .hand_over(client, sync_manifest, timeout, adopting)
        .await?;
    Ok((Outcome::Done(done.to_owned()), ()))
}
