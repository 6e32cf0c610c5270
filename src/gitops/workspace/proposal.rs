//! Pull-request mode in the working clone. A commit on the proposal branch is the tool's own
//! only by what it holds: trailers naming the env and the command, exactly one parent, and no
//! change outside the env's directory. Being on the branch proves nothing: someone else's
//! commit there stops the run, and an own proposal that no longer matches the run is replaced.

use std::fmt;
use std::path::Path;

use git2::{Commit, Oid};

use super::{FileChange, Workspace};
use crate::gitops::GitError;
use crate::gitops::remote::{self, Pushed};

const ENV_TRAILER: &str = "Gitops-Bootstrap-Env";
const COMMAND_TRAILER: &str = "Gitops-Bootstrap-Command";
/// The foreign commits an error lists; the rest are counted.
const LISTED: usize = 5;

/// How a [`Workspace::propose`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// The target branch already holds exactly these files: nothing to propose. `replaced`
    /// lists the tool's own earlier proposal the branch was moved off (to the target tip):
    /// merged, it would have changed the env again.
    UpToDate {
        head: String,
        replaced: Vec<Unmerged>,
    },
    /// A new commit, on top of the target tip, is on the proposal branch. `replaced` lists
    /// the tool's own earlier proposal it moved the branch off (another command's, or one
    /// that no longer matches what this run renders).
    Pushed {
        commit: String,
        replaced: Vec<Unmerged>,
    },
    /// The proposal branch already holds this very proposal, unmerged (an earlier run's): it
    /// is not pushed again.
    Open { commit: String },
}

/// Whose proposal a run makes: the trailers its commit carries and the one directory it may
/// change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalMark {
    pub env: String,
    /// `create-env` or `teardown`.
    pub command: String,
    /// The env's directory in the repository (`clusters/<env>` under the path prefix).
    pub dir: String,
}

impl ProposalMark {
    /// `message` with the trailers after a blank line, as `git interpret-trailers` puts them.
    pub fn sign(&self, message: &str) -> String {
        format!(
            "{}\n\n{ENV_TRAILER}: {}\n{COMMAND_TRAILER}: {}\n",
            message.trim_end(),
            self.env,
            self.command
        )
    }

    /// The command a commit's trailers name when they name this env; `None` otherwise.
    fn command_of(&self, message: &str) -> Option<String> {
        let trailers = git2::message_trailers_strs(message).ok()?;
        let value = |key: &str| {
            trailers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.trim().to_owned())
        };
        (value(ENV_TRAILER)? == self.env).then(|| value(COMMAND_TRAILER))?
    }
}

/// A commit on the proposal branch that the target branch has not merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmerged {
    pub commit: String,
    pub summary: String,
    pub author: String,
}

impl fmt::Display for Unmerged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.commit.get(..7).unwrap_or(&self.commit);
        write!(f, "{short} \"{}\" by {}", self.summary, self.author)
    }
}

/// The proposal branch's commits the target has not merged, each with the command it proposes
/// when it is the tool's own.
#[derive(Default)]
struct Pending {
    commits: Vec<(Unmerged, Option<String>)>,
}

impl Pending {
    fn foreign(&self) -> Vec<Unmerged> {
        self.commits
            .iter()
            .filter(|(_, command)| command.is_none())
            .map(|(commit, _)| commit.clone())
            .collect()
    }
}

/// The commits an error lists: the first few, then how many more.
pub(crate) fn listed(commits: &[Unmerged]) -> String {
    let mut text: Vec<String> = commits.iter().take(LISTED).map(|c| c.to_string()).collect();
    if commits.len() > LISTED {
        text.push(format!("and {} more", commits.len() - LISTED));
    }
    text.join("; ")
}

