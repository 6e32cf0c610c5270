//! sync: the GitRepository and Kustomization `flux-system` applied exactly as committed (with
//! the Flux Operator: generated from the FluxInstance), and a reconcile requested when they do
//! not yet point at the wanted commit.

use kube::Client;

use super::applied;
use crate::cluster::Installation;
use crate::cluster::wait::conditions::WantedRevision;
use crate::error::Result;
use crate::report::short_sha;
use crate::workflow::Outcome;

/// `manifest` is the committed gotk-sync.yaml; `commit` the sha Flux must reach; `adopting`
/// takes the objects over from the tool that wrote them.
pub async fn run(
    client: &Client,
    install: &Installation,
    manifest: &str,
    commit: &str,
    adopting: bool,
) -> Result<(Outcome, ())> {
    // A newer commit than ours is not worth a lookup here: it only costs a reconcile request.
    let wanted = WantedRevision {
        sha: commit,
        is_descendant: &|_| false,
    };
    let summary = install.sync(client, manifest, &wanted, adopting).await?;
    let outcome = match applied("sync objects", &summary.applied) {
        outcome if !summary.reconcile_requested => outcome,
        Outcome::Done(text) | Outcome::UpToDate(text) => Outcome::Done(format!(
            "{text}; reconcile of {} requested",
            short_sha(commit)
        )),
    };
    Ok((outcome, ()))
}
