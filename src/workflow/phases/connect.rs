//! connect: a verified client for the env's cluster from the contract's access, retried while
//! a new API server comes up; then whose cluster it is, before anything is written to it.

use std::time::Duration;

use kube::Client;

use crate::cluster::{self, Owner, Ownership, ownership};
use crate::config::EnvConfig;
use crate::contract::Contract;
use crate::error::Result;
use crate::render::cluster_dir;
use crate::workflow::Outcome;

/// How long a just-created API server gets to answer.
const CONNECT_BUDGET: Duration = Duration::from_secs(180);

/// A client for the cluster the env may write to.
pub struct Connected {
    pub client: Client,
    /// The cluster was bootstrapped by another tool and is being taken over (`--adopt`).
    pub adopting: bool,
}

/// The record the env leaves on its cluster: repository, branch and the path Flux syncs.
pub fn owner(env: &EnvConfig) -> Owner {
    Owner {
        env: env.name.clone(),
        repository: env.repository.url.clone(),
        branch: env.repository.branch.clone(),
        path: cluster_dir(&env.repository.path, &env.name),
    }
}

/// Connects, then stops (exit 2) on a cluster of another env, and on one another tool
/// bootstrapped unless `adopt`.
pub async fn run(contract: &Contract, owner: &Owner, adopt: bool) -> Result<(Outcome, Connected)> {
    let client = cluster::connect(&contract.access, CONNECT_BUDGET).await?;
    let found = ownership::observe(&client, owner).await?;
    let whose = match &found {
        Ownership::Unclaimed => "unclaimed, recorded for this env at config-and-secrets".to_owned(),
        Ownership::ThisEnv => format!("owned by env {}", owner.env),
        Ownership::Foreign { objects } => format!(
            "adopting what {} wrote",
            objects
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        Ownership::OtherEnv { .. } => String::new(),
    };
    let adopting = ownership::admit(found, owner, adopt)?;
    let summary = format!("connected to cluster {} ({whose})", contract.cluster_name);
    Ok((Outcome::Done(summary), Connected { client, adopting }))
}
