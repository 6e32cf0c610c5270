//! teardown: an env removed in an order that orphans nothing — what will go is read and
//! confirmed first, then Flux stops syncing, the apps go (their finalizers uninstall what they
//! made), then what owns cloud resources in the env's namespaces, then Flux (by the manifest
//! the env applied), then Terraform's resources, then the tool's files in `clusters/<env>/` and
//! the local state. The age key stays, and so does what is not the env's (listed).
//! Each step observes first, so a rerun after a kill finishes the job and a run on a removed
//! env has nothing to do; a cluster that is gone goes straight to `terraform destroy`.

use std::path::PathBuf;
use std::time::Duration;

use kube::Client;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::phases::{
    await_merge, cloud_resources, delete_apps, flux_uninstall, observe, remove_from_git, scope,
    skipped, terraform_destroy,
};
use super::{EnvPaths, Outcome, Steps};
use crate::cluster::ObjectName;
use crate::cluster::teardown::Leftover;
use crate::config::{Config, EnvConfig};
use crate::error::{Error, Result};
use crate::keys::KeyStore;
use crate::record::{RunRecord, StepRecord};
use crate::report::Reporter;

/// What the user asked for, validated by the command.
#[derive(Debug, Clone)]
pub struct TeardownOptions {
    /// `--yes`: no typed confirmation.
    pub assume_yes: bool,
    /// Leave leftovers behind instead of stopping.
    pub force: bool,
    /// Keep `clusters/<env>/` in Git.
    pub keep_repo: bool,
    /// Pull-request mode: propose the removal on the proposal branch and wait for the merge.
    pub via_branch: bool,
    /// How long each deletion may take.
    pub timeout: Duration,
    pub terraform_binary: Option<PathBuf>,
}

/// The `result` of teardown.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TeardownResult {
    pub env: String,
    /// Everything removed, as `Kind namespace/name`, Terraform addresses and Git paths.
    pub removed: Vec<String>,
    pub leftovers: Vec<Leftover>,
    /// LoadBalancer Services and PVCs outside the env's namespaces: not the env's.
    pub left_alone: Vec<ObjectName>,
    /// Flux objects still deleting at the deadline whose finalizers `--force` removed.
    pub finalizers_removed: Vec<ObjectName>,
    /// The user's entries of `clusters/<env>/`, which stay.
    pub kept_in_git: Vec<String>,
    /// The age key, kept: a rebuild of the env would need it.
    pub age_key_file: Option<PathBuf>,
    pub steps: Vec<StepRecord>,
}

impl TeardownResult {
    pub fn text(&self) -> String {
        let mut text = if self.removed.is_empty() {
            format!("env {}: nothing to tear down", self.env)
        } else {
            format!("env {} torn down: {} removed", self.env, self.removed.len())
        };
        for step in &self.steps {
            text.push_str(&format!("\n  {}", step.summary_line(24)));
        }
        for leftover in &self.leftovers {
            text.push_str(&format!(
                "\n  left behind: {} (finalizers: {}, age {}s)",
                leftover.object,
                leftover.finalizers.join(", "),
                leftover.age_seconds
            ));
        }
        for object in &self.finalizers_removed {
            text.push_str(&format!("\n  finalizers removed (--force): {object}"));
        }
        for object in &self.left_alone {
            text.push_str(&format!("\n  left alone (not the env's): {object}"));
        }
        for entry in &self.kept_in_git {
            text.push_str(&format!("\n  kept in Git (the user's): {entry}"));
        }
        if let Some(key) = &self.age_key_file {
            text.push_str(&format!("\n  age key kept at {}", key.display()));
        }
        text
    }
}

pub async fn run(
    reporter: &dyn Reporter,
    cancel: CancellationToken,
    config: &Config,
    env: &EnvConfig,
    options: &TeardownOptions,
) -> Result<TeardownResult> {
    let paths = EnvPaths::new(config, &env.name);
    let mut steps = Steps::new(
        reporter,
        cancel.clone(),
        RunRecord::start(&env.name, "teardown"),
    );
    steps.save_start(&paths.record());
    let outcome = drive(&mut steps, reporter, &cancel, config, env, &paths, options).await;
    let record = steps.finish(&outcome, &paths.record());
    let mut result = outcome?;
    result.steps = record.steps;
    // The record went with the state; an env removed leaves nothing in the state dir.
    if paths.root().exists() {
        // Renamed away first: a run killed while the files go leaves no half-removed working
        // clone for the next run to refuse.
        let doomed = paths
            .root()
            .with_extension(format!("removing-{}", std::process::id()));
        let removed =
            std::fs::rename(paths.root(), &doomed).and_then(|()| std::fs::remove_dir_all(&doomed));
        removed.map_err(|err| {
            Error::failure(format!(
                "failed to remove the local state {}: {err}",
                paths.root().display()
            ))
        })?;
    }
    Ok(result)
}

