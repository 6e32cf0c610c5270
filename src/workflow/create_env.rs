//! create-env: from a config entry to Ready runtime apps, as nine named steps. Nothing is
//! committed before the cluster took its config and secrets, and Flux is applied only once the
//! commit it will sync is on the remote.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::cluster_up::{ClusterTarget, ClusterUp, apply_connect_and_configure};
use super::flux_up::{FluxTarget, install_sync_and_wait};
use super::phases::commit::ClusterDirInputs;
use super::phases::preflight::PreflightInputs;
use super::phases::terraform_apply::ApplyPolicy;
use super::phases::{await_merge, commit, hand_over, preflight, summary};
use super::{EnvPaths, Steps};
use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::record::RunRecord;
use crate::report::Reporter;

pub use super::phases::summary::CreateEnvResult;

/// What the user asked for, validated by the command.
#[derive(Debug, Clone)]
pub struct CreateEnvOptions {
    pub profile: String,
    pub assume_yes: bool,
    pub allow_replace: bool,
    pub change_profile: bool,
    pub skip_lint: bool,
    /// Take over a cluster another tool bootstrapped.
    pub adopt: bool,
    /// Pull-request mode: commit to the proposal branch and wait for the merge.
    pub via_branch: bool,
    pub timeout: Duration,
    pub flux_manifests: Option<String>,
    pub terraform_binary: Option<PathBuf>,
}

/// Runs create-env and keeps its run record (`<state_dir>/<env>/run.json`), also on failure.
pub async fn run(
    reporter: &dyn Reporter,
    cancel: CancellationToken,
    config: &Config,
    env: &EnvConfig,
    options: &CreateEnvOptions,
) -> Result<CreateEnvResult> {
    let paths = EnvPaths::new(config, &env.name);
    let mut record = RunRecord::start(&env.name, "create-env");
    // Kept until connect learns it again, so a run killed before then leaves a record that
    // still names the env's cluster for a later rebuild.
    record.cluster_uid = RunRecord::load(&paths.record()).and_then(|record| record.cluster_uid);
    record.profile = Some(options.profile.clone());
    let mut steps = Steps::new(reporter, cancel.clone(), record);
    steps.save_start(&paths.record());
    let outcome = drive(&mut steps, reporter, &cancel, config, env, &paths, options).await;
    steps.finish(&outcome, &paths.record());
    outcome
}

/// The hand-over step, only in the run that changes the install method: before the commit.
async fn hand_over_if_changed(
    steps: &mut Steps<'_>,
    client: &kube::Client,
    cluster_dir: &ClusterDirInputs<'_>,
    timeout: Duration,
    adopting: bool,
) -> Result<()> {
    if !cluster_dir.install.needs_hand_over(client).await? {
        return Ok(());
    }
    let planned = commit::planned_sync_manifest(cluster_dir)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let handing = hand_over::run(client, cluster_dir.install, &planned, deadline, adopting);
    steps.step("hand-over", handing).await
}

/// The steps, in order, each handing its typed result to the ones after it.
async fn drive(
    steps: &mut Steps<'_>,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
    config: &Config,
    env: &EnvConfig,
    paths: &EnvPaths,
    options: &CreateEnvOptions,
) -> Result<CreateEnvResult> {
    let preflight_inputs = PreflightInputs {
        reporter,
        config,
        env,
        paths,
        profile: &options.profile,
        change_profile: options.change_profile,
        skip_lint: options.skip_lint,
        flux_manifests: options.flux_manifests.as_deref(),
        terraform_binary: options.terraform_binary.as_deref(),
        via_branch: options.via_branch,
    };
    let prepared = steps
        .step("preflight", preflight::run(preflight_inputs))
        .await?;
    steps.record().age_recipient = Some(prepared.age_key.recipient.clone());
    steps.record().deploy_key = prepared
        .deploy_key
        .as_ref()
        .map(|k| k.public_openssh.clone());

    let target = ClusterTarget {
        terraform: &prepared.terraform,
        policy: ApplyPolicy {
            assume_yes: options.assume_yes,
            allow_replace: options.allow_replace,
        },
        read_credentials: &prepared.read_credentials,
        age_key: &prepared.age_key,
        adopt: options.adopt,
    };
    let cluster = apply_connect_and_configure(steps, config, env, target, reporter, cancel);
    let ClusterUp {
        contract,
        client,
        adopting,
        ..
    } = cluster.await?;

    let cluster_dir = ClusterDirInputs {
        env,
        profile: &options.profile,
        install: &prepared.flux,
        age_recipient: &prepared.age_key.recipient,
    };
    hand_over_if_changed(steps, &client, &cluster_dir, options.timeout, adopting).await?;
    let committed = if options.via_branch {
        let proposing = commit::propose(prepared.workspace, cluster_dir, reporter);
        let (proposed, sync_manifest) = steps.step("commit", proposing).await?;
        let merge = await_merge::run(proposed, options.timeout, reporter, cancel);
        let (workspace, head) = steps.step("await-merge", merge).await?;
        commit::Committed {
            workspace,
            head,
            sync_manifest,
        }
    } else {
        let committing = commit::run(prepared.workspace, cluster_dir, reporter);
        steps.step("commit", committing).await?
    };
    steps.record().commit = Some(committed.head.clone());

    let flux = FluxTarget {
        install: &prepared.flux,
        sync_manifest: &committed.sync_manifest,
        commit: &committed.head,
        workspace: committed.workspace,
        adopting,
    };
    let apps =
        install_sync_and_wait(steps, &client, flux, options.timeout, reporter, cancel).await?;

    let result = CreateEnvResult {
        env: env.name.clone(),
        profile: options.profile.clone(),
        cluster_name: contract.cluster_name.clone(),
        repository: env.repository.url.clone(),
        branch: env.repository.branch.clone(),
        commit: committed.head,
        flux_version: env.flux_version.clone(),
        age_recipient: prepared.age_key.recipient.clone(),
        age_key_file: prepared.age_key.path.clone(),
        deploy_key: prepared.deploy_key.map(|key| key.public_openssh),
        kubectl_access: summary::kubectl_access(
            &env.name,
            &env.outputs,
            prepared.terraform.flavor(),
            &if env.in_place {
                env.module.clone()
            } else {
                paths.terraform()
            },
            &contract.access,
            contract.ca_certificate_base64,
        ),
        apps,
    };
    steps
        .step("summary", summary::run(reporter, &result))
        .await?;
    Ok(result)
}
