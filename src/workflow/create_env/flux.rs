//! The cluster side of create-env: config and secrets, the Flux components, the sync objects,
//! and the wait for the runtime apps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::commit::{short, sync_manifest};
use super::{Context, require};
use crate::cluster::bootstrap::apply_bootstrap_objects;
use crate::cluster::wait::conditions::WantedRevision;
use crate::cluster::wait::wait_for_apps as watch_apps;
use crate::cluster::{
    ApplyOutcome, ApplySummary, BootstrapInputs, FLUX_NAMESPACE, ObjectName, Snapshot, SopsAgeKey,
    WaitTarget, flux,
};
use crate::error::Result;
use crate::gitops::Workspace;
use crate::workflow::Outcome;

/// How long Flux's controller Deployments get to become Available.
const CONTROLLERS_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn config_and_secrets(ctx: &mut Context<'_>) -> Result<Outcome> {
    let client = require(&ctx.client, "the cluster client")?;
    let age_key = require(&ctx.age_key, "the age key")?;
    let sops = SopsAgeKey {
        env_name: ctx.env.name.clone(),
        identity: age_key.identity.clone(),
    };
    let inputs = BootstrapInputs {
        contract: require(&ctx.contract, "the output contract")?,
        git: require(&ctx.read_credentials, "Flux's read credentials")?,
        age_key: &sops,
    };
    let summary = apply_bootstrap_objects(client, inputs).await?;
    Ok(applied("objects", &summary))
}

pub async fn install(ctx: &mut Context<'_>) -> Result<Outcome> {
    let client = require(&ctx.client, "the cluster client")?;
    let components = require(&ctx.components, "the Flux components")?;
    let summary = flux::install(client, components, CONTROLLERS_TIMEOUT).await?;
    Ok(applied(
        &format!("Flux {} objects", components.version),
        &summary,
    ))
}

pub async fn sync(ctx: &mut Context<'_>) -> Result<Outcome> {
    let client = require(&ctx.client, "the cluster client")?;
    let manifest = sync_manifest(ctx)?;
    let pushed = require(&ctx.commit, "the pushed commit")?;
    // A newer commit than ours is not worth a lookup here: it only costs a reconcile request.
    let wanted = WantedRevision {
        sha: pushed,
        is_descendant: &|_| false,
    };
    let summary = flux::sync(client, &manifest, &wanted).await?;
    Ok(match applied("sync objects", &summary.applied) {
        outcome if !summary.reconcile_requested => outcome,
        Outcome::Done(text) | Outcome::UpToDate(text) => {
            Outcome::Done(format!("{text}; reconcile of {} requested", short(pushed)))
        }
    })
}

/// Watches the GitRepository reach the pushed commit, the root Kustomization apply it, and
/// every Kustomization and HelmRelease it leads to become Ready.
pub async fn wait_for_apps(ctx: &mut Context<'_>) -> Result<Outcome> {
    let client = require(&ctx.client, "the cluster client")?.clone();
    let pushed = require(&ctx.commit, "the pushed commit")?.clone();
    let workspace = Arc::new(Mutex::new(ctx.take_workspace()?));
    let target = WaitTarget {
        root: ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE),
        git_repository: ObjectName::namespaced("GitRepository", FLUX_NAMESPACE, FLUX_NAMESPACE),
        revision_sha: pushed.clone(),
        is_descendant: descends_from(Arc::clone(&workspace), pushed.clone()),
    };
    let reporter = ctx.reporter;
    let mut last_line = String::new();
    let on_progress = |snapshot: &Snapshot| {
        let line = progress_line(snapshot);
        // Snapshots also change in details a progress line does not show.
        if line != last_line {
            reporter.counted_progress(
                "wait-for-apps",
                line.clone(),
                snapshot.ready as u64,
                snapshot.total as u64,
            );
            last_line = line;
        }
    };
    let waited = tokio::select! {
        waited = watch_apps(&client, target, ctx.options.timeout, on_progress) => waited,
        () = ctx.cancel.cancelled() => {
            return Err(crate::Error::new(crate::ExitStatus::Interrupted, "interrupted while waiting for the runtime apps")
                .with_hint("rerun the same command: nothing is redone, the wait picks up"));
        }
    };
    if let Ok(mutex) = Arc::try_unwrap(workspace) {
        ctx.workspace = mutex.into_inner().ok();
    }
    let snapshot = waited?;
    let summary = format!(
        "{}/{} Ready at {}",
        snapshot.ready,
        snapshot.total,
        short(&pushed)
    );
    ctx.snapshot = Some(snapshot);
    Ok(Outcome::Done(summary))
}

/// Someone may push after us: a commit that descends from ours counts as ours applied.
fn descends_from(
    workspace: Arc<Mutex<Workspace>>,
    pushed: String,
) -> Box<dyn Fn(&str) -> bool + Send + Sync> {
    Box::new(move |sha: &str| {
        workspace
            .lock()
            .ok()
            .and_then(|mut repo| repo.is_ancestor(&pushed, sha).ok())
            .unwrap_or(false)
    })
}

/// What the wait is on, briefly: the first few objects not Ready and why.
fn progress_line(snapshot: &Snapshot) -> String {
    let waiting: Vec<String> = snapshot
        .rows
        .iter()
        .filter(|row| !row.readiness.is_ready())
        .take(3)
        .map(|row| format!("{} ({})", row.object.name, row.readiness.reason()))
        .collect();
    if waiting.is_empty() {
        "all Ready".to_owned()
    } else {
        format!("waiting on {}", waiting.join(", "))
    }
}

fn applied(what: &str, summary: &ApplySummary) -> Outcome {
    if summary.is_up_to_date() {
        return Outcome::UpToDate(format!("{} {what} unchanged", summary.objects.len()));
    }
    Outcome::Done(format!(
        "{what}: {} created, {} changed, {} unchanged",
        summary.count(ApplyOutcome::Created),
        summary.count(ApplyOutcome::Changed),
        summary.count(ApplyOutcome::Unchanged)
    ))
}