/// suspend-sync, delete-apps, delete-cloud-resources and flux-uninstall: within what the
/// scope step read, and skipped when the cluster is not reachable.
async fn clear_cluster(
    steps: &mut Steps<'_>,
    reporter: &dyn Reporter,
    options: &TeardownOptions,
    client: Option<&Client>,
    scope: &scope::Scope,
    result: &mut TeardownResult,
) -> Result<()> {
    const GONE: &str = "the cluster is not reachable: nothing to remove from it";
    let (Some(client), Some(cluster), Some(flux)) = (client, &scope.cluster, &scope.flux) else {
        steps.step::<()>("suspend-sync", skipped(GONE)).await?;
        steps.step::<()>("delete-apps", skipped(GONE)).await?;
        steps
            .step::<()>("delete-cloud-resources", skipped(GONE))
            .await?;
        steps.step::<()>("flux-uninstall", skipped(GONE)).await?;
        return Ok(());
    };
    steps
        .step("suspend-sync", delete_apps::suspend(client))
        .await?;
    let apps = delete_apps::run(client, options.timeout, options.force, reporter);
    let apps = steps.step("delete-apps", apps).await?;
    result.removed.extend(apps.deleted);
    result.finalizers_removed = apps.finalizers_removed;
    let owners = cloud_resources::run(
        client,
        options.timeout,
        options.force,
        reporter,
        &apps.namespaces,
        &cluster.namespaces,
    );
    let cloud = steps.step("delete-cloud-resources", owners).await?;
    result.removed.extend(cloud.removed);
    result.leftovers.extend(cloud.leftovers);
    result.left_alone = cloud.left_alone;
    let uninstall = flux_uninstall::run(client, flux, options.timeout, options.force, reporter);
    let left = steps.step("flux-uninstall", uninstall).await?;
    result.leftovers.extend(left);
    Ok(())
}

/// The steps, in order.
async fn drive(
    steps: &mut Steps<'_>,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
    config: &Config,
    env: &EnvConfig,
    paths: &EnvPaths,
    options: &TeardownOptions,
) -> Result<TeardownResult> {
    let binary = options.terraform_binary.as_deref();
    let proposing = options.via_branch && !options.keep_repo;
    let observe = observe::run(reporter, config, env, paths, binary, proposing, cancel);
    let observed = steps.step("observe", observe).await?;
    let client = observed.client.as_ref();
    let seen = scope::Seen {
        client,
        workspace: &observed.workspace,
        has_state: observed.has_state,
    };
    let scoping = scope::run(seen, env, options.assume_yes, reporter);
    let scope = steps.step("scope", scoping).await?;
    let mut result = TeardownResult {
        env: env.name.clone(),
        ..TeardownResult::default()
    };

    clear_cluster(steps, reporter, options, client, &scope, &mut result).await?;

    // Confirmed at the scope step (or --yes): the destroy is part of what was confirmed.
    let destroy = terraform_destroy::run(
        &observed.terraform,
        &observed.root,
        env,
        true,
        reporter,
        cancel,
    );
    result
        .removed
        .extend(steps.step("terraform-destroy", destroy).await?);

    if options.keep_repo || !observed.in_git {
        let reason = if options.keep_repo {
            "kept (--keep-repo)"
        } else {
            "nothing in Git"
        };
        steps.step::<()>("remove-from-git", skipped(reason)).await?;
    } else if options.via_branch {
        let removal = remove_from_git::propose(observed.workspace, env, reporter);
        let proposed = steps.step("remove-from-git", removal).await?;
        let merge = await_merge::run(proposed, options.timeout, reporter, cancel);
        steps.step("await-merge", merge).await?;
        result.removed.extend(scope.git.tool_files);
        result.kept_in_git = scope.git.kept;
    } else {
        let removal = remove_from_git::run(observed.workspace, env);
        let removed = steps.step("remove-from-git", removal).await?;
        result.removed.extend(removed.files);
        result.kept_in_git = removed.kept;
    }

    let age_key_file = KeyStore::from_env().locate(&env.name).ok();
    if let Some(key) = &age_key_file {
        reporter.notice(format!(
            "the age key of env {} is kept at {}: a rebuild would need it; delete it yourself once nothing encrypted for it matters",
            env.name,
            key.display()
        ));
    }
    let summary = async {
        let text = format!(
            "{} removed, {} left behind",
            result.removed.len(),
            result.leftovers.len()
        );
        Ok((Outcome::Done(text), ()))
    };
    steps.step("summary", summary).await?;
    result.age_key_file = age_key_file;
    Ok(result)
}
