//! The bare repositories behind the Git server: creation, the test helpers that read and
//! write them directly (without going through a transport), the protected-branch hook and the
//! commit that races a client's push.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use git2::build::TreeUpdateBuilder;
use git2::{FileMode, Oid, Repository, RepositoryInitOptions, Signature};

/// Creates an empty bare repository whose HEAD names `main` (so a clone of the first pushed
/// `main` checks it out).
pub(crate) fn init_bare(path: &Path) -> anyhow::Result<()> {
    let mut options = RepositoryInitOptions::new();
    options.bare(true).initial_head("main").mkdir(true);
    Repository::init_opts(path, &options)
        .with_context(|| format!("creating the bare repository {}", path.display()))?;
    Ok(())
}

/// The commit `branch` points at, if the branch exists.
pub(crate) fn head(path: &Path, branch: &str) -> anyhow::Result<Option<Oid>> {
    let repo = open(path)?;
    match repo.find_reference(&branch_ref(branch)) {
        Ok(reference) => Ok(reference.target()),
        Err(err) if err.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading branch {branch}")),
    }
}

/// The content of `file` at the tip of `branch`; `None` when the branch or the file is absent.
pub(crate) fn read_file(path: &Path, branch: &str, file: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let repo = open(path)?;
    let Some(tip) = head(path, branch)? else {
        return Ok(None);
    };
    let tree = repo.find_commit(tip)?.tree()?;
    let entry = match tree.get_path(Path::new(file)) {
        Ok(entry) => entry,
        Err(err) if err.code() == git2::ErrorCode::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("looking up {file}")),
    };
    let blob = entry
        .to_object(&repo)?
        .into_blob()
        .map_err(|_| anyhow::anyhow!("{file} is not a file"))?;
    Ok(Some(blob.content().to_vec()))
}

/// The commits of `branch`, newest first (empty when the branch is absent).
pub(crate) fn log(path: &Path, branch: &str) -> anyhow::Result<Vec<String>> {
    let repo = open(path)?;
    let Some(tip) = head(path, branch)? else {
        return Ok(Vec::new());
    };
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    walk.map(|oid| Ok(oid?.to_string())).collect()
}

/// Commits `files` (path, content) on top of `branch` (creating it when absent) and returns
/// the new commit.
pub(crate) fn commit_files(
    path: &Path,
    branch: &str,
    files: &[(&str, &str)],
    message: &str,
) -> anyhow::Result<Oid> {
    let repo = open(path)?;
    let parent = match head(path, branch)? {
        Some(oid) => Some(repo.find_commit(oid)?),
        None => None,
    };
    let baseline = match &parent {
        Some(commit) => commit.tree()?,
        None => repo.find_tree(repo.treebuilder(None)?.write()?)?,
    };
    let mut update = TreeUpdateBuilder::new();
    for (file, content) in files {
        let blob = repo.blob(content.as_bytes())?;
        update.upsert(*file, blob, FileMode::Blob);
    }
    let tree = repo.find_tree(update.create_updated(&repo, &baseline)?)?;
    let signature = Signature::now("testkit", "testkit@example.invalid")?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(
        Some(&branch_ref(branch)),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )
    .with_context(|| format!("committing to {branch} of {}", path.display()))
}

/// Installs a pre-receive hook that declines every update of `branch`, the way a hosting
/// service answers a push to a protected branch.
pub(crate) fn protect_branch(path: &Path, branch: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;

    let hook = hooks_dir(path).join("pre-receive");
    let script = format!(
        "#!/bin/sh\n\
         # testkit: {branch} is protected\n\
         while read old new ref; do\n\
           if [ \"$ref\" = \"refs/heads/{branch}\" ]; then\n\
             echo \"testkit: branch {branch} is protected\" >&2\n\
             exit 1\n\
           fi\n\
         done\n\
         exit 0\n"
    );
    std::fs::create_dir_all(hooks_dir(path))?;
    std::fs::write(&hook, script).with_context(|| format!("writing {}", hook.display()))?;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Merges `source` into `target` the way a hosting service's merge button does (its hooks
/// do not apply): a fast-forward when `target` has not moved, else a merge commit. Returns
/// the new tip of `target`.
pub(crate) fn merge_branch(path: &Path, source: &str, target: &str) -> anyhow::Result<Oid> {
    let repo = open(path)?;
    let theirs = head(path, source)?.with_context(|| format!("no branch {source}"))?;
    let ours = head(path, target)?.with_context(|| format!("no branch {target}"))?;
    let merged = if repo.graph_descendant_of(theirs, ours)? {
        theirs
    } else {
        let (ours_commit, theirs_commit) = (repo.find_commit(ours)?, repo.find_commit(theirs)?);
        let mut index = repo.merge_commits(&ours_commit, &theirs_commit, None)?;
        anyhow::ensure!(!index.has_conflicts(), "{source} conflicts with {target}");
        let tree = repo.find_tree(index.write_tree_to(&repo)?)?;
        let who = Signature::now("testkit", "testkit@example.test")?;
        let message = format!("Merge branch {source} into {target}");
        repo.commit(
            None,
            &who,
            &who,
            &message,
            &tree,
            &[&ours_commit, &theirs_commit],
        )?
    };
    repo.reference(&branch_ref(target), merged, true, "testkit: merge")?;
    Ok(merged)
}

/// The commit another writer makes just before a raced push reaches the server: a new file on
/// top of the branch, so the client's push is no longer a fast-forward.
pub(crate) fn commit_racing_change(path: &Path, branch: &str) -> anyhow::Result<Oid> {
    let file = format!("raced-{}.txt", uuid::Uuid::new_v4().simple());
    commit_files(
        path,
        branch,
        &[(file.as_str(), "a commit made by someone else\n")],
        "testkit: concurrent commit",
    )
}

fn open(path: &Path) -> anyhow::Result<Repository> {
    Repository::open_bare(path).with_context(|| format!("opening {}", path.display()))
}

fn hooks_dir(path: &Path) -> PathBuf {
    path.join("hooks")
}

fn branch_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_and_reads_back_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.git");
        init_bare(&path).unwrap();
        assert_eq!(head(&path, "main").unwrap(), None);
        let first = commit_files(&path, "main", &[("a/b.txt", "one")], "first").unwrap();
        let second = commit_files(&path, "main", &[("c.txt", "two")], "second").unwrap();
        assert_ne!(first, second);
        assert_eq!(head(&path, "main").unwrap(), Some(second));
        assert_eq!(
            read_file(&path, "main", "a/b.txt").unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(read_file(&path, "main", "missing").unwrap(), None);
        assert_eq!(
            log(&path, "main").unwrap(),
            [second.to_string(), first.to_string()]
        );
    }
}