impl Workspace {
    /// Renders on the target tip and, unless the target branch already holds that, proposes
    /// it on branch `proposal` (for a pull request) as one commit on top of the target tip,
    /// signed with `mark`'s trailers. What the proposal branch holds, unmerged, decides how:
    /// nothing → a fast-forward push; this very proposal → left as it is (a rerun waits for
    /// it); only the tool's own other proposals → the branch is moved to the new commit (or to
    /// the target tip when there is nothing to propose), forced only from the commit
    /// inspected; anyone else's commit → [`GitError::ForeignProposal`], nothing pushed.
    pub fn propose(
        &mut self,
        render: impl FnOnce(&Workspace) -> crate::Result<Vec<FileChange>>,
        mark: &ProposalMark,
        message: &str,
        proposal: &str,
    ) -> crate::Result<Proposal> {
        let tree = self.apply(&render(&*self)?)?;
        let open = remote::fetch_named(&self.repo, &self.spec, &self.url, proposal)?;
        let pending = match open {
            Some(open) if !self.contains(open)? => self.pending(open, mark)?,
            _ => Pending::default(),
        };
        let foreign = pending.foreign();
        if !foreign.is_empty() {
            return Err(self.foreign(proposal, mark, foreign).into());
        }
        let lease = open.filter(|_| !pending.commits.is_empty());
        let replaced: Vec<Unmerged> = pending.commits.iter().map(|(c, _)| c.clone()).collect();
        if let Some(tip) = self.tip
            && self.tip_tree()?.map(|tree| tree.id()) == Some(tree)
        {
            // Nothing to propose; an own proposal still there would undo the env if merged.
            if lease.is_some() {
                self.move_proposal(proposal, tip, lease)?;
            }
            return Ok(Proposal::UpToDate {
                head: tip.to_string(),
                replaced,
            });
        }
        if let Some(open) = lease
            && self.is_current(open, &pending, mark, tree)?
        {
            return Ok(Proposal::Open {
                commit: open.to_string(),
            });
        }
        let commit = self.commit(tree, &mark.sign(message), None)?;
        self.move_proposal(proposal, commit, lease)?;
        Ok(Proposal::Pushed {
            commit: commit.to_string(),
            replaced,
        })
    }

    /// Points the proposal branch at `commit`, here and on the remote: a fast-forward, or with
    /// a `lease` a forced move only from the commit inspected.
    fn move_proposal(&self, proposal: &str, commit: Oid, lease: Option<Oid>) -> crate::Result<()> {
        self.repo
            .reference(
                &format!("refs/heads/{proposal}"),
                commit,
                true,
                "gitops-bootstrap: proposal",
            )
            .map_err(|e| self.local("record the proposal", e))?;
        match remote::push_named(&self.repo, &self.spec, &self.url, proposal, lease)? {
            Pushed::Accepted => Ok(()),
            Pushed::Raced => Err(GitError::PushRaced {
                url: self.url.text.clone(),
                branch: proposal.to_owned(),
                attempts: 1,
            }
            .into()),
        }
    }

    /// Someone else's commits on the proposal branch, read before anything is changed (the
    /// same judgement [`Workspace::propose`] makes): empty when the branch is absent, merged,
    /// or holds only the tool's own proposals for the env.
    pub fn foreign_proposals(
        &mut self,
        mark: &ProposalMark,
        proposal: &str,
    ) -> crate::Result<Vec<Unmerged>> {
        let Some(open) = remote::fetch_named(&self.repo, &self.spec, &self.url, proposal)? else {
            return Ok(Vec::new());
        };
        if self.contains(open)? {
            return Ok(Vec::new());
        }
        Ok(self.pending(open, mark)?.foreign())
    }

    /// The error naming someone else's commits on the proposal branch.
    pub fn foreign(&self, proposal: &str, mark: &ProposalMark, commits: Vec<Unmerged>) -> GitError {
        GitError::ForeignProposal {
            url: self.url.text.clone(),
            branch: proposal.to_owned(),
            env: mark.env.clone(),
            commits,
        }
    }

    /// Fetches the target branch; returns its tip once it holds exactly the files `render`
    /// gives on it (the proposal merged, fast-forwarded, squashed or rebased); `None` while
    /// the proposal is not merged. A tip that merged the proposal but no longer holds its
    /// change is an error: waiting longer would not bring it back.
    pub fn landed(
        &mut self,
        proposed: &str,
        dir: &str,
        render: impl FnOnce(&Workspace) -> crate::Result<Vec<FileChange>>,
    ) -> crate::Result<Option<String>> {
        self.refresh()?;
        let Some(tip) = self.tip else {
            return Ok(None);
        };
        let tree = self.apply(&render(&*self)?)?;
        if self.tip_tree()?.map(|tree| tree.id()) == Some(tree) {
            return Ok(Some(tip.to_string()));
        }
        let proposed = self.known_commit(proposed)?;
        if self.contains(proposed)? {
            return Err(GitError::MergedThenChanged {
                branch: self.spec.branch.clone(),
                commit: proposed.to_string(),
                tip: tip.to_string(),
                dir: dir.to_owned(),
            }
            .into());
        }
        Ok(None)
    }

