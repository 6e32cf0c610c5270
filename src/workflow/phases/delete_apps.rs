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

/// How many times the apps are listed and deleted: a parent Kustomization still reconciling
/// can re-create a child it applied while the child goes (a new uid counts as gone), so what
/// is there after a round is deleted again.
const ROUNDS: usize = 3;

/// Returns what was deleted, as `Kind namespace/name`, and the namespaces the apps applied,
/// for delete-cloud-resources to wait for once what holds them up is gone.
pub async fn run(
    client: &Client,
    timeout: Duration,
) -> Result<(Outcome, (Vec<String>, Vec<Doomed>))> {
    let mut deleted = Vec::new();
    let mut namespaces: Vec<Doomed> = Vec::new();
    for _ in 0..ROUNDS {
        let apps = flux_apps(client).await?;
        if apps.is_empty() {
            break;
        }
        for namespace in app_namespaces(client).await? {
            if !namespaces.iter().any(|n| n.object == namespace.object) {
                namespaces.push(namespace);
            }
        }
        for wave in deletion_waves(apps) {
            let leftovers = delete_and_wait(client, &wave, timeout).await?;
            if !leftovers.is_empty() {
                return Err(leftovers_error("Flux apps", &leftovers));
            }
            for app in wave.iter().map(|app| app.object.to_string()) {
                if !deleted.contains(&app) {
                    deleted.push(app);
                }
            }
        }
    }
    if deleted.is_empty() {
        let outcome = Outcome::UpToDate("no Flux apps left".to_owned());
        return Ok((outcome, (deleted, namespaces)));
    }
    let summary = format!("deleted {} Kustomizations and HelmReleases", deleted.len());
    Ok((Outcome::Done(summary), (deleted, namespaces)))
}
