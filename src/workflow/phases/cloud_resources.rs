//! delete-cloud-resources (teardown): LoadBalancer Services and PersistentVolumeClaims in every
//! namespace — what a cloud backs with resources `terraform destroy` knows nothing of — deleted
//! and waited for; what stays is a leftover that stops the teardown unless forced.

use std::time::Duration;

use kube::Client;

use super::leftovers_error;
use crate::cluster::teardown::{Leftover, cloud_owners, delete_and_wait};
use crate::error::Result;
use crate::report::Reporter;
use crate::workflow::Outcome;

/// Returns what was deleted and, with `force`, what was left behind.
pub async fn run(
    client: &Client,
    timeout: Duration,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<(Outcome, (Vec<String>, Vec<Leftover>))> {
    let owners = cloud_owners(client).await?;
    if owners.is_empty() {
        let outcome = Outcome::UpToDate("no LoadBalancer Services or PVCs".to_owned());
        return Ok((outcome, (Vec::new(), Vec::new())));
    }
    let leftovers = delete_and_wait(client, &owners, timeout).await?;
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
    let deleted: Vec<String> = owners
        .iter()
        .filter(|owner| !leftovers.iter().any(|l| l.object == owner.object))
        .map(|owner| owner.object.to_string())
        .collect();
    let summary = format!(
        "deleted {} LoadBalancer Services/PVCs{}",
        deleted.len(),
        if leftovers.is_empty() {
            String::new()
        } else {
            format!(", {} left behind", leftovers.len())
        }
    );
    Ok((Outcome::Done(summary), (deleted, leftovers)))
}
