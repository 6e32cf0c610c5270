//! The working clone: a directory the tool owns, always reset to the remote branch tip (the
//! remote is the truth, the clone is disposable), where rendered files are committed and
//! pushed.

use std::path::{Component, Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{IndexAddOption, Oid, Repository, ResetType, Signature};

use super::remote::{self, ORIGIN, Pushed};
use super::retry::{self, Backoff, RetryFailure};
use super::url::{self, RemoteUrl};
use super::{GitError, RepoSpec};

mod proposal;

pub(super) use proposal::listed;
pub use proposal::{Proposal, ProposalMark, Unmerged};

/// One change to make in the repository; paths are relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    Write {
        path: String,
        content: Vec<u8>,
    },
    /// Removes a file or a whole directory; absent paths are fine.
    Remove {
        path: String,
    },
}

impl FileChange {
    pub fn write(path: impl Into<String>, content: impl Into<Vec<u8>>) -> FileChange {
        FileChange::Write {
            path: path.into(),
            content: content.into(),
        }
    }

    pub fn remove(path: impl Into<String>) -> FileChange {
        FileChange::Remove { path: path.into() }
    }

    fn path(&self) -> &str {
        match self {
            FileChange::Write { path, .. } | FileChange::Remove { path } => path,
        }
    }
}

/// How a [`Workspace::sync_files`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The branch already held exactly these files; nothing was committed.
    UpToDate { head: String },
    /// A new commit is on the remote branch.
    Pushed { commit: String, attempts: u32 },
}

impl SyncOutcome {
    /// The commit the remote branch now points at.
    pub fn head(&self) -> &str {
        match self {
            SyncOutcome::UpToDate { head } => head,
            SyncOutcome::Pushed { commit, .. } => commit,
        }
    }
}

/// Why one attempt of a sync did not finish.
enum AttemptError {
    Raced,
    Failed(crate::Error),
}

impl From<crate::Error> for AttemptError {
    fn from(err: crate::Error) -> Self {
        AttemptError::Failed(err)
    }
}

impl From<GitError> for AttemptError {
    fn from(err: GitError) -> Self {
        AttemptError::Failed(err.into())
    }
}

/// A working clone at the tip of the spec's branch.
pub struct Workspace {
    repo: Repository,
    spec: RepoSpec,
    url: RemoteUrl,
    dir: PathBuf,
    tip: Option<Oid>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("dir", &self.dir)
            .field("url", &self.url.text)
            .field("tip", &self.tip)
            .finish_non_exhaustive()
    }
}

impl Workspace {
    /// Opens the clone in `dir` (creating it when the directory is absent or empty), points
    /// it at the spec's URL, fetches and resets it to the remote branch tip.
    pub fn open_or_clone(dir: &Path, spec: RepoSpec) -> Result<Workspace, GitError> {
        let url = url::validate(&spec)?;
        let repo = if dir.join(".git").exists() {
            open_clone(dir, &spec)?
        } else {
            check_empty(dir)?;
            std::fs::create_dir_all(dir).map_err(|source| GitError::Io {
                op: "create",
                path: dir.to_path_buf(),
                source,
            })?;
            init_clone(dir, &spec)?
        };
        let tip = remote::fetch_branch(&repo, &spec, &url)?;
        Workspace::at_tip(repo, spec, url, dir, tip)
    }

