//! delete-cloud-resources (teardown): LoadBalancer Services and PersistentVolumeClaims in every
//! namespace — what a cloud backs with resources `terraform destroy` knows nothing of — deleted
//! and waited for, then the namespaces the apps applied (a namespace terminates once what is in
//! it is gone); what stays is a leftover that stops the teardown unless forced.

use std::time::Duration;

use kube::Client;

use super::leftovers_error;
use crate::cluster::teardown::{
    Doomed, Leftover, cloud_owners, delete_and_wait, flux_applied_namespaces,
};
use crate::error::Result;
use crate::report::Reporter;
use crate::workflow::Outcome;

/// Returns what was deleted and, with `force`, what was left behind. `namespaces` (those the
/// apps applied) are waited for last: they terminate once what is in them is gone.
pub async fn run(
    client: &Client,
    timeout: Duration,
    force: bool,
    reporter: &dyn Reporter,
    namespaces: &[Doomed],
) -> Result<(Outcome, (Vec<String>, Vec<Leftover>))> {
    let owners = cloud_owners(client).await?;
    let mut namespaces = namespaces.to_vec();
    for orphan in flux_applied_namespaces(client).await? {
        if !namespaces.iter().any(|n| n.object == orphan.object) {
            namespaces.push(orphan);
        }
    }
    if owners.is_empty() && namespaces.is_empty() {
        let outcome = Outcome::UpToDate("no LoadBalancer Services or PVCs".to_owned());
        return Ok((outcome, (Vec::new(), Vec::new())));
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
    let deleted: Vec<String> = owners
        .iter()
        .filter(gone)
        .map(|o| o.object.to_string())
        .collect();
    let emptied = namespaces.iter().filter(gone).count();
    let mut summary = format!("deleted {} LoadBalancer Services/PVCs", deleted.len());
    if emptied > 0 {
        summary.push_str(&format!(", {emptied} app namespaces gone"));
    }
    if !leftovers.is_empty() {
        summary.push_str(&format!(", {} left behind", leftovers.len()));
    }
    let mut removed = deleted;
    removed.extend(namespaces.iter().filter(gone).map(|n| n.object.to_string()));
    Ok((Outcome::Done(summary), (removed, leftovers)))
}
