//! The phases the workflows are made of, one file each. A phase takes what it needs as typed
//! arguments and returns its [`Outcome`] with a typed value for the phases after it; the
//! drivers (`create_env`, …) decide the order and thread the values through.

pub mod commit;
pub mod config_and_secrets;
pub mod connect;
pub mod flux_install;
pub mod lock;
pub mod preflight;
pub mod summary;
pub mod sync;
pub mod terraform_apply;
pub mod wait_for_apps;

use crate::cluster::{ApplyOutcome, ApplySummary};
use crate::workflow::Outcome;

/// A commit as people read it.
pub fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// "Up to date" when a server-side apply changed nothing, else what it created and changed.
fn applied(what: &str, summary: &ApplySummary) -> Outcome {
    if summary.is_up_to_date() {
        return Outcome::UpToDate(format!("{} {what} unchanged", summary.objects.len()));
    }
    Outcome::Done(format!(
        "{what}: {} created, {} changed, {} unchanged",
        summary.count(ApplyOutcome::Created),
        summary.count(ApplyOutcome::Changed),
        summary.count(ApplyOutcome::Unchanged)
    ))
}
