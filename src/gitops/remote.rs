//! Talking to the remote: listing its refs (access checks), fetching the branch, pushing it.
//! Every connection goes through [`credentials::callbacks`], and every libgit2 error through
//! [`credentials::classify`].

use git2::{
    AutotagOption, Direction, FetchOptions, FetchPrune, Oid, PushOptions, Remote, Repository,
};

use super::credentials::{self, Observed};
use super::deadline;
use super::url::{self, RemoteUrl};
use super::{GitError, RepoSpec};

/// The name of the remote in the working clone.
pub(super) const ORIGIN: &str = "origin";

/// What an access check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInfo {
    /// The branch the remote's HEAD names, if it has one.
    pub default_branch: Option<String>,
    /// The commit the spec's branch points at; `None` when the branch does not exist yet.
    pub branch_head: Option<String>,
}

/// Connects with the spec's credentials and lists the refs, like `git ls-remote`.
pub fn check_access(spec: &RepoSpec) -> Result<RemoteInfo, GitError> {
    list_refs(spec, Direction::Fetch)
}

/// Like [`check_access`], but asks for the push service, which servers refuse to credentials
/// that may only read.
pub fn check_push_access(spec: &RepoSpec) -> Result<RemoteInfo, GitError> {
    list_refs(spec, Direction::Push)
}

fn list_refs(spec: &RepoSpec, direction: Direction) -> Result<RemoteInfo, GitError> {
    let url = url::validate(spec)?;
    let observed = Observed::default();
    let mut remote = Remote::create_detached(url.text.as_str())
        .map_err(|err| credentials::classify(err, "connect to", &url, &observed))?;
    let (branch_head, default_branch) = advertised(&mut remote, spec, &url, direction)?;
    Ok(RemoteInfo {
        default_branch,
        branch_head: branch_head.map(|oid| oid.to_string()),
    })
}

/// Connects `remote` for `direction` and reads what the server advertises: the tip of the
/// spec's branch and the branch its HEAD names. The session ends with the call; the transport
/// (and its HTTP connection) stays with `remote`.
fn advertised(
    remote: &mut Remote<'_>,
    spec: &RepoSpec,
    url: &RemoteUrl,
    direction: Direction,
) -> Result<(Option<Oid>, Option<String>), GitError> {
    deadline::await_ssh_greeting(url)?;
    let observed = Observed::default();
    let callbacks = credentials::callbacks(spec, url, &observed)?;
    let connection = remote
        .connect_auth(direction, Some(callbacks), None)
        .map_err(|err| credentials::classify(err, "connect to", url, &observed))?;
    let branch_ref = format!("refs/heads/{}", spec.branch);
    let heads = connection
        .list()
        .map_err(|err| credentials::classify(err, "list the refs of", url, &observed))?;
    let branch_head = heads
        .iter()
        .find(|head| head.name() == branch_ref)
        .map(|head| head.oid());
    let default_branch = connection.default_branch().ok().and_then(|name| {
        name.as_str()
            .ok()
            .map(|name| name.trim_start_matches("refs/heads/").to_string())
    });
    Ok((branch_head, default_branch))
}

/// Proves the spec's credential may push (the receive-pack advertisement, as
/// [`check_push_access`]) and brings `refs/remotes/origin/<branch>` to the advertised tip,
/// fetching only when the clone lacks that commit. Returns the tip, `None` when the remote has
/// no such branch.
///
/// Both go through one `Remote`, so libgit2 keeps its HTTP connection between them. They
/// cannot share one session: pushing and fetching are distinct services (receive-pack and
/// upload-pack), each with its own advertisement.
pub(super) fn push_rights_and_tip(
    repo: &Repository,
    spec: &RepoSpec,
    url: &RemoteUrl,
) -> Result<Option<Oid>, GitError> {
    let observed = Observed::default();
    let mut remote = repo
        .find_remote(ORIGIN)
        .map_err(|err| credentials::classify(err, "connect to", url, &observed))?;
    let (tip, _) = advertised(&mut remote, spec, url, Direction::Push)?;
    let have = tip.is_some_and(|oid| repo.find_commit(oid).is_ok());
    if tip.is_some() && !have {
        return fetch_over(&mut remote, repo, spec, url, &spec.branch);
    }
    // What the fetch would have done: the tracking ref at the tip, or gone with the branch.
    let tracking = tracking_ref(&spec.branch);
    let recorded = match tip {
        Some(oid) => repo
            .reference(&tracking, oid, true, "gitops-bootstrap: advertised tip")
            .map(drop),
        None => match repo.find_reference(&tracking) {
            Ok(mut reference) => reference.delete(),
            Err(_) => Ok(()),
        },
    };
    recorded.map_err(|source| GitError::Local {
        op: "record the advertised tip",
        dir: repo.path().to_path_buf(),
        source,
    })?;
    Ok(tip)
}

