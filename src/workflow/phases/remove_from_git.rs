//! remove-from-git (teardown): `clusters/<env>/` removed from the branch in one commit, pushed
//! without force (retried on a moved tip) — or, in pull-request mode, proposed for a merge.

use crate::config::EnvConfig;
use crate::error::Result;
use crate::gitops::{FileChange, SyncOutcome, Workspace};
use crate::render::cluster_dir;
use crate::report::Reporter;
use crate::report::short_sha;
use crate::workflow::Outcome;
use crate::workflow::git::blocking;
use crate::workflow::proposal::{self, Proposed, Render};

const PUSH_ATTEMPTS: u32 = 5;

/// Returns the commit that removed the directory, when one was needed.
pub async fn run(mut workspace: Workspace, env: &EnvConfig) -> Result<(Outcome, Option<String>)> {
    let dir = cluster_dir(&env.repository.path, &env.name);
    let message = format!("gitops-bootstrap: teardown {}", env.name);
    let removal = vec![FileChange::remove(dir.clone())];
    let outcome =
        blocking(move || workspace.sync_files(|_| Ok(removal.clone()), &message, PUSH_ATTEMPTS))
            .await?;
    Ok(match outcome {
        SyncOutcome::UpToDate { .. } => (Outcome::UpToDate(format!("no {dir}/ in Git")), None),
        SyncOutcome::Pushed { commit, .. } => (
            Outcome::Done(format!("removed {dir}/ in {}", short_sha(&commit))),
            Some(commit),
        ),
    })
}

/// Pull-request mode: the removal pushed to the proposal branch (`phases::await_merge` waits
/// for it).
pub async fn propose(
    workspace: Workspace,
    env: &EnvConfig,
    reporter: &dyn Reporter,
) -> Result<(Outcome, Proposed)> {
    let dir = cluster_dir(&env.repository.path, &env.name);
    let message = format!("gitops-bootstrap: teardown {}", env.name);
    let render: Render = Box::new(move |_| Ok(vec![FileChange::remove(dir.clone())]));
    proposal::propose(workspace, env, "teardown", render, message, reporter).await
}
