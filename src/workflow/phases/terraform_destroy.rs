//! terraform-destroy (teardown): a destroy plan, shown and confirmed like create-env's apply
//! (`--yes` skips the question), then applied with live progress. Nothing to destroy is
//! "up to date". It runs only on a [`Cleared`] cluster: emptied of the env, gone, or left as it
//! is on purpose.

use tokio_util::sync::CancellationToken;

use super::reach::Cleared;
use crate::config::EnvConfig;
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::terraform::{EnvRoot, PlanMode, Terraform};
use crate::workflow::{Outcome, terraform};

/// Returns the addresses destroyed. `_cleared` is the proof the cluster was dealt with first.
pub async fn run(
    _cleared: &Cleared,
    tf: &Terraform,
    root: &EnvRoot,
    env: &EnvConfig,
    assume_yes: bool,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<(Outcome, Vec<String>)> {
    let plan = tf.plan(root, PlanMode::Destroy, cancel).await?;
    let summary = plan.summary().clone();
    if summary.destroys.is_empty() {
        return Ok((Outcome::UpToDate("no resources".to_owned()), Vec::new()));
    }
    for address in &summary.destroys {
        reporter.progress("terraform-destroy", format!("will destroy {address}"));
    }
    if !assume_yes {
        let question = format!(
            "Terraform will destroy {} of env {}. Continue?",
            summary.describe(),
            env.name
        );
        match reporter.confirm(&question) {
            Some(true) => {}
            Some(false) => {
                return Err(Error::bad_input("stopped before destroying: not confirmed"));
            }
            None => {
                return Err(Error::bad_input("nobody can confirm the destroy here")
                    .with_hint("pass --yes to destroy without asking"));
            }
        }
    }
    tf.apply(
        root,
        plan,
        |event| {
            if let Some(line) = terraform::progress_line(event) {
                reporter.progress("terraform-destroy", line);
            }
        },
        cancel,
    )
    .await?;
    let outcome = Outcome::Done(format!("destroyed: {}", summary.describe()));
    Ok((outcome, summary.destroys))
}
