//! commit: `clusters/<env>/` rendered from bootstrap/ plus the Flux components exactly as they
//! are applied, committed only when something changed and pushed without force.

use std::time::Duration;

use super::short;
use crate::cluster::Components;
use crate::config::EnvConfig;
use crate::error::{Error, Result};
use crate::gitops::{FileChange, SyncOutcome, Workspace};
use crate::render::{self, RenderInput, cluster_dir};
use crate::workflow::Outcome;
use crate::workflow::git::blocking;

/// Pushes raced by other commits are retried this many times in all, re-rendered on each tip.
const PUSH_ATTEMPTS: u32 = 5;
/// How often Flux looks at the repository.
const SYNC_INTERVAL: &str = "1m";

/// What the env's cluster directory is rendered from.
pub struct ClusterDirInputs<'a> {
    pub env: &'a EnvConfig,
    pub profile: &'a str,
    pub components: &'a Components,
    pub age_recipient: &'a str,
    /// How long Flux gives each apply (the same budget create-env waits).
    pub timeout: Duration,
}

/// The env's branch after the commit step.
pub struct Committed {
    /// The clone, at `head`.
    pub workspace: Workspace,
    /// The commit on the remote branch that holds the cluster directory.
    pub head: String,
    /// gitops-bootstrap's gotk-sync.yaml as committed: the sync step applies exactly this.
    pub sync_manifest: String,
}

pub async fn run(
    mut workspace: Workspace,
    input: ClusterDirInputs<'_>,
) -> Result<(Outcome, Committed)> {
    let files = cluster_files(&input)?;
    let sync_manifest = sync_manifest(input.env, &files)?;
    let message = format!(
        "gitops-bootstrap: create-env {} (profile {})",
        input.env.name, input.profile
    );
    let (workspace, outcome) = blocking(move || {
        let outcome = workspace.sync_files(|_| Ok(files.clone()), &message, PUSH_ATTEMPTS)?;
        Ok((workspace, outcome))
    })
    .await?;
    let repo = &input.env.repository;
    let dir = cluster_dir(&repo.path, &input.env.name);
    let head = outcome.head().to_owned();
    let outcome = match outcome {
        SyncOutcome::UpToDate { head } => {
            Outcome::UpToDate(format!("{dir}/ already at {}", short(&head)))
        }
        SyncOutcome::Pushed { commit, attempts } => Outcome::Done(format!(
            "pushed {} to {}{}",
            short(&commit),
            repo.branch,
            if attempts > 1 {
                format!(" after {attempts} attempts (the branch moved)")
            } else {
                String::new()
            }
        )),
    };
    let committed = Committed {
        workspace,
        head,
        sync_manifest,
    };
    Ok((outcome, committed))
}

/// Every file of the env's cluster directory: the rendered templates and gotk-components.yaml.
/// Rendering does not depend on the branch tip, so a retry after a race writes the same files
/// on top of the new tip.
fn cluster_files(input: &ClusterDirInputs<'_>) -> Result<Vec<FileChange>> {
    let repo = &input.env.repository;
    let render_input = RenderInput {
        env: input.env.name.clone(),
        profile: input.profile.to_owned(),
        repo_url: repo.url.clone(),
        branch: repo.branch.clone(),
        path_prefix: repo.path.clone(),
        flux_version: input.components.version.clone(),
        interval: SYNC_INTERVAL.to_owned(),
        timeout: flux_duration(input.timeout),
        age_recipient: input.age_recipient.to_owned(),
    };
    let mut files: Vec<FileChange> = render::render_cluster_dir(&render_input)?
        .into_iter()
        .map(|file| FileChange::write(file.path, file.contents))
        .collect();
    files.push(FileChange::write(
        format!(
            "{}/{}",
            cluster_dir(&repo.path, &input.env.name),
            render::COMPONENTS_FILE
        ),
        input.components.yaml.clone(),
    ));
    Ok(files)
}

/// The rendered gotk-sync.yaml among the cluster directory's files.
fn sync_manifest(env: &EnvConfig, files: &[FileChange]) -> Result<String> {
    let wanted = format!(
        "{}/flux-system/gotk-sync.yaml",
        cluster_dir(&env.repository.path, &env.name)
    );
    files
        .iter()
        .find_map(|file| match file {
            FileChange::Write { path, content } if *path == wanted => {
                Some(String::from_utf8_lossy(content).into_owned())
            }
            _ => None,
        })
        .ok_or_else(|| Error::failure(format!("internal error: {wanted} was not rendered")))
}

/// A Go-style duration Flux accepts, e.g. `15m0s` → `900s`.
fn flux_duration(duration: Duration) -> String {
    format!("{}s", duration.as_secs().max(1))
}
