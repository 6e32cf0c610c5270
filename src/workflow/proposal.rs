//! Pull-request mode's commit: the change rendered on the env's branch tip, pushed as one
//! commit to the branch `gitops-bootstrap/<env>` for a person to merge (create-env and
//! teardown), with where to open the pull request. `phases::await_merge` waits for it.

use super::Outcome;
use super::git::blocking;
use crate::config::EnvConfig;
use crate::error::Result;
use crate::gitops::{FileChange, Proposal, ProposalMark, Unmerged, Workspace, compare_url};
use crate::render::cluster_dir;
use crate::report::Reporter;
use crate::report::short_sha;

/// The files the change makes on a tip (rendered again on the tip a merge made).
pub type Render = Box<dyn Fn(&Workspace) -> Result<Vec<FileChange>> + Send + Sync>;

/// The branch a pull-request mode run proposes the env's commit on.
pub fn proposal_branch(env: &str) -> String {
    format!("gitops-bootstrap/{env}")
}

/// What marks a run's proposal as the tool's own: the env, the command (`create-env`,
/// `teardown`) and the env's directory, the only one it changes.
pub fn mark(env: &EnvConfig, command: &str) -> ProposalMark {
    ProposalMark {
        env: env.name.clone(),
        command: command.to_owned(),
        dir: cluster_dir(&env.repository.path, &env.name),
    }
}

/// Stops before anything changes when the proposal branch holds someone else's commits: the
/// run could neither wait for them nor discard them (`Workspace::propose` would refuse the
/// same way, later).
pub async fn check_branch(
    workspace: Workspace,
    env: &EnvConfig,
    command: &str,
) -> Result<Workspace> {
    let mark = mark(env, command);
    let branch = proposal_branch(&env.name);
    blocking(move || {
        let mut workspace = workspace;
        let foreign = workspace.foreign_proposals(&mark, &branch)?;
        if foreign.is_empty() {
            Ok(workspace)
        } else {
            Err(workspace.foreign(&branch, &mark, foreign).into())
        }
    })
    .await
}

/// A change proposed on the proposal branch, to be merged into the env's branch.
pub struct Proposed {
    pub workspace: Workspace,
    /// The env's branch tip, when it already holds the change (nothing to merge).
    pub landed: Option<String>,
    /// The commit awaiting the merge, on `branch`.
    pub commit: String,
    pub branch: String,
    /// Where to open the pull request, when the host is one the tool knows the form of.
    pub compare_url: Option<String>,
    /// The env's directory, the one the change is about.
    dir: String,
    render: Render,
}

impl Proposed {
    /// Fetches the env's branch; its tip once it holds the proposed commit, or exactly the
    /// change (a squash or rebase merge).
    pub fn check_landed(&mut self) -> Result<Option<String>> {
        let render = &self.render;
        self.workspace
            .landed(&self.commit, &self.dir, |tip| render(tip))
    }
}

/// Renders the change on the env's branch tip and, unless the tip already holds it, pushes it
/// to [`proposal_branch`] — or finds it there, unmerged, from an earlier run of `command`.
pub async fn propose(
    mut workspace: Workspace,
    env: &EnvConfig,
    command: &str,
    render: Render,
    message: String,
    reporter: &dyn Reporter,
) -> Result<(Outcome, Proposed)> {
    let branch = proposal_branch(&env.name);
    let name = branch.clone();
    let mark = mark(env, command);
    let dir = mark.dir.clone();
    let (workspace, render, proposal) = blocking(move || {
        let proposal = workspace.propose(|tip| render(tip), &mark, &message, &name)?;
        Ok((workspace, render, proposal))
    })
    .await?;
    let repo = &env.repository;
    let compare_url = compare_url(&repo.url, &repo.branch, &branch);
    let open_at = compare_url.clone().unwrap_or_else(|| repo.url.clone());
    if let Proposal::UpToDate { replaced, .. } | Proposal::Pushed { replaced, .. } = &proposal
        && !replaced.is_empty()
    {
        reporter.notice(replaced_notice(&branch, replaced));
    }
    let (outcome, landed, commit) = match proposal {
        Proposal::UpToDate { head, .. } => (
            Outcome::UpToDate(format!(
                "{} already holds it at {}",
                repo.branch,
                short_sha(&head)
            )),
            Some(head.clone()),
            head,
        ),
        Proposal::Pushed { commit, .. } => {
            reporter.notice(format!(
                "open a pull request of {branch} into {}: {open_at}",
                repo.branch
            ));
            let outcome = Outcome::Done(format!("pushed {} to {branch}", short_sha(&commit)));
            (outcome, None, commit)
        }
        Proposal::Open { commit } => {
            reporter.notice(format!(
                "{branch} still waits to be merged into {}: {open_at}",
                repo.branch
            ));
            let outcome = Outcome::UpToDate(format!(
                "{} already on {branch}, not merged yet",
                short_sha(&commit)
            ));
            (outcome, None, commit)
        }
    };
    let proposed = Proposed {
        workspace,
        landed,
        commit,
        branch,
        compare_url,
        dir,
        render,
    };
    Ok((outcome, proposed))
}

/// What the run did to the tool's own earlier proposal that no longer matched.
fn replaced_notice(branch: &str, replaced: &[Unmerged]) -> String {
    let commits: Vec<String> = replaced.iter().map(ToString::to_string).collect();
    format!(
        "{branch} held an unmerged proposal of gitops-bootstrap's that this run does not make \
         ({}): the branch was moved off it, so it cannot be merged by mistake",
        commits.join("; ")
    )
}
