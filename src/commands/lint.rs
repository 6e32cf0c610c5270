//! `lint [--env E | --profile P] [--fix] [PATH]`: offline checks of a GitOps repository.

use super::{CommandOutput, load_env};
use crate::cli::{Cli, LintArgs};
use crate::config::Config;
use crate::error::{ExitStatus, Result};
use crate::report::Reporter;
use crate::workflow::lint;

pub fn run(cli: &Cli, args: &LintArgs, reporter: &dyn Reporter) -> Result<CommandOutput> {
    let target = match &args.env {
        Some(env) => {
            let (config, env) = load_env(cli, env)?;
            lint::env_target(&args.path, &env, &env.profile, Some(&config))?
        }
        None => {
            // A repository with a config keeps its profiles where the config says.
            let config = cli
                .config
                .is_file()
                .then(|| Config::load(&cli.config))
                .transpose()?;
            lint::repository_target(
                &args.path,
                args.profile.iter().cloned().collect(),
                config.as_ref(),
                args.profiles_dir.as_deref(),
            )?
        }
    };
    let summary = lint::run(&target, args.fix, reporter)?;
    let status = if summary.ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    Ok(CommandOutput::new(status, &summary, summary.text()))
}
