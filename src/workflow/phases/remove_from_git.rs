//! remove-from-git (teardown): the files create-env wrote in `clusters/<env>/` removed from the
//! branch in one commit, pushed without force (retried on a moved tip) — or, in pull-request
//! mode, proposed for a merge. What else the directory holds is the user's (create-env keeps
//! it, and so does teardown): it stays, and is listed.

use crate::config::EnvConfig;
use crate::error::Result;
use crate::gitops::{FileChange, SyncOutcome, Workspace};
use crate::render::{INSTANCE_FILE, INSTANCE_HEADER, cluster_dir, tool_files};
use crate::report::Reporter;
use crate::report::short_sha;
use crate::workflow::Outcome;
use crate::workflow::git::blocking;
use crate::workflow::proposal::{self, Proposed, Render};

const PUSH_ATTEMPTS: u32 = 5;

/// The env's directory at a tip: the tool's files there, and the user's entries (a directory
/// of the user's as `name/`), repository-relative.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitScope {
    pub tool_files: Vec<String>,
    pub kept: Vec<String>,
}

/// Reads the env's directory at `workspace`'s tip.
pub fn survey(workspace: &Workspace, env: &EnvConfig) -> Result<GitScope> {
    let dir = cluster_dir(&env.repository.path, &env.name);
    let mut scope = GitScope::default();
    walk(workspace, &dir, "", &mut scope)?;
    Ok(scope)
}

/// Descends only into directories holding a file of the tool's; any other entry is the user's.
fn walk(workspace: &Workspace, dir: &str, relative: &str, scope: &mut GitScope) -> Result<()> {
    let tool = tool_files();
    for (name, is_dir) in workspace.list_dir(&format!("{dir}/{relative}"))? {
        let path = format!("{relative}{name}");
        let full = format!("{dir}/{path}");
        if !is_dir && tool.contains(&path.as_str()) && tool_wrote(workspace, &path, &full)? {
            scope.tool_files.push(full);
        } else if is_dir
            && tool
                .iter()
                .any(|file| file.starts_with(&format!("{path}/")))
        {
            walk(workspace, dir, &format!("{path}/"), scope)?;
        } else if is_dir {
            scope.kept.push(format!("{full}/"));
        } else {
            scope.kept.push(full);
        }
    }
    Ok(())
}

/// A FluxInstance the repository brought itself (without the rendered one's header) is the
/// user's; every other file of [`tool_files`] is the tool's.
fn tool_wrote(workspace: &Workspace, path: &str, full: &str) -> Result<bool> {
    if path != INSTANCE_FILE {
        return Ok(true);
    }
    let content = workspace.read_file(full)?.unwrap_or_default();
    Ok(content.starts_with(INSTANCE_HEADER.as_bytes()))
}

/// What remove-from-git did: the files removed (none when there were none to remove) and the
/// user's entries kept.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    pub files: Vec<String>,
    pub kept: Vec<String>,
}

/// The tool's files of the env's directory at each tip, removed.
fn removal(tip: &Workspace, env: &EnvConfig) -> Result<(Vec<FileChange>, GitScope)> {
    let scope = survey(tip, env)?;
    let changes = scope.tool_files.iter().map(FileChange::remove).collect();
    Ok((changes, scope))
}

pub async fn run(mut workspace: Workspace, env: &EnvConfig) -> Result<(Outcome, Removed)> {
    let dir = cluster_dir(&env.repository.path, &env.name);
    let message = format!("gitops-bootstrap: teardown {}", env.name);
    let env = env.clone();
    let (outcome, scope) = blocking(move || {
        let mut seen = GitScope::default();
        let outcome = workspace.sync_files(
            |tip| {
                // Read on every attempt: a raced push removes again on the new tip.
                let (changes, scope) = removal(tip, &env)?;
                seen = scope;
                Ok(changes)
            },
            &message,
            PUSH_ATTEMPTS,
        )?;
        Ok((outcome, seen))
    })
    .await?;
    let kept = match scope.kept.len() {
        0 => String::new(),
        n => format!(", kept {n} of the user's"),
    };
    let outcome = match outcome {
        SyncOutcome::UpToDate { .. } => {
            let removed = Removed {
                files: Vec::new(),
                kept: scope.kept,
            };
            let outcome = Outcome::UpToDate(format!("no file of the tool's in {dir}/{kept}"));
            return Ok((outcome, removed));
        }
        SyncOutcome::Pushed { commit, .. } => Outcome::Done(format!(
            "removed the tool's {} files of {dir}/ in {}{kept}",
            scope.tool_files.len(),
            short_sha(&commit)
        )),
    };
    let removed = Removed {
        files: scope.tool_files,
        kept: scope.kept,
    };
    Ok((outcome, removed))
}

/// Pull-request mode: the removal pushed to the proposal branch (`phases::await_merge` waits
/// for it).
pub async fn propose(
    workspace: Workspace,
    env: &EnvConfig,
    reporter: &dyn Reporter,
) -> Result<(Outcome, Proposed)> {
    let message = format!("gitops-bootstrap: teardown {}", env.name);
    let owned = env.clone();
    let render: Render = Box::new(move |tip| Ok(removal(tip, &owned)?.0));
    proposal::propose(workspace, env, "teardown", render, message, reporter).await
}
