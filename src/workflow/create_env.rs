//! create-env: from a config entry to Ready runtime apps, as nine named steps. Nothing is
//! committed before the cluster took its config and secrets, and Flux is applied only once the
//! commit it will sync is on the remote.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::EnvRun;
use super::cluster_up::{ClusterUp, apply_connect_and_configure};
use super::flux_up::{FluxTarget, install_sync_and_wait};
use super::phases::commit::{ClusterDirInputs, Committed};
use super::phases::preflight::{PreflightInputs, PreflightOptions};
use super::phases::terraform_apply::ApplyPolicy;
use super::phases::{await_merge, commit, hand_over, preflight, summary};
use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::gitops::Workspace;
use crate::report::Reporter;

pub use super::phases::summary::CreateEnvResult;

/// What the user asked for, validated by the command.
#[derive(Debug, Clone)]
pub struct CreateEnvOptions {
    pub preflight: PreflightOptions,
    pub policy: ApplyPolicy,
    /// Take over a cluster another tool bootstrapped.
    pub adopt: bool,
    /// Pull-request mode: commit to the proposal branch and wait for the merge.
    pub via_branch: bool,
    pub timeout: Duration,
}

/// Runs create-env and keeps its run record (`<state_dir>/<env>/run.json`), also on failure.
pub async fn run(
    reporter: &dyn Reporter,
    cancel: CancellationToken,
    config: &Config,
    env: &EnvConfig,
    options: &CreateEnvOptions,
) -> Result<CreateEnvResult> {
    let mut run = EnvRun::start(reporter, cancel, config, env, "create-env")?;
    // Kept until connect learns it again, so a run killed before then leaves a record that
    // still names the env's cluster for a later rebuild.
    let uid = run.previous().and_then(|record| record.cluster_uid.clone());
    run.record().cluster_uid = uid;
    run.record().profile = Some(options.preflight.profile.clone());
    run.save_start();
    let outcome = drive(&mut run, config, env, options).await;
    run.finish(&outcome);
    outcome
}

/// The hand-over step, only in the run that changes the install method: before the commit.
async fn hand_over_if_changed(
    run: &mut EnvRun<'_>,
    client: &kube::Client,
    cluster_dir: &ClusterDirInputs<'_>,
    timeout: Duration,
    adopting: bool,
) -> Result<()> {
    if !cluster_dir.install.needs_hand_over(client).await? {
        return Ok(());
    }
    let planned = commit::planned_sync_manifest(cluster_dir)?;
    let handing = hand_over::run(client, cluster_dir.install, &planned, timeout, adopting);
    run.step("hand-over", handing).await
}

/// The steps, in order, each handing its typed result to the ones after it.
async fn drive(
    run: &mut EnvRun<'_>,
    config: &Config,
    env: &EnvConfig,
    options: &CreateEnvOptions,
) -> Result<CreateEnvResult> {
    let profile = &options.preflight.profile;
    let paths = run.paths().clone();
    let inputs = PreflightInputs {
        reporter: run.reporter(),
        config,
        env,
        paths: &paths,
        options: &options.preflight,
        via_branch: options.via_branch,
    };
    let prepared = run.step("preflight", preflight::run(inputs)).await?;
    run.record_keys(&prepared);

    let cluster = apply_connect_and_configure(
        run,
        config,
        env,
        &prepared,
        &env.flux_version,
        options.policy,
        options.adopt,
    );
    let up: ClusterUp = cluster.await?;

    let cluster_dir = ClusterDirInputs {
        env,
        profile,
        install: &prepared.flux,
        age_recipient: &prepared.age_key.recipient,
    };
    hand_over_if_changed(run, &up.client, &cluster_dir, options.timeout, up.adopting).await?;
    let committed = commit_or_propose(run, prepared.workspace, cluster_dir, options).await?;
    run.record().commit = Some(committed.head.clone());

    let flux = FluxTarget {
        install: &prepared.flux,
        sync_manifest: &committed.sync_manifest,
        commit: &committed.head,
        workspace: committed.workspace,
        adopting: up.adopting,
        config_reconcile: up.config_reconcile,
    };
    let apps = install_sync_and_wait(run, &up.client, flux, options.timeout).await?;

    let kubectl_access = summary::kubectl_access(
        &env.name,
        &env.outputs,
        prepared.terraform.flavor(),
        &paths.terraform_dir(env),
        &up.contract.access,
        up.contract.ca_certificate_base64,
    );
    let result = CreateEnvResult {
        env: env.name.clone(),
        profile: profile.clone(),
        cluster_name: up.contract.cluster_name,
        repository: env.repository.url.clone(),
        branch: env.repository.branch.clone(),
        commit: committed.head,
        flux_version: env.flux_version.clone(),
        age_recipient: prepared.age_key.recipient.clone(),
        age_key_file: prepared.age_key.path.clone(),
        deploy_key: prepared.deploy_key.map(|key| key.public_openssh),
        kubectl_access,
        apps,
    };
    run.step("summary", summary::run(run.reporter(), &result))
        .await?;
    Ok(result)
}

/// The step commit — in pull-request mode followed by await-merge, whose merged tip is the
/// commit Flux syncs.
async fn commit_or_propose(
    run: &mut EnvRun<'_>,
    workspace: Workspace,
    cluster_dir: ClusterDirInputs<'_>,
    options: &CreateEnvOptions,
) -> Result<Committed> {
    let reporter = run.reporter();
    if !options.via_branch {
        let committing = commit::run(workspace, cluster_dir, reporter);
        return run.step("commit", committing).await;
    }
    let proposing = commit::propose(workspace, cluster_dir, reporter);
    let (proposed, sync_manifest) = run.step("commit", proposing).await?;
    let cancel = run.cancel().clone();
    let merge = await_merge::run(proposed, options.timeout, reporter, &cancel);
    let (workspace, head) = run.step("await-merge", merge).await?;
    Ok(Committed {
        workspace,
        head,
        sync_manifest,
    })
}
