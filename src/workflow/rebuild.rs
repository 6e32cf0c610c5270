//! rebuild: disaster recovery from Git and Terraform. Everything is checked before anything
//! changes (the committed env, the age key matching its recipient, the committed Flux); then
//! the cluster's situation is said, Terraform applied, Flux installed from the committed
//! components (never newer), config and secrets applied, Flux synced to the committed tip
//! without a new commit, and the apps waited for as create-env does. The time to recovery is
//! in the summary and the run record.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::EnvRun;
use super::cluster_up::{ClusterUp, apply_connect_and_configure};
use super::flux_up::{FluxTarget, install_sync_and_wait};
use super::phases::detect::{Detected, Situation};
use super::phases::terraform_apply::ApplyPolicy;
use super::phases::{detect, rebuild_preflight, summary};
use crate::cluster::Snapshot;
use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::record::StepRecord;
use crate::report::{Reporter, short_sha};

/// What the user asked for, validated by the command.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    pub policy: ApplyPolicy,
    pub timeout: Duration,
    pub terraform_binary: Option<PathBuf>,
}

/// The `result` of rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildResult {
    pub env: String,
    pub situation: Situation,
    pub profile: String,
    pub commit: String,
    pub flux_version: String,
    pub apps: Snapshot,
    /// From the start of the rebuild until every app was Ready.
    pub rto_ms: u64,
    pub steps: Vec<StepRecord>,
}

impl RebuildResult {
    pub fn text(&self) -> String {
        let mut text = format!(
            "env {} rebuilt ({}), RTO {:.1}s: profile {} at {}, Flux {}, {}/{} Flux objects Ready",
            self.env,
            self.situation.describe(),
            self.rto_ms as f64 / 1000.0,
            self.profile,
            short_sha(&self.commit),
            self.flux_version,
            self.apps.ready,
            self.apps.total
        );
        for step in &self.steps {
            text.push_str(&format!("\n  {}", step.summary_line(20)));
        }
        text
    }
}

pub async fn run(
    reporter: &dyn Reporter,
    cancel: CancellationToken,
    config: &Config,
    env: &EnvConfig,
    options: &RebuildOptions,
) -> Result<RebuildResult> {
    let started = Instant::now();
    let mut run = EnvRun::start(reporter, cancel, config, env, "rebuild")?;
    // Kept while the rebuild runs: a rebuild killed before it learns the new cluster's uid
    // must still tell the next one which cluster the env had.
    let recorded_uid = run.previous().and_then(|record| record.cluster_uid.clone());
    run.record().cluster_uid = recorded_uid.clone();
    run.save_start();
    let outcome = drive(&mut run, config, env, options, recorded_uid.as_deref()).await;
    let rto_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if outcome.is_ok() {
        run.record().rto_ms = Some(rto_ms);
    }
    let record = run.finish(&outcome);
    let mut result = outcome?;
    result.rto_ms = rto_ms;
    result.steps = record.steps;
    Ok(result)
}

/// The steps, in order.
async fn drive(
    run: &mut EnvRun<'_>,
    config: &Config,
    env: &EnvConfig,
    options: &RebuildOptions,
    recorded_uid: Option<&str>,
) -> Result<RebuildResult> {
    let (reporter, cancel) = (run.reporter(), run.cancel().clone());
    let binary = options.terraform_binary.as_deref();
    let paths = run.paths().clone();
    let preflight = rebuild_preflight::run(reporter, config, env, &paths, binary);
    let prepared = run.step("preflight", preflight).await?;
    run.record().profile = Some(prepared.flux.profile.clone());
    run.record().commit = Some(prepared.flux.commit.clone());
    run.record_keys(&prepared);

    let detect = detect::run(&prepared.terraform, config, env, recorded_uid, &cancel);
    let detected: Detected = run.step("detect", detect).await?;
    // A rebuild never adopts: the cluster is the env's own, or a new one.
    let version = &prepared.flux.flux_version;
    let cluster =
        apply_connect_and_configure(run, config, env, &prepared, version, options.policy, false);
    let ClusterUp {
        client,
        uid,
        config_reconcile,
        ..
    } = cluster.await?;
    let situation = detected.unwrap_or_else(|| Situation::of_uid(uid.as_deref(), recorded_uid));
    let flux = FluxTarget {
        install: &prepared.flux.install,
        sync_manifest: &prepared.flux.sync_manifest,
        commit: &prepared.flux.commit,
        workspace: prepared.workspace,
        adopting: false,
        config_reconcile,
    };
    let apps = install_sync_and_wait(run, &client, flux, options.timeout).await?;
    let summary = summary::rebuilt(&env.name, situation, &apps);
    run.step("summary", summary).await?;
    Ok(RebuildResult {
        env: env.name.clone(),
        situation,
        profile: prepared.flux.profile,
        commit: prepared.flux.commit,
        flux_version: prepared.flux.flux_version,
        apps,
        rto_ms: 0,
        steps: Vec::new(),
    })
}
