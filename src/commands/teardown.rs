//! `teardown <env>`: validate the request, then run teardown's steps (the first of which
//! asks for the typed confirmation, naming what will go).

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env, require_confirmable};
use crate::cli::{Cli, TeardownArgs};
use crate::config::RepositoryMode;
use crate::error::{ExitStatus, Result};
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
    let options = TeardownOptions {
        // Without --yes, the scope step asks for the env name once it knows what will go.
        assume_yes: args.yes,
        force: args.force,
        leave_cluster: args.leave_cluster,
        keep_repo: args.keep_repo,
        via_branch: args.via_branch || env.repository.mode == RepositoryMode::PullRequest,
        timeout: args.timeout,
        terraform_binary: args.target.terraform.clone(),
    };
    let result = teardown::run(reporter, cancel, &config, &env, &options).await?;
    let text = result.text();
    Ok(CommandOutput::new(ExitStatus::Success, &result, text))
}
