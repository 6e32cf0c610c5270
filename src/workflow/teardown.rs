//! teardown: an env removed in an order that orphans nothing — Flux stops syncing, the apps go
//! (their finalizers uninstall what they made), then what owns cloud resources, then Flux, then
//! Terraform's resources, then `clusters/<env>/` in Git and the local state. The age key stays.
//! Each step observes first, so a rerun after a kill finishes the job and a run on a removed
//! env has nothing to do; a cluster that is gone goes straight to `terraform destroy`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::phases::{
    await_merge, cloud_resources, delete_apps, flux_uninstall, observe, remove_from_git, skipped,
    terraform_destroy,
};
use super::{EnvPaths, Outcome, Steps};
use crate::cluster::teardown::Leftover;
use crate::config::{Config, EnvConfig};
use crate::error::{Error, Result};
use crate::keys::KeyStore;
use crate::record::{RunRecord, StepRecord};
use crate::report::Reporter;

/// What the user asked for, validated by the command.
#[derive(Debug, Clone)]
pub struct TeardownOptions {
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
    let mut removed = Vec::new();
    let mut leftovers = Vec::new();

    const GONE: &str = "the cluster is not reachable: nothing to remove from it";
    if let Some(client) = &observed.client {
        steps
            .step("suspend-sync", delete_apps::suspend(client))
            .await?;
        let apps = delete_apps::run(client, options.timeout);
        let (deleted_apps, namespaces) = steps.step("delete-apps", apps).await?;
        removed.extend(deleted_apps);
        let owners = cloud_resources::run(
            client,
            options.timeout,
            options.force,
            reporter,
            &namespaces,
        );
        let (deleted, left) = steps.step("delete-cloud-resources", owners).await?;
        removed.extend(deleted);
        leftovers.extend(left);
        let uninstall = flux_uninstall::run(client, options.timeout, reporter);
        steps.step("flux-uninstall", uninstall).await?;
    } else {
        steps.step::<()>("suspend-sync", skipped(GONE)).await?;
        steps.step::<()>("delete-apps", skipped(GONE)).await?;
        steps
            .step::<()>("delete-cloud-resources", skipped(GONE))
            .await?;
        steps.step::<()>("flux-uninstall", skipped(GONE)).await?;
    }

    let destroy = terraform_destroy::run(
        &observed.terraform,
        &observed.root,
        env,
        options.assume_yes,
        reporter,
        cancel,
    );
    removed.extend(steps.step("terraform-destroy", destroy).await?);

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
        removed.push(format!(
            "{}/",
            crate::render::cluster_dir(&env.repository.path, &env.name)
        ));
    } else {
        let removal = remove_from_git::run(observed.workspace, env);
        if steps.step("remove-from-git", removal).await?.is_some() {
            removed.push(format!(
                "{}/",
                crate::render::cluster_dir(&env.repository.path, &env.name)
            ));
        }
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
        let text = format!("{} removed, {} left behind", removed.len(), leftovers.len());
        Ok((Outcome::Done(text), ()))
    };
    steps.step("summary", summary).await?;
    Ok(TeardownResult {
        env: env.name.clone(),
        removed,
        leftovers,
        age_key_file,
        steps: Vec::new(),
    })
}
