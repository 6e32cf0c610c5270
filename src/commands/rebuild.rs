//! `rebuild <env>`: validate the request, then run rebuild's steps.

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env, require_confirmable};
use crate::cli::{Cli, RebuildArgs};
use crate::error::{ExitStatus, Result};
use crate::report::Reporter;
use crate::workflow::phases::terraform_apply::ApplyPolicy;
use crate::workflow::rebuild::{self, RebuildOptions};

pub async fn run(
    cli: &Cli,
    args: &RebuildArgs,
    reporter: &dyn Reporter,
    cancel: CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.target.env)?;
    require_confirmable(
        cli,
        args.yes,
        "rebuild applies Terraform changes and nobody can confirm them here",
    )?;
    let options = RebuildOptions {
        policy: ApplyPolicy {
            assume_yes: args.yes,
            allow_replace: args.allow_replace,
        },
        timeout: args.timeout,
        terraform_binary: args.target.terraform.clone(),
    };
    let result = rebuild::run(reporter, cancel, &config, &env, &options).await?;
    let text = result.text();
    Ok(CommandOutput::new(ExitStatus::Success, &result, text))
}
