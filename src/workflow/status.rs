//! status: the readiness tree of the env's Flux objects, on the cluster [`reach`] proves the
//! env's, changing nothing: once, or (`--wait`) the wait phase with no revision, until every
//! object is Ready, one fails or the time is up. With the Flux Operator, its FluxInstance is
//! shown above the tree.

use std::path::Path;
use std::time::Duration;

use kube::Client;
use tokio_util::sync::CancellationToken;

use super::phases::reach::{self, Patience, Reach};
use super::phases::wait_for_apps::{self, Budget};
use super::{Outcome, run_step, terraform};
use crate::cluster::wait::{Row, readiness_tree};
use crate::cluster::{FLUX_NAMESPACE, ObjectName, Snapshot, flux_operator};
use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::report::Reporter;
use crate::terraform::{EnvRoot, Terraform};

/// One step, `status`: the tree under the root Kustomization `flux-system/flux-system`; with
/// `wait`, watched for up to that long until every object is Ready.
pub async fn run(
    reporter: &dyn Reporter,
    config: &Config,
    env: &EnvConfig,
    terraform_binary: Option<&Path>,
    wait: Option<Duration>,
    cancel: &CancellationToken,
) -> Result<Snapshot> {
    let reading = async {
        let (_, _, found) = reach_env(config, env, terraform_binary, cancel).await?;
        let reached = found.readable(&env.name)?;
        let client = reached.client();
        let snapshot = match wait {
            None => readiness_tree(client, &root_kustomization()).await?,
            Some(timeout) => {
                let budget = Budget::from_now(timeout);
                let waiting =
                    wait_for_apps::run(client, None, None, "status", budget, reporter, cancel);
                waiting.await?.1
            }
        };
        let snapshot = with_instance(client, snapshot).await?;
        let summary = format!("{}/{} Ready", snapshot.ready, snapshot.total);
        Ok((Outcome::Done(summary), snapshot))
    };
    run_step(reporter, "status", reading).await.1
}

/// The FluxInstance first, when the Flux Operator installed Flux (the sync objects and apps
/// below it exist only through it), then the operator's FluxReport: its sync line and the
/// components not ready.
async fn with_instance(client: &Client, mut snapshot: Snapshot) -> Result<Snapshot> {
    let Some(instance) = flux_operator::read_instance(client).await? else {
        return Ok(snapshot);
    };
    let readiness = flux_operator::instance_readiness(Some(&instance));
    snapshot.ready += usize::from(readiness.is_ready());
    snapshot.total += 1;
    let object =
        ObjectName::namespaced("FluxInstance", FLUX_NAMESPACE, flux_operator::INSTANCE_NAME);
    let mut rows = vec![Row {
        object,
        readiness,
        waiting_on: Vec::new(),
    }];
    if let Some(report) = flux_operator::read_report(client).await? {
        let readiness = flux_operator::report_readiness(&report);
        snapshot.ready += usize::from(readiness.is_ready());
        snapshot.total += 1;
        rows.push(Row {
            object: ObjectName::namespaced(
                "FluxReport",
                FLUX_NAMESPACE,
                flux_operator::INSTANCE_NAME,
            ),
            readiness,
            waiting_on: Vec::new(),
        });
    }
    snapshot.rows.splice(0..0, rows);
    Ok(snapshot)
}

/// The Kustomization create-env makes Flux sync the env from (its GitRepository has the
/// same name).
pub(super) fn root_kustomization() -> ObjectName {
    ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE)
}

/// What a read-only command (status, drift, plan) knows of the env: its initialised Terraform
/// root and what [`reach`] found.
pub(super) async fn reach_env(
    config: &Config,
    env: &EnvConfig,
    terraform_binary: Option<&Path>,
    cancel: &CancellationToken,
) -> Result<(Terraform, EnvRoot, Reach)> {
    let (tf, root) = terraform::prepare(config, env, terraform_binary, cancel).await?;
    let found = reach::run(&tf, &root, env, Patience::Existing, cancel).await?;
    Ok((tf, root, found))
}
