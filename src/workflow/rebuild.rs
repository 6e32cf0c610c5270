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

use super::cluster_up::{ClusterTarget, ClusterUp, apply_connect_and_configure};
use super::flux_up::{FluxTarget, install_sync_and_wait};
use super::phases::detect::{Detected, Situation};
use super::phases::terraform_apply::ApplyPolicy;
use super::phases::{detect, rebuild_preflight};
use super::{EnvPaths, Outcome, Steps};
use crate::cluster::Snapshot;
use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::record::{RunRecord, StepRecord};
use crate::report::Reporter;
use crate::report::short_sha;

/// What the user asked for, validated by the command.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    pub assume_yes: bool,
    pub allow_replace: bool,
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
    let paths = EnvPaths::new(config, &env.name);
    let recorded_uid = RunRecord::load(&paths.record()).and_then(|record| record.cluster_uid);
    let mut record = RunRecord::start(&env.name, "rebuild");
    // Kept while the rebuild runs: a rebuild killed before it learns the new cluster's uid
    // must still tell the next one which cluster the env had.
    record.cluster_uid = recorded_uid.clone();
    let mut steps = Steps::new(reporter, cancel.clone(), record);
    steps.save_start(&paths.record());
    let outcome = drive(
        &mut steps,
        reporter,
        &cancel,
        config,
        env,
        &paths,
        options,
        recorded_uid.as_deref(),
    )
    .await;
    let rto_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if outcome.is_ok() {
        steps.record().rto_ms = Some(rto_ms);
    }
    let record = steps.finish(&outcome, &paths.record());
    let mut result = outcome?;
    result.rto_ms = rto_ms;
    result.steps = record.steps;
    Ok(result)
}

/// The steps, in order.
#[allow(clippy::too_many_arguments)] // the driver's inputs, each used by a step
async fn drive(
    steps: &mut Steps<'_>,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
    config: &Config,
    env: &EnvConfig,
    paths: &EnvPaths,
    options: &RebuildOptions,
    recorded_uid: Option<&str>,
) -> Result<RebuildResult> {
    let binary = options.terraform_binary.as_deref();
    let preflight = rebuild_preflight::run(reporter, config, env, paths, binary);
    let prepared = steps.step("preflight", preflight).await?;
    steps.record().profile = Some(prepared.flux.profile.clone());
    steps.record().commit = Some(prepared.flux.commit.clone());
    steps.record().age_recipient = Some(prepared.age_key.recipient.clone());

    let detect = detect::run(&prepared.terraform, config, env, recorded_uid, cancel);
    let detected: Detected = steps.step("detect", detect).await?;
    // A rebuild never adopts: the cluster is the env's own, or a new one.
    let target = ClusterTarget {
        terraform: &prepared.terraform,
        policy: ApplyPolicy {
            assume_yes: options.assume_yes,
            allow_replace: options.allow_replace,
        },
        read_credentials: &prepared.read_credentials,
        age_key: &prepared.age_key,
        adopt: false,
    };
    let cluster = apply_connect_and_configure(steps, config, env, target, reporter, cancel);
    let ClusterUp { client, uid, .. } = cluster.await?;
    let situation = detected.unwrap_or_else(|| Situation::of_uid(uid.as_deref(), recorded_uid));
    let flux = FluxTarget {
        install: &prepared.flux.install,
        sync_manifest: &prepared.flux.sync_manifest,
        commit: &prepared.flux.commit,
        workspace: prepared.workspace,
        adopting: false,
    };
    let apps =
        install_sync_and_wait(steps, &client, flux, options.timeout, reporter, cancel).await?;
    let summary = async {
        let text = format!(
            "env {} recovered ({}): {}/{} Flux objects Ready",
            env.name,
            situation.describe(),
            apps.ready,
            apps.total
        );
        Ok((Outcome::Done(text), ()))
    };
    steps.step("summary", summary).await?;
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
