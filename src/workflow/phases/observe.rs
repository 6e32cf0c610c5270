//! observe (teardown): the env's lock, then what exists — Terraform state, a cluster that
//! answers with the contract's access, `clusters/<env>/` in Git, and in pull-request mode that
//! the proposal branch holds no one else's commits. Changes nothing.

use std::path::Path;
use std::time::Duration;

use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::cluster;
use crate::config::{Config, EnvConfig};
use crate::contract::Contract;
use crate::error::Result;
use crate::gitops::Workspace;
use crate::lock::EnvLock;
use crate::render::cluster_dir;
use crate::report::Reporter;
use crate::terraform::{EnvRoot, StateInfo, Terraform};
use crate::workflow::git::{blocking, push_spec};
use crate::workflow::phases::lock;
use crate::workflow::proposal;
use crate::workflow::{EnvPaths, Outcome, terraform};

/// A cluster that existed answers quickly; one that does not is given up on after this.
const REACH_BUDGET: Duration = Duration::from_secs(15);

/// What exists of an env.
pub struct Observed {
    /// Held until the run ends.
    pub lock: EnvLock,
    pub terraform: Terraform,
    pub root: EnvRoot,
    /// Terraform manages resources of the env.
    pub has_state: bool,
    /// The cluster, when it answers.
    pub client: Option<Client>,
    pub workspace: Workspace,
    /// `clusters/<env>/` is on the branch.
    pub in_git: bool,
}

pub async fn run(
    reporter: &dyn Reporter,
    config: &Config,
    env: &EnvConfig,
    paths: &EnvPaths,
    terraform_binary: Option<&Path>,
    proposing: bool,
    cancel: &CancellationToken,
) -> Result<(Outcome, Observed)> {
    let lock = lock::acquire(env, paths)?;
    lock::announce_takeover(&lock, env, reporter);
    let (tf, root) = terraform::prepare(config, env, terraform_binary, cancel).await?;
    let has_state = match root.local_state_file() {
        Some(state) => StateInfo::read(&state)?.exists,
        // A remote backend: the outputs say whether anything is there.
        None => true,
    };
    let client = if has_state {
        reach(&tf, &root, env, cancel).await
    } else {
        None
    };
    let spec = push_spec(env)?;
    let repo_dir = paths.repo();
    let workspace = blocking(move || Ok(Workspace::open_or_clone(&repo_dir, spec)?)).await?;
    let dir = cluster_dir(&env.repository.path, &env.name);
    let in_git = workspace.path_exists(&dir)?;
    // Before anything is removed: a removal that could never be proposed must not start.
    let workspace = if proposing && in_git {
        proposal::check_branch(workspace, env, "teardown").await?
    } else {
        workspace
    };
    let facts = [
        if has_state {
            "Terraform state present"
        } else {
            "no Terraform state"
        },
        if client.is_some() {
            "cluster reachable"
        } else {
            "cluster not reachable"
        },
        if in_git {
            "clusters dir in Git"
        } else {
            "nothing in Git"
        },
    ];
    let observed = Observed {
        lock,
        terraform: tf,
        root,
        has_state,
        client,
        workspace,
        in_git,
    };
    Ok((Outcome::Done(facts.join(" · ")), observed))
}

/// A client when the outputs give access and the API server answers; the cluster being gone is
/// a normal state here, not an error.
async fn reach(
    tf: &Terraform,
    root: &EnvRoot,
    env: &EnvConfig,
    cancel: &CancellationToken,
) -> Option<Client> {
    let outputs = tf.outputs(root, cancel).await.ok()?;
    let contract = Contract::from_outputs(&outputs, &env.outputs).ok()?;
    cluster::connect(&contract.access, REACH_BUDGET).await.ok()
}
