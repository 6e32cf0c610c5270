//! wait-for-apps: with the Flux Operator, watches the FluxInstance become Ready first; then
//! watches the GitRepository reach the commit, the root Kustomization apply it, and every
//! Kustomization and HelmRelease it leads to become Ready.

use std::sync::Mutex;
use std::time::Duration;

use kube::Client;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::substituted::ConfigReconcile;
use crate::cluster::wait::conditions::RECONCILE_REQUESTED;
use crate::cluster::wait::wait_for_apps as watch_apps;
use crate::cluster::{FLUX_NAMESPACE, Installation, ObjectName, Snapshot, WaitTarget};
use crate::error::{Error, ExitStatus, Result};
use crate::gitops::Workspace;
use crate::report::Reporter;
use crate::report::short_sha;
use crate::workflow::Outcome;

/// What a run wrote and waits for: the commit it just pushed, with the clone holding it (a
/// commit pushed after it counts as it applied), and the Kustomizations it asked to apply the
/// config it changed. None (`status --wait`): whatever the GitRepository has fetched, looked
/// at again after each change.
pub struct Pushed<'a> {
    pub workspace: Workspace,
    pub commit: &'a str,
    pub config_reconcile: ConfigReconcile,
}

/// How long the wait may take: until `deadline`, which may be what earlier steps left of the
/// `--timeout` the user `gave` — and a timeout is told against what they gave.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub gave: Duration,
    pub deadline: Instant,
}

impl Budget {
    /// All of `gave`, from now.
    pub fn from_now(gave: Duration) -> Budget {
        Budget {
            gave,
            deadline: Instant::now() + gave,
        }
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Waits until `install` (when given) is ready, then every object under the root
/// Kustomization (at `pushed`, when given); progress is reported under `step`.
#[allow(clippy::too_many_arguments)] // the wait's inputs, each its own concern
pub async fn run(
    client: &Client,
    install: Option<&Installation>,
    pushed: Option<Pushed<'_>>,
    step: &'static str,
    budget: Budget,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<(Outcome, Snapshot)> {
    let commit = pushed.as_ref().map(|pushed| pushed.commit.to_owned());
    let (is_descendant, config_reconcile) = match pushed {
        Some(Pushed {
            workspace,
            commit,
            config_reconcile,
        }) => (
            descends_from(workspace, commit.to_owned()),
            config_reconcile,
        ),
        None => (
            Box::new(|_: &str| false) as Box<dyn Fn(&str) -> bool + Send + Sync>,
            ConfigReconcile::default(),
        ),
    };
    let target = WaitTarget {
        root: ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE),
        git_repository: ObjectName::namespaced("GitRepository", FLUX_NAMESPACE, FLUX_NAMESPACE),
        revision_sha: commit.clone(),
        is_descendant,
        config_reconcile,
    };
    let mut last_line = String::new();
    let on_progress = |snapshot: &Snapshot| {
        let line = progress_line(snapshot);
        // Snapshots also change in details a progress line does not show.
        if line != last_line {
            reporter.counted_progress(
                step,
                line.clone(),
                snapshot.ready as u64,
                snapshot.total as u64,
            );
            last_line = line;
        }
    };
    let waited = async {
        if let Some(install) = install {
            install.await_ready(client, budget.left()).await?;
        }
        let watched = watch_apps(client, target, budget.left(), on_progress).await;
        Ok::<_, Error>(watched.map_err(|err| err.against(budget.gave))?)
    };
    let snapshot = tokio::select! {
        waited = waited => waited?,
        () = cancel.cancelled() => {
            return Err(Error::new(ExitStatus::Interrupted, "interrupted while waiting for the runtime apps")
                .with_hint("rerun the same command: nothing is redone, the wait picks up"));
        }
    };
    let mut summary = format!("{}/{} Ready", snapshot.ready, snapshot.total);
    if let Some(commit) = &commit {
        summary.push_str(&format!(" at {}", short_sha(commit)));
    }
    Ok((Outcome::Done(summary), snapshot))
}

/// Someone may push after us: a commit that descends from ours counts as ours applied.
fn descends_from(workspace: Workspace, pushed: String) -> Box<dyn Fn(&str) -> bool + Send + Sync> {
    let workspace = Mutex::new(workspace);
    Box::new(move |sha: &str| {
        workspace
            .lock()
            .ok()
            .and_then(|mut repo| repo.is_ancestor(&pushed, sha).ok())
            .unwrap_or(false)
    })
}

/// What the wait is on, briefly: the first few objects not Ready and why — for a
/// Kustomization asked to apply changed config, what it is to apply.
fn progress_line(snapshot: &Snapshot) -> String {
    let mut applying = Vec::new();
    let mut waiting = Vec::new();
    for row in snapshot
        .rows
        .iter()
        .filter(|row| !row.readiness.is_ready())
        .take(3)
    {
        // "waiting for external-dns to apply the new cluster-config; last result: …"
        let to_apply = (row.readiness.reason() == RECONCILE_REQUESTED)
            .then(|| row.readiness.message().strip_prefix("waiting for "))
            .flatten();
        match to_apply {
            Some(message) => applying.push(message.split(';').next().unwrap_or(message)),
            None => waiting.push(format!("{} ({})", row.object.name, row.readiness.reason())),
        }
    }
    let mut parts = Vec::new();
    if !applying.is_empty() {
        parts.push(format!("for {}", applying.join(", ")));
    }
    if !waiting.is_empty() {
        parts.push(format!("on {}", waiting.join(", ")));
    }
    if parts.is_empty() {
        "all Ready".to_owned()
    } else {
        format!("waiting {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wait::Row;
    use crate::cluster::{ObjectName, Readiness};

    fn row(name: &str, reason: &str, message: &str) -> Row {
        Row {
            object: ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, name),
            readiness: Readiness::Progressing {
                reason: reason.to_owned(),
                message: message.to_owned(),
            },
            waiting_on: Vec::new(),
        }
    }

    #[test]
    fn the_progress_line_says_which_kustomization_is_to_apply_which_config() {
        let snapshot = |rows: Vec<Row>| Snapshot {
            root: ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE),
            ready: 0,
            total: rows.len(),
            rows,
        };
        let external_dns = row(
            "external-dns",
            RECONCILE_REQUESTED,
            "waiting for external-dns to apply the new cluster-config; last result: Progressing: x",
        );
        let cert_manager = row("cert-manager", "DependencyNotReady", "waiting");
        assert_eq!(
            progress_line(&snapshot(vec![external_dns.clone()])),
            "waiting for external-dns to apply the new cluster-config"
        );
        assert_eq!(
            progress_line(&snapshot(vec![cert_manager.clone(), external_dns])),
            "waiting for external-dns to apply the new cluster-config; on cert-manager (DependencyNotReady)"
        );
        assert_eq!(
            progress_line(&snapshot(vec![cert_manager])),
            "waiting on cert-manager (DependencyNotReady)"
        );
    }
}
