//! await-merge (pull-request mode): waits until the proposed commit — or a descendant, or a
//! squash of it — is on the env's branch, then hands the clone on at that tip. Git has no watch: the branch is polled with `ls-remote`, backing off, and fetched only
//! when it moved. The wait has its own `--timeout` (a review takes what it takes); a rerun
//! finds the open branch and waits again.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ExitStatus, Result};
use crate::gitops::Workspace;
use crate::gitops::check_access;
use crate::report::Reporter;
use crate::report::short_sha;
use crate::workflow::Outcome;
use crate::workflow::git::blocking;
use crate::workflow::proposal::Proposed;

/// Polls of the target branch through the tool's one backoff: quick at first (a merge right
/// after the push), then every 10 s at most, jittered so parallel CI jobs do not poll together.
const POLLS: crate::backoff::Backoff = crate::backoff::Backoff {
    first: Duration::from_millis(500),
    cap: Duration::from_secs(10),
};

pub async fn run(
    mut proposed: Proposed,
    timeout: Duration,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<(Outcome, (Workspace, String))> {
    if let Some(head) = proposed.landed.take() {
        let outcome = Outcome::UpToDate(format!("nothing to merge, at {}", short_sha(&head)));
        return Ok((outcome, (proposed.workspace, head)));
    }
    let branch = proposed.workspace.spec().branch.clone();
    let open_at = proposed
        .compare_url
        .clone()
        .unwrap_or_else(|| proposed.workspace.spec().url.clone());
    reporter.progress(
        "await-merge",
        format!(
            "waiting for {} ({}) on {branch}: {open_at}",
            short_sha(&proposed.commit),
            proposed.branch
        ),
    );
    let deadline = Instant::now() + timeout;
    let mut polls = 0;
    let mut seen: Option<String> = None;
    loop {
        polls += 1;
        let spec = proposed.workspace.spec().clone();
        let head = blocking(move || Ok(check_access(&spec)?.branch_head)).await?;
        if head.is_some() && head != seen {
            seen.clone_from(&head);
            let (back, landed) = blocking(move || {
                let landed = proposed.check_landed();
                Ok((proposed, landed))
            })
            .await?;
            proposed = back;
            if let Some(tip) = landed? {
                let outcome = Outcome::Done(format!("merged into {branch} at {}", short_sha(&tip)));
                return Ok((outcome, (proposed.workspace, tip)));
            }
            if let Some(head) = &head {
                reporter.progress(
                    "await-merge",
                    format!(
                        "{branch} is at {}, without {} yet",
                        short_sha(head),
                        proposed.branch
                    ),
                );
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::new(
                ExitStatus::TimedOut,
                format!(
                    "{} ({}) is not on {branch} after {}",
                    short_sha(&proposed.commit),
                    proposed.branch,
                    crate::report::duration(timeout)
                ),
            )
            .with_hint(format!(
                "merge it ({open_at}), then rerun: the rerun finds the open branch and goes on \
                 waiting, it pushes nothing again"
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(POLLS.delay(polls, None).min(deadline - now)) => {}
            () = cancel.cancelled() => {
                return Err(Error::new(ExitStatus::Interrupted, "interrupted while waiting for the merge")
                    .with_hint("rerun the same command: it finds the open branch and goes on waiting"));
            }
        }
    }
}
