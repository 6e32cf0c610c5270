//! `teardown <env>`: validate the request, then run teardown's steps.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env};
use crate::cli::{Cli, OutputFormat, TeardownArgs};
use crate::error::{Error, ExitStatus, Result};
use crate::report::Reporter;
use crate::workflow::teardown::{self, TeardownOptions};

pub async fn run(
    cli: &Cli,
    args: &TeardownArgs,
    reporter: &dyn Reporter,
    cancel: CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.target.env)?;
    let interactive = cli.output == OutputFormat::Text
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    if !args.yes {
        if !interactive {
            return Err(Error::bad_input(
                "teardown deletes the env and nobody can confirm it here",
            )
            .with_hint(
                "pass --yes (required when not running in a terminal, and with --output json)",
            ));
        }
        let question = format!(
            "Tear down env {}: its apps, Flux, its Terraform resources and clusters/{}/ in Git?",
            env.name, env.name
        );
        if reporter.confirm(&question) != Some(true) {
            return Err(Error::bad_input(
                "teardown not confirmed: nothing was changed",
            ));
        }
    }
    let options = TeardownOptions {
        // The person confirmed the whole teardown, destroy included.
        assume_yes: true,
        force: args.force,
        keep_repo: args.keep_repo,
        timeout: args.timeout,
        terraform_binary: args.target.terraform.clone(),
    };
    let result = teardown::run(reporter, cancel, &config, &env, &options).await?;
    let text = result.text();
    Ok(CommandOutput::new(ExitStatus::Success, &result, text))
}
