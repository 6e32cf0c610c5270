//! `plan <env>`: what Terraform would change, without changing anything.

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env};
use crate::cli::{Cli, EnvArgs};
use crate::error::{ExitStatus, Result};
use crate::report::Reporter;
use crate::terraform::PlanMode;
use crate::workflow::{Outcome, run_step, terraform};

pub async fn run(
    cli: &Cli,
    args: &EnvArgs,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.env)?;
    let planning = async {
        let (tf, root) =
            terraform::prepare(&config, &env, args.terraform.as_deref(), cancel).await?;
        let summary = tf
            .plan(&root, PlanMode::Apply, cancel)
            .await?
            .summary()
            .clone();
        let outcome = if summary.is_empty() {
            Outcome::UpToDate(summary.describe())
        } else {
            Outcome::Done(summary.describe())
        };
        Ok((outcome, summary))
    };
    let summary = run_step(reporter, "terraform-plan", planning).await.1?;
    let mut text = format!("env {}: {}", env.name, summary.describe());
    for (sign, addresses) in [
        ("+", &summary.adds),
        ("~", &summary.changes),
        ("-/+", &summary.replaces),
        ("-/+ (tainted)", &summary.repairs),
        ("-", &summary.destroys),
    ] {
        for address in addresses {
            text.push_str(&format!("\n  {sign} {address}"));
        }
    }
    Ok(CommandOutput::new(
        ExitStatus::Success,
        &serde_json::json!({ "env": env.name, "terraform": summary }),
        text,
    ))
}
