//! terraform: the network and cluster from the env's module, applied only when the plan has
//! changes (confirmed, or `--yes`), and its outputs read through the contract.

use tokio_util::sync::CancellationToken;

use crate::config::{Config, EnvConfig};
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::terraform::{PlanMode, PlanSummary, Terraform};
use crate::workflow::{Outcome, terraform};

/// What may be applied without asking.
#[derive(Debug, Clone, Copy)]
pub struct ApplyPolicy {
    /// `--yes`: apply without asking.
    pub assume_yes: bool,
    /// `--allow-replace`: destroys and replaces of existing resources are intended.
    pub allow_replace: bool,
}

/// Plan; stop on destroys/replaces unless allowed; ask (or require --yes); apply; read the
/// output contract. Applies nothing when the plan is empty.
pub async fn run(
    tf: &Terraform,
    config: &Config,
    env: &EnvConfig,
    policy: ApplyPolicy,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<(Outcome, Contract)> {
    let root = terraform::init_root(tf, config, env, cancel).await?;
    let plan = tf.plan(&root, PlanMode::Apply, cancel).await?;
    terraform::report_warnings(reporter, plan.warnings());
    let summary = plan.summary().clone();
    let outcome = if summary.is_empty() {
        drop(plan);
        Outcome::UpToDate("no changes".to_owned())
    } else {
        confirm_apply(env, policy, reporter, &summary)?;
        tf.apply(
            &root,
            plan,
            |event| {
                if let Some(line) = terraform::progress_line(event) {
                    reporter.progress("terraform", line);
                }
                if let Some(warning) = event.warning() {
                    terraform::report_warnings(reporter, std::slice::from_ref(warning));
                }
            },
            cancel,
        )
        .await?;
        Outcome::Done(format!("applied: {}", summary.describe()))
    };
    let outputs = tf.outputs(&root, cancel).await?;
    Ok((outcome, Contract::from_outputs(&outputs, &env.outputs)?))
}

fn confirm_apply(
    env: &EnvConfig,
    policy: ApplyPolicy,
    reporter: &dyn Reporter,
    summary: &PlanSummary,
) -> Result<()> {
    if summary.is_destructive() && !policy.allow_replace {
        let mut doomed = summary.destroys.clone();
        doomed.extend(summary.replaces.iter().cloned());
        return Err(Error::bad_input(format!(
            "Terraform would destroy or replace existing resources of env {}: {}",
            env.name,
            doomed.join(", ")
        ))
        .with_hint(format!(
            "review `gitops-bootstrap plan {}`; pass --allow-replace if that is intended",
            env.name
        )));
    }
    if policy.assume_yes {
        return Ok(());
    }
    let question = format!(
        "Terraform will apply {} to env {}. Continue?",
        summary.describe(),
        env.name
    );
    match reporter.confirm(&question) {
        Some(true) => Ok(()),
        Some(false) => Err(Error::bad_input("stopped before applying: not confirmed")),
        None => Err(Error::bad_input(
            "Terraform has changes to apply and nobody can confirm them here",
        )
        .with_hint("pass --yes to apply without asking")),
    }
}
