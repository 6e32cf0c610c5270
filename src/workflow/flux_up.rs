//! The tail create-env and rebuild share: Flux installed from the given components, synced to
//! the given commit, and every runtime app Ready — three named steps under one deadline, so
//! `--timeout` bounds the controllers' wait and the apps' wait together.

use std::time::Duration;

use kube::Client;

use super::EnvRun;
use super::phases::wait_for_apps::Budget;
use super::phases::{flux_install, sync, wait_for_apps};
use crate::cluster::substituted::ConfigReconcile;
use crate::cluster::{Installation, Snapshot};
use crate::error::Result;
use crate::gitops::Workspace;

/// What Flux is brought up with: what to install and the commit to sync.
pub struct FluxTarget<'a> {
    pub install: &'a Installation,
    /// What declares the sync as committed at `commit`: gotk-sync.yaml or the FluxInstance.
    pub sync_manifest: &'a str,
    pub commit: &'a str,
    /// The clone holding `commit`, to recognise commits pushed after it.
    pub workspace: Workspace,
    /// The cluster was bootstrapped by another tool and is taken over (`--adopt`).
    pub adopting: bool,
    /// The Kustomizations asked to apply changed config, each Ready only once it did.
    pub config_reconcile: ConfigReconcile,
}

/// Runs the steps flux-install, sync and wait-for-apps; returns the apps' last snapshot.
pub async fn install_sync_and_wait(
    run: &mut EnvRun<'_>,
    client: &Client,
    target: FluxTarget<'_>,
    timeout: Duration,
) -> Result<Snapshot> {
    let (reporter, cancel) = (run.reporter(), run.cancel().clone());
    let budget = Budget::from_now(timeout);
    let install = flux_install::run(
        client,
        target.install,
        target.sync_manifest,
        timeout,
        target.adopting,
    );
    run.step("flux-install", install).await?;
    let sync = sync::run(
        client,
        target.install,
        target.sync_manifest,
        target.commit,
        target.adopting,
    );
    run.step("sync", sync).await?;
    let pushed = wait_for_apps::Pushed {
        workspace: target.workspace,
        commit: target.commit,
        config_reconcile: target.config_reconcile,
    };
    let wait = wait_for_apps::run(
        client,
        Some(target.install),
        Some(pushed),
        "wait-for-apps",
        budget,
        reporter,
        &cancel,
    );
    run.step("wait-for-apps", wait).await
}
