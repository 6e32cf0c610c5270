//! `rebuild <env>`: validate the request, then run rebuild's steps.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env};
use crate::cli::{Cli, OutputFormat, RebuildArgs};
use crate::error::{Error, ExitStatus, Result};
use crate::report::Reporter;
use crate::workflow::rebuild::{self, RebuildOptions};

pub async fn run(
    cli: &Cli,
    args: &RebuildArgs,
    reporter: &dyn Reporter,
    cancel: CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.target.env)?;
    let interactive = cli.output == OutputFormat::Text
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    if !args.yes && !interactive {
        return Err(Error::bad_input(
            "rebuild applies Terraform changes and nobody can confirm them here",
        )
        .with_hint(
            "pass --yes (required when not running in a terminal, and with --output json)",
        ));
    }
    let options = RebuildOptions {
        assume_yes: args.yes,
        allow_replace: args.allow_replace,
        timeout: args.timeout,
        terraform_binary: args.target.terraform.clone(),
    };
    let result = rebuild::run(reporter, cancel, &config, &env, &options).await?;
    let text = result.text();
    Ok(CommandOutput::new(ExitStatus::Success, &result, text))
}
