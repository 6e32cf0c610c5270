//! `plan <env>`: what Terraform would change, without changing anything.

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env};
use crate::cli::{Cli, EnvArgs};
use crate::error::{ExitStatus, Result};
use crate::lock::EnvLock;
use crate::report::Reporter;
use crate::terraform::PlanMode;
use crate::workflow::{EnvPaths, Outcome, run_step, terraform};

/// How long `plan` waits for another run of the env to finish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn run(
    cli: &Cli,
    args: &EnvArgs,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.env)?;
    // Terraform locks the state too, but says so in its own words mid-run: wait briefly for a
    // running create-env instead, and name it when it does not finish.
    let _lock = EnvLock::acquire_within(
        &env.name,
        &EnvPaths::new(&config, &env.name).lock(),
        LOCK_WAIT,
    )
    .await?;
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
