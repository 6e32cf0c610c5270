//! connect (create-env, rebuild): after their apply, [`reach`] with the contract Terraform just
//! gave, patient with an API server that is only coming up; then whose cluster it is, before
//! anything is written to it.

use kube::Client;

use super::reach::{self, Patience, Reach};
use crate::cluster::Owner;
use crate::contract::Contract;
use crate::error::Result;
use crate::workflow::Outcome;

/// A client for the cluster the env may write to.
pub struct Connected {
    pub client: Client,
    /// The cluster was bootstrapped by another tool and is being taken over (`--adopt`).
    pub adopting: bool,
}

/// Connects, then stops (exit 2) on a cluster of another env, and on one another tool
/// bootstrapped unless `adopt`.
pub async fn run(contract: &Contract, owner: &Owner, adopt: bool) -> Result<(Outcome, Connected)> {
    let found = reach::cluster(contract.clone(), owner, Patience::NewCluster).await?;
    let whose = match &found {
        Reach::Unclaimed(_) => "unclaimed, recorded for this env at config-and-secrets".to_owned(),
        Reach::Ours(_) => format!("owned by env {}", owner.env),
        Reach::UnownedFlux { objects, .. } => format!(
            "adopting what {} wrote",
            crate::cluster::ownership::list(objects)
        ),
        _ => String::new(),
    };
    let (reached, adopting) = found.admit(&owner.env, adopt)?;
    let summary = format!("connected to cluster {} ({whose})", contract.cluster_name);
    let connected = Connected {
        client: reached.connection.client,
        adopting,
    };
    Ok((Outcome::Done(summary), connected))
}
