//! delete-cloud-resources (teardown): LoadBalancer Services and PersistentVolumeClaims in the
//! env's namespaces — what a cloud backs with resources `terraform destroy` knows nothing of —
//! deleted and waited for, then the namespaces the apps applied (a namespace terminates once
//! what is in it is gone); what stays is a leftover that stops the teardown unless forced.
//! Those in other namespaces are not the env's: they are left alone, and listed.

use std::collections::BTreeSet;
use std::time::Duration;

use super::leftovers_error;
use super::reach::OwnCluster;
use crate::cluster::ObjectName;
use crate::cluster::teardown::{
    Doomed, Leftover, cloud_owners, delete_and_wait, env_namespaces, flux_applied_namespaces,
};
use crate::error::Result;
use crate::report::Reporter;
use crate::workflow::Outcome;

/// What delete-cloud-resources did.
#[derive(Debug, Default)]
pub struct CloudResources {
    pub removed: Vec<String>,
    /// With `force`: what did not go in time.
    pub leftovers: Vec<Leftover>,
    /// LoadBalancer Services and PVCs outside the env's namespaces.
    pub left_alone: Vec<ObjectName>,
}

/// `namespaces` (those the apps applied) are waited for last: they terminate once what is in
/// them is gone. `scope`: the env's namespaces as read before the apps went (their inventories
/// went with them).
pub async fn run(
    cluster: &OwnCluster,
    timeout: Duration,
    force: bool,
    reporter: &dyn Reporter,
    namespaces: &[Doomed],
    scope: &BTreeSet<String>,
) -> Result<(Outcome, CloudResources)> {
    let client = cluster.client();
    let mut namespaces = namespaces.to_vec();
    for orphan in flux_applied_namespaces(client).await? {
        if !namespaces.iter().any(|n| n.object == orphan.object) {
            namespaces.push(orphan);
        }
    }
    let mut scope = scope.clone();
    scope.extend(env_namespaces(client).await?);
    scope.extend(namespaces.iter().map(|n| n.object.name.clone()));
    let (owners, left_alone) = cloud_owners(client, &scope).await?;
    let mut done = CloudResources {
        left_alone,
        ..CloudResources::default()
    };
    let alone = match done.left_alone.len() {
        0 => String::new(),
        n => format!("; {n} outside the env's namespaces left alone"),
    };
    if owners.is_empty() && namespaces.is_empty() {
        let outcome = Outcome::UpToDate(format!("no LoadBalancer Services or PVCs{alone}"));
        return Ok((outcome, done));
    }
    let mut leftovers = delete_and_wait(client, &owners, timeout).await?;
    leftovers.extend(delete_and_wait(client, &namespaces, timeout).await?);
    if !leftovers.is_empty() && !force {
        return Err(leftovers_error("cloud-backed objects", &leftovers));
    }
    for leftover in &leftovers {
        reporter.warning(format!(
            "left behind (--force): {} (finalizers: {})",
            leftover.object,
            leftover.finalizers.join(", ")
        ));
    }
    let gone = |doomed: &&Doomed| !leftovers.iter().any(|l| l.object == doomed.object);
    let deleted = owners.iter().filter(gone).count();
    let emptied = namespaces.iter().filter(gone).count();
    let mut summary = format!("deleted {deleted} LoadBalancer Services/PVCs");
    if emptied > 0 {
        summary.push_str(&format!(", {emptied} app namespaces gone"));
    }
    if !leftovers.is_empty() {
        summary.push_str(&format!(", {} left behind", leftovers.len()));
    }
    summary.push_str(&alone);
    done.removed = owners
        .iter()
        .chain(&namespaces)
        .filter(gone)
        .map(|doomed| doomed.object.to_string())
        .collect();
    done.leftovers = leftovers;
    Ok((Outcome::Done(summary), done))
}
