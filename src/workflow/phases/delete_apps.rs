//! delete-apps (teardown): with the sync suspended, the profile's Kustomizations and
//! HelmReleases deleted in reverse `dependsOn` order, each wave watched until gone — Flux's
//! finalizers run the Helm uninstalls and prune what each applied. With `--force`, an app still
//! deleting at the deadline has its finalizers removed, is reported, and the teardown goes on.

use std::time::Duration;

use super::leftovers_error;
use super::reach::OwnCluster;
use crate::cluster::ObjectName;
use crate::cluster::teardown::{
    Doomed, app_namespaces, delete_and_wait, deletion_waves, flux_apps,
    remove_finalizers_of_leftovers,
};
use crate::error::Result;
use crate::report::Reporter;
use crate::workflow::Outcome;

/// How many times the apps are listed and deleted: a parent Kustomization still reconciling
/// can re-create a child it applied while the child goes (a new uid counts as gone), so what
/// is there after a round is deleted again.
const ROUNDS: usize = 3;

/// What delete-apps did.
#[derive(Debug, Default)]
pub struct DeletedApps {
    /// As `Kind namespace/name`.
    pub deleted: Vec<String>,
    /// The namespaces the apps applied, for delete-cloud-resources to wait for once what holds
    /// them up is gone.
    pub namespaces: Vec<Doomed>,
    /// Apps still deleting at the deadline whose finalizers `--force` removed.
    pub finalizers_removed: Vec<ObjectName>,
}

pub async fn run(
    cluster: &OwnCluster,
    timeout: Duration,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<(Outcome, DeletedApps)> {
    let client = cluster.client();
    let mut done = DeletedApps::default();
    for _ in 0..ROUNDS {
        let apps = flux_apps(client).await?;
        if apps.is_empty() {
            break;
        }
        for namespace in app_namespaces(client).await? {
            if !done.namespaces.iter().any(|n| n.object == namespace.object) {
                done.namespaces.push(namespace);
            }
        }
        for wave in deletion_waves(apps) {
            let mut leftovers = delete_and_wait(client, &wave, timeout).await?;
            if force && !leftovers.is_empty() {
                for leftover in &leftovers {
                    reporter.warning(format!(
                        "{} was still deleting after {timeout:?}: removing its finalizers ({}) (--force)",
                        leftover.object,
                        leftover.finalizers.join(", ")
                    ));
                }
                let forced = remove_finalizers_of_leftovers(client, &wave, &leftovers, timeout);
                let (still, stripped) = forced.await?;
                done.finalizers_removed.extend(stripped);
                leftovers = still;
            }
            if !leftovers.is_empty() {
                return Err(leftovers_error("Flux apps", &leftovers));
            }
            for app in wave.iter().map(|app| app.object.to_string()) {
                if !done.deleted.contains(&app) {
                    done.deleted.push(app);
                }
            }
        }
    }
    if done.deleted.is_empty() {
        return Ok((Outcome::UpToDate("no Flux apps left".to_owned()), done));
    }
    let mut summary = format!(
        "deleted {} Kustomizations and HelmReleases",
        done.deleted.len()
    );
    if !done.finalizers_removed.is_empty() {
        summary.push_str(&format!(
            ", removed the finalizers of {} still deleting (--force)",
            done.finalizers_removed.len()
        ));
    }
    Ok((Outcome::Done(summary), done))
}
