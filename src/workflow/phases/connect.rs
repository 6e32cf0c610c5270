//! connect: a verified client for the env's cluster from the contract's access, retried while
//! a new API server comes up.

use std::time::Duration;

use kube::Client;

use crate::cluster;
use crate::contract::Contract;
use crate::error::Result;
use crate::workflow::Outcome;

/// How long a just-created API server gets to answer.
const CONNECT_BUDGET: Duration = Duration::from_secs(180);

pub async fn run(contract: &Contract) -> Result<(Outcome, Client)> {
    let client = cluster::connect(&contract.access, CONNECT_BUDGET).await?;
    let summary = format!("connected to cluster {}", contract.cluster_name);
    Ok((Outcome::Done(summary), client))
}
