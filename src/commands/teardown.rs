//! `teardown <env>`: validate the request, then run teardown's steps.

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env, require_confirmable};
use crate::cli::{Cli, TeardownArgs};
use crate::config::RepositoryMode;
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
    require_confirmable(
        cli,
        args.yes,
        "teardown deletes the env and nobody can confirm it here",
    )?;
    if !args.yes {
        // Typing the name, not y/N: a teardown cannot be undone, and a reflexive "y" on the
        // wrong env is the mistake this guards against.
        let question = format!(
            "Tear down env {}: its apps, Flux, its Terraform resources and clusters/{}/ in Git? Type the env name to confirm:",
            env.name, env.name
        );
        let typed = reporter.ask(&question).unwrap_or_default();
        if typed != env.name {
            return Err(Error::bad_input(format!(
                "teardown not confirmed: \"{typed}\" is not the env name {}; nothing was changed",
                env.name
            ))
            .with_hint("type the env name exactly, or pass --yes"));
        }
    }
    let options = TeardownOptions {
        // The person confirmed the whole teardown, destroy included.
        assume_yes: true,
        force: args.force,
        keep_repo: args.keep_repo,
        via_branch: args.via_branch || env.repository.mode == RepositoryMode::PullRequest,
        timeout: args.timeout,
        terraform_binary: args.target.terraform.clone(),
    };
    let result = teardown::run(reporter, cancel, &config, &env, &options).await?;
    let text = result.text();
    Ok(CommandOutput::new(ExitStatus::Success, &result, text))
}
