//! commit: `clusters/<env>/` rendered from bootstrap/ plus the Flux components exactly as they
//! are applied, committed only when something changed and pushed without force.

use super::{Context, require};
use crate::error::Result;
use crate::gitops::{FileChange, SyncOutcome};
use crate::render::{self, RenderInput, cluster_dir};
use crate::workflow::Outcome;
use crate::workflow::git::blocking;

/// Pushes raced by other commits are retried this many times in all, re-rendered on each tip.
const PUSH_ATTEMPTS: u32 = 5;
/// How often Flux looks at the repository.
const SYNC_INTERVAL: &str = "1m";

pub async fn run(ctx: &mut Context<'_>) -> Result<Outcome> {
    let files = cluster_files(ctx)?;
    let mut workspace = ctx.take_workspace()?;
    let message = format!(
        "gitops-bootstrap: create-env {} (profile {})",
        ctx.env.name, ctx.options.profile
    );
    let (workspace, outcome) = blocking(move || {
        let outcome = workspace.sync_files(|_| Ok(files.clone()), &message, PUSH_ATTEMPTS)?;
        Ok((workspace, outcome))
    })
    .await?;
    ctx.workspace = Some(workspace);
    let dir = cluster_dir(&ctx.env.repository.path, &ctx.env.name);
    ctx.commit = Some(outcome.head().to_owned());
    Ok(match outcome {
        SyncOutcome::UpToDate { head } => {
            Outcome::UpToDate(format!("{dir}/ already at {}", short(&head)))
        }
        SyncOutcome::Pushed { commit, attempts } => Outcome::Done(format!(
            "pushed {} to {}{}",
            short(&commit),
            ctx.env.repository.branch,
            if attempts > 1 {
                format!(" after {attempts} attempts (the branch moved)")
            } else {
                String::new()
            }
        )),
    })
}

/// Every file of the env's cluster directory: the rendered templates and gotk-components.yaml.
/// Rendering does not depend on the branch tip, so a retry after a race writes the same files
/// on top of the new tip.
fn cluster_files(ctx: &Context<'_>) -> Result<Vec<FileChange>> {
    let components = require(&ctx.components, "the Flux components")?;
    let age_key = require(&ctx.age_key, "the age key")?;
    let repo = &ctx.env.repository;
    let input = RenderInput {
        env: ctx.env.name.clone(),
        profile: ctx.options.profile.clone(),
        repo_url: repo.url.clone(),
        branch: repo.branch.clone(),
        path_prefix: repo.path.clone(),
        flux_version: components.version.clone(),
        interval: SYNC_INTERVAL.to_owned(),
        timeout: flux_duration(ctx.options.timeout),
        age_recipient: age_key.recipient.clone(),
    };
    let mut files: Vec<FileChange> = render::render_cluster_dir(&input)?
        .into_iter()
        .map(|file| FileChange::write(file.path, file.contents))
        .collect();
    files.push(FileChange::write(
        format!(
            "{}/{}",
            cluster_dir(&repo.path, &ctx.env.name),
            render::COMPONENTS_FILE
        ),
        components.yaml.clone(),
    ));
    Ok(files)
}

/// The rendered gotk-sync.yaml, as committed: the sync step applies exactly this.
pub(super) fn sync_manifest(ctx: &Context<'_>) -> Result<String> {
    let wanted = format!(
        "{}/flux-system/gotk-sync.yaml",
        cluster_dir(&ctx.env.repository.path, &ctx.env.name)
    );
    cluster_files(ctx)?
        .into_iter()
        .find_map(|file| match file {
            FileChange::Write { path, content } if path == wanted => {
                Some(String::from_utf8_lossy(&content).into_owned())
            }
            _ => None,
        })
        .ok_or_else(|| crate::Error::failure(format!("internal error: {wanted} was not rendered")))
}

/// A Go-style duration Flux accepts, e.g. `15m0s` → `900s`.
fn flux_duration(duration: std::time::Duration) -> String {
    format!("{}s", duration.as_secs().max(1))
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}
