//! status: the readiness tree of the env's Flux objects, read once through the env's Terraform
//! outputs, changing nothing.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Outcome, run_step, terraform};
use crate::cluster::wait::readiness_tree;
use crate::cluster::{FLUX_NAMESPACE, ObjectName, Snapshot, connect};
use crate::config::{Config, EnvConfig};
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::terraform::StateInfo;

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
        let contract = Contract::parse(&tf.output_json(&root, cancel).await?, &env.outputs)?;
        let client = connect(&contract.access, CONNECT_BUDGET).await?;
        let root = ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE);
        let snapshot = readiness_tree(&client, &root).await?;
        Ok((
            Outcome::Done(format!("{}/{} Ready", snapshot.ready, snapshot.total)),
            snapshot,
        ))
    };
    run_step(reporter, "status", reading).await.1
}
