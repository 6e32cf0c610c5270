//! The phases the workflows are made of, one file each. A phase takes what it needs as typed
//! arguments and returns its [`Outcome`] with a typed value for the phases after it; the
//! drivers (`create_env`, …) decide the order and thread the values through.

pub mod await_merge;
pub mod branch_tip;
pub mod cloud_resources;
pub mod cluster_plan;
pub mod commit;
pub mod config_and_secrets;
pub mod connect;
pub mod delete_apps;
pub mod detect;
pub mod flux_drift;
pub mod flux_install;
pub mod flux_uninstall;
pub mod hand_over;
pub mod lock;
pub mod observe;
pub mod preflight;
pub mod reach;
pub mod rebuild_preflight;
pub mod remove_from_git;
pub mod repository_plan;
pub mod scope;
pub mod summary;
pub mod suspend_sync;
pub mod sync;
pub mod terraform_apply;
pub mod terraform_destroy;
pub mod terraform_drift;
pub mod terraform_plan;
pub mod wait_for_apps;

use crate::cluster::teardown::Leftover;
use crate::cluster::{ApplyOutcome, ApplySummary};
use crate::error::Error;
use crate::workflow::Outcome;

/// A step with nothing to do in this situation, saying why.
pub async fn skipped<T: Default>(reason: &str) -> crate::Result<(Outcome, T)> {
    Ok((Outcome::UpToDate(reason.to_owned()), T::default()))
}

/// What did not go in time, as a table: kind, namespace/name, finalizers, age.
fn leftovers_error(what: &str, leftovers: &[Leftover]) -> Error {
    let rows: Vec<String> = leftovers
        .iter()
        .map(|l| {
            format!(
                "\n    {}  finalizers: [{}]  age: {}s",
                l.object,
                l.finalizers.join(", "),
                l.age_seconds
            )
        })
        .collect();
    Error::failure(format!(
        "{} {what} were not gone in time:{}",
        leftovers.len(),
        rows.concat()
    ))
    .with_hint("find what holds their finalizers (a cloud controller, a stuck volume) and rerun; --force leaves them behind")
}

/// "Up to date" when a server-side apply changed nothing, else what it created and changed,
/// and which fields it took over from whom when adopting.
fn applied(what: &str, summary: &ApplySummary) -> Outcome {
    if summary.is_up_to_date() {
        return Outcome::UpToDate(format!("{} {what} unchanged", summary.objects.len()));
    }
    let takeovers = summary.takeovers();
    let taken = match takeovers.is_empty() {
        true => String::new(),
        false => format!("; took over {}", takeovers.join(", ")),
    };
    Outcome::Done(format!(
        "{what}: {} created, {} changed, {} unchanged{taken}",
        summary.count(ApplyOutcome::Created),
        summary.count(ApplyOutcome::Changed),
        summary.count(ApplyOutcome::Unchanged)
    ))
}
