//! status: the readiness tree of the env's Flux objects, read once through the env's Terraform
//! outputs, changing nothing.

use std::path::Path;
use std::time::Duration;

use kube::Client;
use tokio_util::sync::CancellationToken;

use super::{Outcome, run_step, terraform};
use crate::cluster::wait::readiness_tree;
use crate::cluster::{FLUX_NAMESPACE, ObjectName, Snapshot, connect};
use crate::config::{Config, EnvConfig};
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::terraform::{EnvRoot, StateInfo, Terraform};

/// An existing cluster answers at once; this only covers a slow network.
const CONNECT_BUDGET: Duration = Duration::from_secs(30);

/// One step, `status`: the tree under the root Kustomization `flux-system/flux-system`.
pub async fn run(
    reporter: &dyn Reporter,
    config: &Config,
    env: &EnvConfig,
    terraform_binary: Option<&Path>,
    cancel: &CancellationToken,
) -> Result<Snapshot> {
    let reading = async {
        let (tf, root) = created_env(config, env, terraform_binary, cancel).await?;
        let client = connect_env(&tf, &root, env, cancel).await?;
        let snapshot = readiness_tree(&client, &root_kustomization()).await?;
        Ok((
            Outcome::Done(format!("{}/{} Ready", snapshot.ready, snapshot.total)),
            snapshot,
        ))
    };
    run_step(reporter, "status", reading).await.1
}

/// The Kustomization create-env makes Flux sync the env from (its GitRepository has the
/// same name).
pub(super) fn root_kustomization() -> ObjectName {
    ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE)
}

/// The env's Terraform root, refusing an env that was never created (no state).
pub(super) async fn created_env(
    config: &Config,
    env: &EnvConfig,
    terraform_binary: Option<&Path>,
    cancel: &CancellationToken,
) -> Result<(Terraform, EnvRoot)> {
    let (tf, root) = terraform::prepare(config, env, terraform_binary, cancel).await?;
    if let Some(state) = root.local_state_file()
        && !StateInfo::read(&state)?.exists
    {
        return Err(Error::bad_input(format!(
            "env {} has not been created yet: it has no Terraform state",
            env.name
        ))
        .with_hint(format!("run `gitops-bootstrap create-env {}`", env.name)));
    }
    Ok((tf, root))
}

/// A client for the env's cluster, with the access its Terraform outputs give.
pub(super) async fn connect_env(
    tf: &Terraform,
    root: &EnvRoot,
    env: &EnvConfig,
    cancel: &CancellationToken,
) -> Result<Client> {
    let contract = Contract::parse(&tf.output_json(root, cancel).await?, &env.outputs)?;
    Ok(connect(&contract.access, CONNECT_BUDGET).await?)
}