    /// The commits reachable from `open` but not from the target tip, newest first, each with
    /// the command it proposes when it is the tool's own proposal for the env.
    fn pending(&self, open: Oid, mark: &ProposalMark) -> Result<Pending, GitError> {
        let walk = (|| {
            let mut walk = self.repo.revwalk()?;
            walk.push(open)?;
            if let Some(tip) = self.tip {
                walk.hide(tip)?;
            }
            walk.collect::<Result<Vec<Oid>, git2::Error>>()
        })();
        let oids = walk.map_err(|e| self.local("list the proposal branch", e))?;
        let mut commits = Vec::new();
        for oid in oids {
            let commit = self
                .repo
                .find_commit(oid)
                .map_err(|e| self.local("read a proposed commit", e))?;
            let command = self.proposes(&commit, mark)?;
            let unmerged = Unmerged {
                commit: oid.to_string(),
                summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                    .into_owned(),
                author: String::from_utf8_lossy(commit.author().name_bytes()).into_owned(),
            };
            commits.push((unmerged, command));
        }
        Ok(Pending { commits })
    }

    /// The command `commit` proposes when it is the tool's own for the env: signed for it,
    /// one parent, nothing changed outside the env's directory.
    fn proposes(
        &self,
        commit: &Commit<'_>,
        mark: &ProposalMark,
    ) -> Result<Option<String>, GitError> {
        let Some(command) = mark.command_of(&String::from_utf8_lossy(commit.message_bytes()))
        else {
            return Ok(None);
        };
        if commit.parent_count() != 1 {
            return Ok(None);
        }
        let inside = (|| {
            let before = commit.parent(0)?.tree()?;
            let after = commit.tree()?;
            let diff = self
                .repo
                .diff_tree_to_tree(Some(&before), Some(&after), None)?;
            let dir = Path::new(&mark.dir);
            Ok::<_, git2::Error>(diff.deltas().all(|delta| {
                [delta.old_file().path(), delta.new_file().path()]
                    .into_iter()
                    .flatten()
                    .all(|path| path.starts_with(dir))
            }))
        })();
        let inside = inside.map_err(|e| self.local("compare a proposed commit", e))?;
        Ok(inside.then_some(command))
    }

    /// Whether the branch holds exactly this run's proposal: one commit, for the same command,
    /// whose env directory is the one just rendered (`tree`).
    fn is_current(
        &self,
        open: Oid,
        pending: &Pending,
        mark: &ProposalMark,
        tree: Oid,
    ) -> Result<bool, GitError> {
        let [(_, Some(command))] = pending.commits.as_slice() else {
            return Ok(false);
        };
        if *command != mark.command {
            return Ok(false);
        }
        let dir_of = |tree: git2::Tree<'_>| match tree.get_path(Path::new(&mark.dir)) {
            Ok(entry) => Ok(Some(entry.id())),
            Err(err) if err.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(err) => Err(err),
        };
        let compare = (|| {
            let proposed = dir_of(self.repo.find_commit(open)?.tree()?)?;
            let rendered = dir_of(self.repo.find_tree(tree)?)?;
            Ok(proposed == rendered)
        })();
        compare.map_err(|e| self.local("compare the proposal", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> ProposalMark {
        ProposalMark {
            env: "dev".into(),
            command: "teardown".into(),
            dir: "clusters/dev".into(),
        }
    }

    #[test]
    fn a_signed_message_names_its_env_and_command() {
        let signed = mark().sign("gitops-bootstrap: teardown dev\n");
        assert_eq!(
            signed,
            "gitops-bootstrap: teardown dev\n\nGitops-Bootstrap-Env: dev\nGitops-Bootstrap-Command: teardown\n"
        );
        assert_eq!(mark().command_of(&signed).as_deref(), Some("teardown"));
        let other = ProposalMark {
            env: "prod".into(),
            ..mark()
        };
        assert_eq!(other.command_of(&signed), None, "another env's");
        assert_eq!(
            mark().command_of("teardown dev\n\nSigned-off-by: x <x@y>\n"),
            None
        );
        assert_eq!(
            mark().command_of("Gitops-Bootstrap-Env: dev"),
            None,
            "no body"
        );
    }

    #[test]
    fn long_lists_of_commits_are_cut() {
        let commits: Vec<Unmerged> = (0..7)
            .map(|n| Unmerged {
                commit: format!("{n}{}", "a".repeat(39)),
                summary: format!("change {n}"),
                author: "someone".into(),
            })
            .collect();
        let text = listed(&commits);
        assert!(
            text.starts_with("0aaaaaa \"change 0\" by someone; "),
            "{text}"
        );
        assert!(text.ends_with("; and 2 more"), "{text}");
    }
}
