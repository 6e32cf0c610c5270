//! suspend-sync and delete-apps (teardown): the root Kustomization suspended so Flux does not
//! recreate what goes, then the profile's Kustomizations and HelmReleases deleted in reverse
//! `dependsOn` order, each wave watched until gone — Flux's finalizers run the Helm uninstalls
//! and prune what each applied.

use std::time::Duration;

use kube::Client;

use super::leftovers_error;
use crate::cluster::teardown::{
    Doomed, app_namespaces, delete_and_wait, deletion_waves, flux_apps, suspend_root,
};
use crate::error::Result;
use crate::workflow::Outcome;

pub async fn suspend(client: &Client) -> Result<(Outcome, ())> {
    let outcome = if suspend_root(client).await? {
        Outcome::Done("suspended Kustomization flux-system/flux-system".to_owned())
    } else {
        Outcome::UpToDate("the root Kustomization is suspended or absent".to_owned())
    };
    Ok((outcome, ()))
}

/// Returns what was deleted, as `Kind namespace/name`, and the namespaces the apps applied,
/// for delete-cloud-resources to wait for once what holds them up is gone.
pub async fn run(
    client: &Client,
    timeout: Duration,
) -> Result<(Outcome, (Vec<String>, Vec<Doomed>))> {
    let apps = flux_apps(client).await?;
    if apps.is_empty() {
        return Ok((
            Outcome::UpToDate("no Flux apps left".to_owned()),
            (Vec::new(), Vec::new()),
        ));
    }
    let namespaces = app_namespaces(client).await?;
    let mut deleted = Vec::new();
    for wave in deletion_waves(apps) {
        let leftovers = delete_and_wait(client, &wave, timeout).await?;
        if !leftovers.is_empty() {
            return Err(leftovers_error("Flux apps", &leftovers));
        }
        deleted.extend(wave.iter().map(|app| app.object.to_string()));
    }
    let summary = format!("deleted {} Kustomizations and HelmReleases", deleted.len());
    Ok((Outcome::Done(summary), (deleted, namespaces)))
}