    /// Like [`Workspace::open_or_clone`], once the server granted the spec's credential push
    /// rights, over one connection (see [`remote::push_rights_and_tip`]): a clone already at
    /// the advertised tip is not fetched. A new clone is made beside `dir` and moved into
    /// place only then, so a refused credential leaves nothing behind.
    pub fn open_with_push_rights(dir: &Path, spec: RepoSpec) -> Result<Workspace, GitError> {
        let url = url::validate(&spec)?;
        // A refused credential is told before what is wrong with the directory.
        if dir.join(".git").exists() {
            let repo = match open_clone(dir, &spec) {
                Ok(repo) => repo,
                Err(err) => {
                    remote::check_push_access(&spec)?;
                    return Err(err);
                }
            };
            let tip = remote::push_rights_and_tip(&repo, &spec, &url)?;
            return Workspace::at_tip(repo, spec, url, dir, tip);
        }
        let parent = match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| GitError::Io { op, path, source }
        };
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        let staging = tempfile::Builder::new()
            .prefix(".clone-")
            .tempdir_in(parent)
            .map_err(io("create", parent))?;
        let repo = init_clone(staging.path(), &spec)?;
        let tip = remote::push_rights_and_tip(&repo, &spec, &url)?;
        drop(repo);
        check_empty(dir)?;
        if dir.exists() {
            std::fs::remove_dir(dir).map_err(io("replace", dir))?;
        }
        // Once moved, the staging directory's own cleanup finds nothing left to remove.
        std::fs::rename(staging.path(), dir).map_err(io("move into place", dir))?;
        let repo = Repository::open(dir).map_err(local_error(dir, "open the clone"))?;
        Workspace::at_tip(repo, spec, url, dir, tip)
    }

    /// The workspace of `repo`, reset to `tip`.
    fn at_tip(
        repo: Repository,
        spec: RepoSpec,
        url: RemoteUrl,
        dir: &Path,
        tip: Option<Oid>,
    ) -> Result<Workspace, GitError> {
        let mut workspace = Workspace {
            repo,
            spec,
            url,
            dir: dir.to_path_buf(),
            tip: None,
        };
        workspace.reset_to_tip(tip)?;
        Ok(workspace)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn spec(&self) -> &RepoSpec {
        &self.spec
    }

    /// The remote branch tip the clone is at; `None` while the branch does not exist.
    pub fn head(&self) -> Option<String> {
        self.tip.map(|oid| oid.to_string())
    }

    /// The tree of the clone's tip (its working tree, which `refresh` resets to it); `None`
    /// while the branch does not exist.
    pub fn tree_id(&self) -> Option<String> {
        let tip = self.tip?;
        let commit = self.repo.find_commit(tip).ok()?;
        Some(commit.tree_id().to_string())
    }

    /// Fetches the branch and hard-resets the clone to its tip, dropping local changes.
    pub fn refresh(&mut self) -> Result<(), GitError> {
        let tip = remote::fetch_branch(&self.repo, &self.spec, &self.url)?;
        self.reset_to_tip(tip)
    }

    fn reset_to_tip(&mut self, tip: Option<Oid>) -> Result<(), GitError> {
        let branch_ref = format!("refs/heads/{}", self.spec.branch);
        let result = match tip {
            Some(oid) => self.reset_to(&branch_ref, oid),
            None => self.reset_to_unborn(&branch_ref),
        };
        result.map_err(|source| self.local("reset to the remote branch", source))?;
        self.tip = tip;
        Ok(())
    }

    fn reset_to(&self, branch_ref: &str, oid: Oid) -> Result<(), git2::Error> {
        let commit = self.repo.find_commit(oid)?;
        self.repo
            .reference(branch_ref, oid, true, "gitops-bootstrap: reset to remote")?;
        self.repo.set_head(branch_ref)?;
        let mut checkout = CheckoutBuilder::new();
        checkout.force().remove_untracked(true).remove_ignored(true);
        self.repo
            .reset(commit.as_object(), ResetType::Hard, Some(&mut checkout))
    }

    /// The remote has no such branch yet: an empty tree on an unborn branch.
    fn reset_to_unborn(&self, branch_ref: &str) -> Result<(), git2::Error> {
        if let Ok(mut reference) = self.repo.find_reference(branch_ref) {
            reference.delete()?;
        }
        self.repo.set_head(branch_ref)?;
        let mut index = self.repo.index()?;
        index.clear()?;
        index.write()?;
        for entry in std::fs::read_dir(&self.dir).map_err(io_to_git)? {
            let path = entry.map_err(io_to_git)?.path();
            if path.file_name() == Some(".git".as_ref()) {
                continue;
            }
            remove_path(&path).map_err(io_to_git)?;
        }
        Ok(())
    }

    /// The content of `rel` (from the repository root) at the tip; `None` when absent.
    pub fn read_file(&self, rel: &str) -> Result<Option<Vec<u8>>, GitError> {
        let Some(entry) = self.tip_entry(rel)? else {
            return Ok(None);
        };
        let object = entry
            .to_object(&self.repo)
            .map_err(|e| self.local("read a file", e))?;
        Ok(object.as_blob().map(|blob| blob.content().to_vec()))
    }

    /// Whether `rel` (file or directory) exists at the tip.
    pub fn path_exists(&self, rel: &str) -> Result<bool, GitError> {
        Ok(self.tip_entry(rel)?.is_some())
    }

    /// The entries of directory `rel` at the tip as `(name, is_directory)`; empty when `rel`
    /// is absent or not a directory.
    pub fn list_dir(&self, rel: &str) -> Result<Vec<(String, bool)>, GitError> {
        let Some(entry) = self.tip_entry(rel)? else {
            return Ok(Vec::new());
        };
        let object = entry
            .to_object(&self.repo)
            .map_err(|e| self.local("read a directory", e))?;
        let Some(tree) = object.as_tree() else {
            return Ok(Vec::new());
        };
        Ok(tree
            .iter()
            .filter_map(|entry| {
                let is_dir = entry.kind() == Some(git2::ObjectType::Tree);
                Some((entry.name().ok()?.to_owned(), is_dir))
            })
            .collect())
    }

    fn tip_entry(&self, rel: &str) -> Result<Option<git2::TreeEntry<'static>>, GitError> {
        let Some(tree) = self.tip_tree()? else {
            return Ok(None);
        };
        match tree.get_path(Path::new(rel.trim_start_matches('/'))) {
            Ok(entry) => Ok(Some(entry.to_owned())),
            Err(err) if err.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(err) => Err(self.local("look up a path", err)),
        }
    }

    /// The newest commit of the branch whose tree has `rel`, with its subject: where a path
    /// that is gone from the tip was last seen. `None` when no commit ever had it.
    pub fn last_commit_with(&self, rel: &str) -> Result<Option<(String, String)>, GitError> {
        let Some(tip) = self.tip else {
            return Ok(None);
        };
        let walk_error = |e| self.local("walk the branch history", e);
        let mut walk = self.repo.revwalk().map_err(walk_error)?;
        walk.push(tip).map_err(walk_error)?;
        let path = Path::new(rel.trim_start_matches('/'));
        for oid in walk {
            let commit = self
                .repo
                .find_commit(oid.map_err(walk_error)?)
                .map_err(walk_error)?;
            if commit.tree().map_err(walk_error)?.get_path(path).is_ok() {
                let subject = commit
                    .summary()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .to_owned();
                return Ok(Some((commit.id().to_string(), subject)));
            }
        }
        Ok(None)
    }

    fn tip_tree(&self) -> Result<Option<git2::Tree<'_>>, GitError> {
        let Some(tip) = self.tip else {
            return Ok(None);
        };
        self.repo
            .find_commit(tip)
            .and_then(|commit| commit.tree())
            .map(Some)
            .map_err(|e| self.local("read the tip commit", e))
    }

    /// Renders on the current tip and makes the branch hold exactly that: no commit when
    /// nothing changes; otherwise one commit (author from the spec), pushed without force.
    /// When another commit wins the race, fetches, resets to the new tip, renders again and
    /// retries, at most `max_attempts` times in all. On a branch the remote does not have yet,
    /// the first sync always commits, which creates the branch.
    pub fn sync_files(
        &mut self,
        mut render: impl FnMut(&Workspace) -> crate::Result<Vec<FileChange>>,
        message: &str,
        max_attempts: u32,
    ) -> crate::Result<SyncOutcome> {
        let backoff = Backoff::attempts(max_attempts);
        let outcome = retry::retry(
            backoff,
            |err| matches!(err, AttemptError::Raced),
            |attempt| {
                if attempt > 1 {
                    self.refresh()?;
                }
                let changes = render(&*self)?;
                self.commit_and_push(&changes, message, attempt)
            },
        );
        match outcome {
            Ok(outcome) => Ok(outcome),
            Err(RetryFailure::Permanent(AttemptError::Failed(err))) => Err(err),
            Err(RetryFailure::Exhausted { attempts }) => Err(self.raced(attempts)),
            Err(RetryFailure::Permanent(AttemptError::Raced)) => {
                Err(self.raced(backoff.max_attempts))
            }
        }
    }

    /// Whether the target tip is `commit` or has it in its history.
    fn contains(&self, commit: Oid) -> Result<bool, GitError> {
        let Some(tip) = self.tip else {
            return Ok(false);
        };
        if tip == commit {
            return Ok(true);
        }
        self.repo
            .graph_descendant_of(tip, commit)
            .map_err(|e| self.local("compare commits", e))
    }

    fn raced(&self, attempts: u32) -> crate::Error {
        GitError::PushRaced {
            url: self.url.text.clone(),
            branch: self.spec.branch.clone(),
            attempts,
        }
        .into()
    }

    fn commit_and_push(
        &mut self,
        changes: &[FileChange],
        message: &str,
        attempt: u32,
    ) -> Result<SyncOutcome, AttemptError> {
        let tree = self.apply(changes)?;
        let tip_tree = self.tip_tree()?.map(|tree| tree.id());
        if let (Some(tip), Some(tip_tree)) = (self.tip, tip_tree)
            && tip_tree == tree
        {
            return Ok(SyncOutcome::UpToDate {
                head: tip.to_string(),
            });
        }
        let commit = self.commit(tree, message, Some("HEAD"))?;
        match remote::push_branch(&self.repo, &self.spec, &self.url)? {
            Pushed::Raced => Err(AttemptError::Raced),
            Pushed::Accepted => {
                self.repo
                    .reference(
                        &remote::tracking_ref(&self.spec.branch),
                        commit,
                        true,
                        "gitops-bootstrap: pushed",
                    )
                    .map_err(|e| self.local("record the pushed commit", e))?;
                self.tip = Some(commit);
                Ok(SyncOutcome::Pushed {
                    commit: commit.to_string(),
                    attempts: attempt,
                })
            }
        }
    }

    /// Writes the changes into the working tree and the index; returns the resulting tree.
    fn apply(&self, changes: &[FileChange]) -> Result<Oid, GitError> {
        let mut index = self
            .repo
            .index()
            .map_err(|e| self.local("open the index", e))?;
        for change in changes {
            let rel = checked_path(change.path())?;
            let full = self.dir.join(rel);
            let io = |op, source| GitError::Io {
                op,
                path: full.clone(),
                source,
            };
            match change {
                FileChange::Write { content, .. } => {
                    if let Some(parent) = full.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| io("create", e))?;
                    }
                    if full.is_dir() {
                        remove_path(&full).map_err(|e| io("replace", e))?;
                    }
                    std::fs::write(&full, content).map_err(|e| io("write", e))?;
                    index
                        .add_path(rel)
                        .map_err(|e| self.local("stage a file", e))?;
                }
                FileChange::Remove { .. } => {
                    remove_path(&full).map_err(|e| io("remove", e))?;
                    index
                        .remove_all([rel], None)
                        .map_err(|e| self.local("unstage a path", e))?;
                }
            }
        }
        // Anything a write replaced (a file that became a directory, say) is staged too.
        index
            .update_all(["*"], None)
            .and_then(|()| index.add_all(["*"], IndexAddOption::DEFAULT, None))
            .and_then(|()| index.write())
            .map_err(|e| self.local("stage the changes", e))?;
        index
            .write_tree()
            .map_err(|e| self.local("write the tree", e))
    }

    /// Commits `tree` on top of the tip, moving `update_ref` (`HEAD`: the branch) to it.
    fn commit(&self, tree: Oid, message: &str, update_ref: Option<&str>) -> Result<Oid, GitError> {
        let result = (|| {
            let tree = self.repo.find_tree(tree)?;
            let author = Signature::now(&self.spec.author_name, &self.spec.author_email)?;
            let parent = self.tip.map(|oid| self.repo.find_commit(oid)).transpose()?;
            let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
            self.repo
                .commit(update_ref, &author, &author, message, &tree, &parents)
        })();
        result.map_err(|e| self.local("commit", e))
    }

    /// Whether `descendant` is `ancestor` or has it in its history. Fetches first when either
    /// commit is not known locally yet.
    pub fn is_ancestor(&mut self, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
        let ancestor = self.known_commit(ancestor)?;
        let descendant = self.known_commit(descendant)?;
        if ancestor == descendant {
            return Ok(true);
        }
        self.repo
            .graph_descendant_of(descendant, ancestor)
            .map_err(|e| self.local("compare commits", e))
    }

    fn known_commit(&mut self, sha: &str) -> Result<Oid, GitError> {
        let url = self.url.text.clone();
        let unknown = || GitError::UnknownCommit {
            sha: sha.to_string(),
            url: url.clone(),
        };
        let oid = Oid::from_str(sha).map_err(|_| unknown())?;
        if self.repo.find_commit(oid).is_err() {
            self.refresh()?;
        }
        self.repo
            .find_commit(oid)
            .map(|c| c.id())
            .map_err(|_| unknown())
    }

    fn local(&self, op: &'static str, source: git2::Error) -> GitError {
        GitError::Local {
            op,
            dir: self.dir.clone(),
            source,
        }
    }
}

