//! `create-env <env>`: validate the request, then run create-env's steps.

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env, require_confirmable};
use crate::cli::{Cli, CreateEnvArgs};
use crate::config::{RepositoryMode, check_profile_name};
use crate::error::{Error, ExitStatus, Result};
use crate::report::Reporter;
use crate::workflow::create_env::{self, CreateEnvOptions};
use crate::workflow::phases::preflight::PreflightOptions;
use crate::workflow::phases::terraform_apply::ApplyPolicy;

pub async fn run(
    cli: &Cli,
    args: &CreateEnvArgs,
    reporter: &dyn Reporter,
    cancel: CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.target.env)?;
    let profile = args.profile.clone().unwrap_or_else(|| env.profile.clone());
    check_profile_name(&profile)
        .map_err(|reason| Error::bad_input(format!("--profile {reason}")))?;
    require_confirmable(
        cli,
        args.yes,
        "create-env applies Terraform changes and nobody can confirm them here",
    )?;

    let options = CreateEnvOptions {
        preflight: PreflightOptions {
            profile,
            change_profile: args.change_profile,
            skip_lint: args.skip_lint,
            flux_manifests: args.flux_manifests.clone(),
            terraform_binary: args.target.terraform.clone(),
        },
        policy: ApplyPolicy {
            assume_yes: args.yes,
            allow_replace: args.allow_replace,
        },
        adopt: args.adopt,
        via_branch: args.via_branch || env.repository.mode == RepositoryMode::PullRequest,
        timeout: args.timeout,
    };
    let result = create_env::run(reporter, cancel, &config, &env, &options).await?;
    let text = result.text();
    Ok(CommandOutput::new(ExitStatus::Success, &result, text))
}
