//! status: the readiness tree of the env's Flux objects, read through the env's Terraform
//! outputs, changing nothing: once, or (`--wait`) watched until it is Ready, fails or times out.

use std::path::Path;
use std::time::Duration;

use kube::Client;
use tokio_util::sync::CancellationToken;

use super::phases::wait_for_apps::progress_line;
use super::{Outcome, run_step, terraform};
use crate::cluster::wait::{Row, readiness_tree, wait_for_apps};
use crate::cluster::{FLUX_NAMESPACE, ObjectName, Snapshot, WaitTarget, connect, flux_operator};
use crate::config::{Config, EnvConfig};
use crate::contract::Contract;
use crate::error::{Error, ExitStatus, Result};
use crate::report::Reporter;
use crate::terraform::{EnvRoot, StateInfo, Terraform};

/// An existing cluster answers at once; this only covers a slow network.
const CONNECT_BUDGET: Duration = Duration::from_secs(30);

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
        let (tf, root) = created_env(config, env, terraform_binary, cancel).await?;
        let (client, _) = connect_env(&tf, &root, env, cancel).await?;
        let snapshot = match wait {
            None => readiness_tree(&client, &root_kustomization()).await?,
            Some(timeout) => {
                watch_until_ready(&client, root_kustomization(), timeout, reporter, cancel).await?
            }
        };
        let snapshot = with_instance(&client, snapshot).await?;
        Ok((
            Outcome::Done(format!("{}/{} Ready", snapshot.ready, snapshot.total)),
            snapshot,
        ))
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

/// A client for the env's cluster, with the access its Terraform outputs give, and those
/// outputs.
pub(super) async fn connect_env(
    tf: &Terraform,
    root: &EnvRoot,
    env: &EnvConfig,
    cancel: &CancellationToken,
) -> Result<(Client, Contract)> {
    let contract = Contract::from_outputs(&tf.outputs(root, cancel).await?, &env.outputs)?;
    Ok((connect(&contract.access, CONNECT_BUDGET).await?, contract))
}

/// Watches the tree until every object is Ready at the revision the GitRepository has fetched
/// (looked at again after each change, as a push may land meanwhile).
async fn watch_until_ready(
    client: &Client,
    root: ObjectName,
    timeout: Duration,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<Snapshot> {
    let target = WaitTarget {
        root,
        git_repository: ObjectName::namespaced("GitRepository", FLUX_NAMESPACE, FLUX_NAMESPACE),
        revision_sha: None,
        is_descendant: Box::new(|_| false),
    };
    let mut last_line = String::new();
    let on_progress = |snapshot: &Snapshot| {
        let line = progress_line(snapshot);
        if line != last_line {
            let (ready, total) = (snapshot.ready as u64, snapshot.total as u64);
            reporter.counted_progress("status", line.clone(), ready, total);
            last_line = line;
        }
    };
    tokio::select! {
        waited = wait_for_apps(client, target, timeout, on_progress) => Ok(waited?),
        () = cancel.cancelled() => Err(Error::new(
            ExitStatus::Interrupted,
            "interrupted while waiting for the Flux objects",
        )),
    }
}