/// The clone in `dir`, pointed at the spec's URL.
fn open_clone(dir: &Path, spec: &RepoSpec) -> Result<Repository, GitError> {
    let local = |op| local_error(dir, op);
    let repo = Repository::open(dir).map_err(local("open the clone"))?;
    match repo.find_remote(ORIGIN) {
        Ok(_) => repo.remote_set_url(ORIGIN, &spec.url),
        Err(_) => repo.remote(ORIGIN, &spec.url).map(drop),
    }
    .map_err(local("set the remote URL"))?;
    Ok(repo)
}

/// A new, empty clone in the existing directory `dir`, its remote the spec's URL.
fn init_clone(dir: &Path, spec: &RepoSpec) -> Result<Repository, GitError> {
    let local = |op| local_error(dir, op);
    let repo = Repository::init(dir).map_err(local("create the clone"))?;
    repo.remote(ORIGIN, &spec.url)
        .map_err(local("add the remote"))?;
    Ok(repo)
}

fn local_error(dir: &Path, op: &'static str) -> impl FnOnce(git2::Error) -> GitError {
    let dir = dir.to_path_buf();
    move |source| GitError::Local { op, dir, source }
}

/// A clone goes only where nothing else is: `dir` absent or empty.
fn check_empty(dir: &Path) -> Result<(), GitError> {
    let empty = std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none());
    if empty {
        Ok(())
    } else {
        Err(GitError::NotAClone {
            dir: dir.to_path_buf(),
        })
    }
}