/// Fetches the spec's branch into `refs/remotes/origin/<branch>` (dropping it when the branch
/// is gone) and returns its tip, `None` when the remote has no such branch.
pub(super) fn fetch_branch(
    repo: &Repository,
    spec: &RepoSpec,
    url: &RemoteUrl,
) -> Result<Option<Oid>, GitError> {
    fetch_named(repo, spec, url, &spec.branch)
}

/// Like [`fetch_branch`], for another branch of the same remote.
pub(super) fn fetch_named(
    repo: &Repository,
    spec: &RepoSpec,
    url: &RemoteUrl,
    branch: &str,
) -> Result<Option<Oid>, GitError> {
    let observed = Observed::default();
    let mut remote = repo
        .find_remote(ORIGIN)
        .map_err(|err| credentials::classify(err, "fetch", url, &observed))?;
    fetch_over(&mut remote, repo, spec, url, branch)
}

fn fetch_over(
    remote: &mut Remote<'_>,
    repo: &Repository,
    spec: &RepoSpec,
    url: &RemoteUrl,
    branch: &str,
) -> Result<Option<Oid>, GitError> {
    deadline::await_ssh_greeting(url)?;
    let observed = Observed::default();
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(credentials::callbacks(spec, url, &observed)?)
        .prune(FetchPrune::On)
        .download_tags(AutotagOption::None);
    let refspec = format!("+refs/heads/{branch}:{}", tracking_ref(branch));
    remote
        .fetch(&[refspec.as_str()], Some(&mut options), None)
        .map_err(|err| credentials::classify(err, "fetch", url, &observed))?;
    match repo.find_reference(&tracking_ref(branch)) {
        Ok(reference) => Ok(reference.target()),
        Err(err) if err.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(err) => Err(credentials::classify(err, "fetch", url, &observed)),
    }
}

/// How a push ended, when the server did not refuse it outright.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pushed {
    Accepted,
    /// Another commit reached the branch first: fetch, rebuild, try again.
    Raced,
}

/// Pushes the local branch to the remote one, never forced.
pub(super) fn push_branch(
    repo: &Repository,
    spec: &RepoSpec,
    url: &RemoteUrl,
) -> Result<Pushed, GitError> {
    push_named(repo, spec, url, &spec.branch, None)
}

/// Like [`push_branch`], for another local branch of the same name on the remote. With a
/// `lease`, the remote branch is replaced (a forced push) only while it still points at that
/// commit: anything pushed there since the caller looked makes it [`Pushed::Raced`].
pub(super) fn push_named(
    repo: &Repository,
    spec: &RepoSpec,
    url: &RemoteUrl,
    branch: &str,
    lease: Option<Oid>,
) -> Result<Pushed, GitError> {
    deadline::await_ssh_greeting(url)?;
    let observed = Observed::default();
    let moved = &std::cell::Cell::new(false);
    let mut callbacks = credentials::callbacks(spec, url, &observed)?;
    if let Some(expected) = lease {
        // Checked against the server's own advertisement, just before the update is sent.
        callbacks.push_negotiation(move |updates| {
            if updates.iter().any(|update| update.src() != expected) {
                moved.set(true);
                return Err(git2::Error::from_str("the branch moved since it was read"));
            }
            Ok(())
        });
    }
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks);
    let force = if lease.is_some() { "+" } else { "" };
    let refspec = format!("{force}refs/heads/{branch}:refs/heads/{branch}");
    let mut remote = repo
        .find_remote(ORIGIN)
        .map_err(|err| credentials::classify(err, "push to", url, &observed))?;
    match remote.push(&[refspec.as_str()], Some(&mut options)) {
        Err(err) if err.code() == git2::ErrorCode::NotFastForward => return Ok(Pushed::Raced),
        Err(_) if moved.get() => return Ok(Pushed::Raced),
        Err(err) => return Err(credentials::classify(err, "push to", url, &observed)),
        Ok(()) => {}
    }
    match observed.push_status.take() {
        None => Ok(Pushed::Accepted),
        Some(status) if is_lost_race(&status) => Ok(Pushed::Raced),
        Some(status) => Err(GitError::PushRejected {
            url: url.text.clone(),
            branch: branch.to_owned(),
            status,
        }),
    }
}

/// Statuses receive-pack gives a ref that moved between the advertisement and the update.
fn is_lost_race(status: &str) -> bool {
    let status = status.to_lowercase();
    [
        "fetch first",
        "non-fast-forward",
        "stale info",
        "failed to update ref",
        "cannot lock ref",
    ]
    .iter()
    .any(|race| status.contains(race))
}

pub(super) fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/{ORIGIN}/{branch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_lost_races_from_refusals() {
        assert!(is_lost_race("fetch first"));
        assert!(is_lost_race("failed to update ref"));
        assert!(!is_lost_race("pre-receive hook declined"));
        assert!(!is_lost_race("protected branch hook declined"));
    }
}
