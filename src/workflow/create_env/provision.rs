//! terraform and connect: the network and cluster from the env's module, its outputs read
//! through the contract, and a verified client for the cluster.

use std::time::Duration;

use super::{Context, require};
use crate::cluster;
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::terraform::{PlanMode, PlanSummary};
use crate::workflow::{Outcome, terraform};

/// How long a just-created API server gets to answer.
const CONNECT_BUDGET: Duration = Duration::from_secs(180);

/// Plan; stop on destroys/replaces unless allowed; ask (or require --yes); apply; read the
/// output contract. Applies nothing when the plan is empty.
pub async fn terraform(ctx: &mut Context<'_>) -> Result<Outcome> {
    let tf = require(&ctx.terraform, "Terraform")?.clone();
    let root = terraform::init_root(&tf, &ctx.config, &ctx.env, &ctx.cancel).await?;
    let plan = tf.plan(&root, PlanMode::Apply, &ctx.cancel).await?;
    let summary = plan.summary().clone();
    let outcome = if summary.is_empty() {
        drop(plan);
        Outcome::UpToDate("no changes".to_owned())
    } else {
        confirm_apply(ctx, &summary)?;
        let reporter = ctx.reporter;
        tf.apply(
            &root,
            plan,
            |event| {
                if let Some(line) = terraform::progress_line(event) {
                    reporter.progress("terraform", line);
                }
            },
            &ctx.cancel,
        )
        .await?;
        Outcome::Done(format!("applied: {}", summary.describe()))
    };
    let outputs = tf.output_json(&root, &ctx.cancel).await?;
    ctx.contract = Some(Contract::parse(&outputs, &ctx.env.outputs)?);
    ctx.root = Some(root);
    Ok(outcome)
}

fn confirm_apply(ctx: &Context<'_>, summary: &PlanSummary) -> Result<()> {
    if summary.is_destructive() && !ctx.options.allow_replace {
        let mut doomed = summary.destroys.clone();
        doomed.extend(summary.replaces.iter().cloned());
        return Err(Error::bad_input(format!(
            "Terraform would destroy or replace existing resources of env {}: {}",
            ctx.env.name,
            doomed.join(", ")
        ))
        .with_hint(format!(
            "review `gitops-bootstrap plan {}`; pass --allow-replace if that is intended",
            ctx.env.name
        )));
    }
    if ctx.options.assume_yes {
        return Ok(());
    }
    let question = format!(
        "Terraform will apply {} to env {}. Continue?",
        summary.describe(),
        ctx.env.name
    );
    match ctx.reporter.confirm(&question) {
        Some(true) => Ok(()),
        Some(false) => Err(Error::bad_input("stopped before applying: not confirmed")),
        None => Err(Error::bad_input(
            "Terraform has changes to apply and nobody can confirm them here",
        )
        .with_hint("pass --yes to apply without asking")),
    }
}

/// A client from the contract's access, retried while a new API server comes up.
pub async fn connect(ctx: &mut Context<'_>) -> Result<Outcome> {
    let contract = require(&ctx.contract, "the output contract")?;
    let client = cluster::connect(&contract.access, CONNECT_BUDGET).await?;
    let summary = format!("connected to cluster {}", contract.cluster_name);
    ctx.client = Some(client);
    Ok(Outcome::Done(summary))
}
