//! `status <env>`: the readiness tree of the env's Flux objects, read through the env's
//! Terraform outputs (changing nothing): once, or with `--wait` watched until it is Ready;
//! with `--drift`, what differs from Terraform's state, the branch tip and what Flux applied.

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env};
use crate::cli::{Cli, StatusArgs};
use crate::cluster::Snapshot;
use crate::error::{ExitStatus, Result};
use crate::report::{Reporter, short_sha};
use crate::workflow::drift::{self, Drift};
use crate::workflow::status;

pub async fn run(
    cli: &Cli,
    args: &StatusArgs,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.target.env)?;
    let terraform = args.target.terraform.as_deref();
    if args.drift {
        let drift = drift::run(reporter, &config, &env, terraform, cancel).await?;
        let status = if drift.drifted {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        };
        return Ok(CommandOutput::new(status, &drift, drift_text(&drift)));
    }
    let wait = args.wait.then_some(args.timeout);
    let snapshot = status::run(reporter, &config, &env, terraform, wait, cancel).await?;
    let status = if snapshot.all_ready() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    let text = table(&env.name, &snapshot);
    Ok(CommandOutput::new(status, &snapshot, text))
}

/// One line per finding, grouped by what it was compared with.
fn drift_text(drift: &Drift) -> String {
    let tip = short_sha(&drift.branch_tip);
    let mut text = format!(
        "env {}: {}",
        drift.env,
        if drift.drifted { "drifted" } else { "no drift" }
    );
    let terraform = &drift.terraform;
    if terraform.is_clean() {
        text.push_str("\n  ✔ terraform: the resources match the state");
    }
    for address in &terraform.drifted {
        text.push_str(&format!(
            "\n  ✘ terraform: {address} changed outside Terraform"
        ));
    }
    if terraform.outputs_change {
        text.push_str("\n  ✘ terraform: outputs differ from the last apply");
    }
    let flux = &drift.flux;
    if flux.behind.is_empty() {
        text.push_str(&format!(
            "\n  ✔ flux: everything applied {tip} (branch tip)"
        ));
    }
    for behind in &flux.behind {
        let at = behind.revision.as_deref().map_or("nothing yet", short_sha);
        text.push_str(&format!(
            "\n  ✘ flux: {} is at {at}, not at the branch tip {tip}",
            behind.object
        ));
    }
    for object in &flux.suspended {
        text.push_str(&format!("\n  ✘ flux: {object} is suspended"));
    }
    if let Some(instance) = &flux.instance {
        text.push_str(&format!(
            "\n  ✘ flux: {} is not Ready ({}): {}",
            instance.object, instance.reason, instance.message
        ));
    }
    if flux.changed.is_empty() && flux.missing.is_empty() {
        text.push_str("\n  ✔ live objects: as Flux applied them");
    }
    for changed in &flux.changed {
        let by = match &changed.applied_by {
            Some(kustomization) => format!("applied by {kustomization}"),
            None => "gitops-bootstrap's own: create-env or rebuild takes it back".to_owned(),
        };
        text.push_str(&format!(
            "\n  ✘ live: {} changed by {} ({}; {by})",
            changed.object,
            changed.manager,
            changed.fields.join(", "),
        ));
    }
    for object in &flux.missing {
        text.push_str(&format!("\n  ✘ live: {object} was deleted"));
    }
    for stale in &flux.stale_config {
        let applied = stale
            .applied_at
            .as_deref()
            .map_or("never".to_owned(), |at| format!("last at {at}"));
        text.push_str(&format!(
            "\n  ✘ flux: {} has not applied {} as changed at {} (applied {applied})",
            stale.kustomization, stale.source, stale.changed_at
        ));
    }
    text
}

/// One aligned row per object: name, state, what it waits on.
fn table(env: &str, snapshot: &Snapshot) -> String {
    let names: Vec<String> = snapshot
        .rows
        .iter()
        .map(|row| row.object.to_string())
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let mut text = format!("env {env}: {}/{} Ready\n", snapshot.ready, snapshot.total);
    for (row, name) in snapshot.rows.iter().zip(&names) {
        let mark = if row.readiness.is_ready() {
            "✔"
        } else {
            "✘"
        };
        text.push_str(&format!("  {mark} {name:<width$}  {}", row.readiness));
        if !row.waiting_on.is_empty() {
            let waiting: Vec<String> = row.waiting_on.iter().map(ToString::to_string).collect();
            text.push_str(&format!("  (waits on {})", waiting.join(", ")));
        }
        text.push('\n');
    }
    text.trim_end().to_owned()
}
