//! teardown: an env removed in an order that orphans nothing — what will go is read and
//! confirmed first, then Flux stops syncing, the apps go (their finalizers uninstall what they
//! made), then what owns cloud resources in the env's namespaces, then Flux (by the manifest
//! the env applied), then Terraform's resources, then the tool's files in `clusters/<env>/` and
//! the local state. The age key stays, and so does what is not the env's (listed).
//! The first step checks all the run needs and asks [`reach`](super::phases::reach) whose
//! cluster it is: only the env's own is read and emptied; another env's stops the run before
//! any deletion (or, with `--leave-cluster`, is left as it is); refused credentials stop it; a
//! cluster Terraform shows gone goes straight to `terraform destroy`. Each step observes first,
//! so a rerun after a kill finishes the job and a run on a removed env has nothing to do.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::EnvRun;
use super::phases::reach::{Cleared, OwnCluster};
use super::phases::remove_from_git::{GitScope, Removed};
use super::phases::scope::{ClusterPlan, ClusterRead, Scope};
use super::phases::{
    await_merge, cloud_resources, delete_apps, flux_uninstall, observe, remove_from_git, scope,
    skipped, summary, suspend_sync, terraform_destroy,
};
use crate::cluster::ObjectName;
use crate::cluster::teardown::Leftover;
use crate::config::{Config, EnvConfig};
use crate::error::{Error, Result};
use crate::gitops::Workspace;
use crate::record::StepRecord;
use crate::report::Reporter;

/// What the user asked for, validated by the command.
#[derive(Debug, Clone)]
pub struct TeardownOptions {
    /// `--yes`: no typed confirmation.
    pub assume_yes: bool,
    /// Leave leftovers behind instead of stopping, and go on when the cluster never answers.
    pub force: bool,
    /// Leave the cluster as it is (another env's, say): only Terraform and Git are torn down.
    pub leave_cluster: bool,
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
    let mut run = EnvRun::start(reporter, cancel, config, env, "teardown")?;
    run.save_start();
    let paths = run.paths().clone();
    let outcome = drive(&mut run, config, env, options).await;
    let record = run.finish(&outcome);
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

/// The steps, in order: the cluster is read and emptied only when observe proved it the env's
/// own, and Terraform destroys only once the cluster is cleared.
async fn drive(
    run: &mut EnvRun<'_>,
    config: &Config,
    env: &EnvConfig,
    options: &TeardownOptions,
) -> Result<TeardownResult> {
    let (reporter, cancel) = (run.reporter(), run.cancel().clone());
    let paths = run.paths().clone();
    let observe = observe::run(config, env, &paths, options, &cancel);
    let observed = run.step("observe", observe).await?;
    let seen = scope::Seen {
        cluster: observed.cluster,
        workspace: observed.repository.as_ref().map(|(workspace, _)| workspace),
        has_state: observed.has_state,
    };
    let scoping = scope::run(seen, env, options.assume_yes, reporter);
    let Scope { cluster, git, .. } = run.step("scope", scoping).await?;
    let mut result = TeardownResult {
        env: env.name.clone(),
        ..TeardownResult::default()
    };
    let cleared = clear_cluster(run, options, env, cluster, &mut result).await?;
    // Confirmed at the scope step (or --yes): the destroy is part of what was confirmed.
    let destroy = terraform_destroy::run(
        &cleared,
        &observed.terraform,
        &observed.root,
        env,
        true,
        reporter,
        &cancel,
    );
    result
        .removed
        .extend(run.step("terraform-destroy", destroy).await?);
    let git = git.unwrap_or_default();
    let removal = remove_from_repository(run, observed.repository, git, env, options);
    let removed = removal.await?;
    result.removed.extend(removed.files);
    result.kept_in_git = removed.kept;
    let summary = summary::torn_down(reporter, env, &result.removed, &result.leftovers);
    result.age_key_file = run.step("summary", summary).await?;
    Ok(result)
}

/// The steps that delete from the cluster, in order.
const CLUSTER_STEPS: [&str; 4] = [
    "suspend-sync",
    "delete-apps",
    "delete-cloud-resources",
    "flux-uninstall",
];

/// suspend-sync, delete-apps, delete-cloud-resources and flux-uninstall: on the env's own
/// cluster, within what the scope step read there; else skipped, with the reason.
async fn clear_cluster(
    run: &mut EnvRun<'_>,
    options: &TeardownOptions,
    env: &EnvConfig,
    cluster: ClusterPlan,
    result: &mut TeardownResult,
) -> Result<Cleared> {
    match cluster {
        ClusterPlan::Empty { own, read } => empty_cluster(run, *own, &read, options, result).await,
        ClusterPlan::Skip { reason, cleared } => {
            if options.force || options.leave_cluster {
                run.reporter()
                    .warning(format!("env {}: {reason}", env.name));
            }
            for step in CLUSTER_STEPS {
                run.step::<()>(step, skipped(&reason)).await?;
            }
            Ok(cleared)
        }
    }
}

/// Suspends the sync, deletes the apps, what owns cloud resources in the env's namespaces and
/// what the env installed of Flux; returns the cluster, cleared.
async fn empty_cluster(
    run: &mut EnvRun<'_>,
    own: OwnCluster,
    read: &ClusterRead,
    options: &TeardownOptions,
    result: &mut TeardownResult,
) -> Result<Cleared> {
    let reporter = run.reporter();
    let suspend = suspend_sync::run(&own, options.timeout, reporter);
    run.step("suspend-sync", suspend).await?;
    let apps = delete_apps::run(&own, options.timeout, options.force, reporter);
    let apps = run.step("delete-apps", apps).await?;
    result.removed.extend(apps.deleted);
    result.finalizers_removed = apps.finalizers_removed;
    let owners = cloud_resources::run(
        &own,
        options.timeout,
        options.force,
        reporter,
        &apps.namespaces,
        &read.objects.namespaces,
    );
    let cloud = run.step("delete-cloud-resources", owners).await?;
    result.removed.extend(cloud.removed);
    result.leftovers.extend(cloud.leftovers);
    result.left_alone = cloud.left_alone;
    let uninstall = flux_uninstall::run(own, &read.flux, options.timeout, options.force, reporter);
    let (left, cleared) = run.step("flux-uninstall", uninstall).await?;
    result.leftovers.extend(left);
    Ok(cleared)
}

/// remove-from-git (and await-merge in pull-request mode): the tool's files go, the user's stay.
async fn remove_from_repository(
    run: &mut EnvRun<'_>,
    repository: Option<(Workspace, bool)>,
    scope: GitScope,
    env: &EnvConfig,
    options: &TeardownOptions,
) -> Result<Removed> {
    let (reporter, cancel) = (run.reporter(), run.cancel().clone());
    let workspace = match repository {
        None => {
            return run
                .step("remove-from-git", skipped("kept (--keep-repo)"))
                .await;
        }
        Some((_, false)) => {
            return run.step("remove-from-git", skipped("nothing in Git")).await;
        }
        Some((workspace, true)) => workspace,
    };
    if options.via_branch {
        let removal = remove_from_git::propose(workspace, env, reporter);
        let proposed = run.step("remove-from-git", removal).await?;
        let merge = await_merge::run(proposed, options.timeout, reporter, &cancel);
        run.step("await-merge", merge).await?;
        return Ok(Removed {
            files: scope.tool_files,
            kept: scope.kept,
        });
    }
    let removal = remove_from_git::run(workspace, env);
    run.step("remove-from-git", removal).await
}
