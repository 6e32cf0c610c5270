//! create-env from scratch on a fresh cluster (standard profile, the ~1 MB components file),
//! read through its step events and the server's write log: the product's overhead (what is
//! neither Terraform nor the controllers at work) and how long its apply of the components
//! took; and `kubectl apply --server-side` of the same file on another fresh cluster.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use testkit::apiserver::WriteRecord;

use crate::process::{self, Line, millis_between};
use crate::sandbox::{Bench, Cluster, Method};

/// One create-env: the figures and the cluster with its env, for the waiting benchmarks.
pub struct Created {
    pub overhead_ms: f64,
    pub apply_ms: f64,
    pub cluster: Cluster,
    pub env: String,
    pub config: std::path::PathBuf,
}

/// A step as the product reported it, with when its events reached the bench.
struct Step {
    started: SystemTime,
    finished: SystemTime,
    duration_ms: f64,
}

/// With [`Method::Operator`], flux-install applies the operator and the FluxInstance, and the
/// operator installing Flux falls in the controllers' reconciling time.
pub async fn create_env(bench: &Bench, env: &str, method: Method) -> anyhow::Result<Created> {
    let cluster = bench.cluster(env, Some(method)).await?;
    let config = bench.write_config(env, &cluster, method)?;
    let args = ["--output", "json", "create-env", env, "--yes"];
    let running = process::spawn(bench.product(&config, &args))?;
    let (lines, finished) = running.finish().await?;
    anyhow::ensure!(
        finished.code == 0,
        "create-env {env} exited {}: {}",
        finished.code,
        finished.stderr
    );
    let steps = steps(&lines)?;
    let step = |name: &str| steps.get(name).with_context(|| format!("no step {name}"));
    let writes = cluster.admin().writes();
    let (install, sync, wait) = (step("flux-install")?, step("sync")?, step("wait-for-apps")?);
    // flux-install = the apply, then the controllers' Deployments turning Available.
    let within = |w: &&WriteRecord, step: &Step| w.at >= step.started && w.at <= step.finished;
    let applied = writes
        .iter()
        .filter(|w| within(w, install) && !w.resource.ends_with("/status"))
        .map(|w| w.at)
        .max()
        .context("flux-install wrote nothing")?;
    let available = writes
        .iter()
        .filter(|w| within(w, install) && w.resource == "deployments/status")
        .map(|w| w.at)
        .max()
        .unwrap_or(applied);
    let controllers_starting = millis_between(applied, available).max(0.0);
    // From the sync objects' apply to the last status a controller wrote before the tool
    // reported the apps Ready: the controllers reconciling.
    let reconciled = writes
        .iter()
        .filter(|w| w.at >= sync.finished && w.at <= wait.finished)
        .filter(|w| w.resource.ends_with("/status"))
        .map(|w| w.at)
        .max()
        .unwrap_or(sync.finished);
    let reconciling = millis_between(sync.finished, reconciled).max(0.0);
    let terraform = step("terraform")?.duration_ms;
    let wall = finished.wall.as_secs_f64() * 1000.0;
    let overhead_ms = wall - terraform - controllers_starting - reconciling;
    let mut durations: Vec<String> = steps
        .iter()
        .map(|(name, step)| format!("{name} {:.0}", step.duration_ms))
        .collect();
    // What no step accounts for: starting up before the first, exiting after the last.
    let first = steps
        .values()
        .map(|s| s.started)
        .min()
        .unwrap_or(finished.started);
    let last = steps.values().map(|s| s.finished).max().unwrap_or(first);
    durations.push(format!(
        "before the first {:.0}, after the last {:.0}",
        millis_between(finished.started, first),
        wall - millis_between(finished.started, last)
    ));
    eprintln!(
        "   create-env {env} ({method:?}): {wall:.0} ms = overhead {overhead_ms:.0} + Terraform {terraform:.0} \
         + controllers starting {controllers_starting:.0} + reconciling {reconciling:.0}; \
         steps (ms): {}",
        durations.join(", ")
    );
    Ok(Created {
        overhead_ms,
        apply_ms: install.duration_ms - controllers_starting,
        cluster,
        env: env.to_owned(),
        config,
    })
}

/// The step events of a `--output json` run, by step name.
fn steps(lines: &[Line]) -> anyhow::Result<BTreeMap<String, Step>> {
    let mut started = BTreeMap::new();
    let mut steps = BTreeMap::new();
    for line in lines {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line.text) else {
            continue;
        };
        let name = event["step"].as_str().unwrap_or_default().to_owned();
        match event["event"].as_str() {
            Some("step_started") => {
                started.insert(name, line.at);
            }
            Some("step_finished") => {
                let step = Step {
                    started: *started.get(&name).context("a step finished unstarted")?,
                    finished: line.at,
                    duration_ms: event["duration_ms"].as_f64().unwrap_or_default(),
                };
                steps.insert(name, step);
            }
            _ => {}
        }
    }
    Ok(steps)
}

/// Wall time of `kubectl apply --server-side -f <components>` on a fresh cluster.
pub async fn kubectl_apply(bench: &Bench, name: &str) -> anyhow::Result<Duration> {
    let cluster = bench.cluster(name, None).await?;
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["apply", "--server-side", "-f"])
        .arg(&bench.components);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running kubectl (v1.32 on PATH)")?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        output.status.success(),
        "kubectl apply --server-side failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(elapsed)
}