/// A change's path as a relative path that stays inside the repository and off `.git`.
fn checked_path(path: &str) -> Result<&Path, GitError> {
    let invalid = |reason| GitError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    let rel = Path::new(path);
    if path.is_empty() || rel.is_absolute() {
        return Err(invalid("it must be a relative path"));
    }
    for component in rel.components() {
        match component {
            Component::Normal(name) if name == ".git" => {
                return Err(invalid("it is inside .git"));
            }
            Component::Normal(_) => {}
            _ => return Err(invalid("it must not contain `..` or `.`")),
        }
    }
    Ok(rel)
}

fn remove_path(path: &Path) -> std::io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(err) => Err(err),
    };
    match result {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn io_to_git(err: std::io::Error) -> git2::Error {
    git2::Error::from_str(&err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_paths_stay_inside_the_repository() {
        assert!(checked_path("clusters/dev/profile.yaml").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", ".git/config", "./a"] {
            assert!(
                matches!(checked_path(bad), Err(GitError::InvalidPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn removing_an_absent_path_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        remove_path(&dir.path().join("nope")).unwrap();
        std::fs::create_dir_all(dir.path().join("d/e")).unwrap();
        remove_path(&dir.path().join("d")).unwrap();
        assert!(!dir.path().join("d").exists());
    }
}
