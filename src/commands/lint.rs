//! `lint [--env E | --profile P] [--fix] [PATH]`: offline checks of a GitOps repository.

use super::{CommandOutput, load_env};
use crate::cli::{Cli, LintArgs};
use crate::error::{ExitStatus, Result};
use crate::report::Reporter;
use crate::workflow::lint;

pub fn run(cli: &Cli, args: &LintArgs, reporter: &dyn Reporter) -> Result<CommandOutput> {
    let target = match &args.env {
        Some(env) => {
            let (_, env) = load_env(cli, env)?;
            lint::env_target(&args.path, &env, &env.profile)?
        }
        None => lint::repository_target(&args.path, args.profile.iter().cloned().collect()),
    };
    let summary = lint::run(&target, args.fix, reporter)?;
    let status = if summary.ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    Ok(CommandOutput::new(status, &summary, summary.text()))
}
