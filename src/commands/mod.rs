//! One file per command: turn its arguments into validated options, call the workflow that
//! runs it (`crate::workflow`), and turn the result into the command's output (JSON and text).
//! Nothing here takes a lock, runs Terraform or reaches a cluster.

mod completions;
mod config_schema;
mod create_env;
mod doctor;
mod envs;
mod init;
mod lint;
mod man;
mod plan;
mod rebuild;
mod status;
mod teardown;

use std::io::IsTerminal;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, ConfigCommand, OutputFormat};
use crate::config::{Config, EnvConfig};
use crate::error::{Error, ExitStatus, Result};
use crate::report::Reporter;

/// What a command produced: the `result` event's payload and its human rendering.
#[derive(Debug)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub result: serde_json::Value,
    pub text: String,
}

impl CommandOutput {
    pub fn new(status: ExitStatus, result: &impl Serialize, text: String) -> Self {
        CommandOutput {
            status,
            result: serde_json::to_value(result).expect("command results always serialize"),
            text,
        }
    }
}

pub async fn run(
    cli: &Cli,
    reporter: &dyn Reporter,
    cancel: CancellationToken,
) -> Result<CommandOutput> {
    match &cli.command {
        Command::CreateEnv(args) => create_env::run(cli, args, reporter, cancel).await,
        Command::Status(args) => status::run(cli, args, reporter, &cancel).await,
        Command::Teardown(args) => teardown::run(cli, args, reporter, cancel).await,
        Command::Rebuild(args) => rebuild::run(cli, args, reporter, cancel).await,
        Command::Plan(args) => plan::run(cli, args, reporter, &cancel).await,
        Command::Doctor(args) => doctor::run(cli, args).await,
        Command::Lint(args) => lint::run(cli, args, reporter),
        Command::Init(args) => init::run(args),
        Command::Envs => envs::run(cli),
        Command::Config(ConfigCommand::Schema) => Ok(config_schema::run()),
        Command::Completions { shell } => Ok(completions::run(*shell)),
        Command::Man { dir } => man::run(dir.as_deref()),
    }
}

/// Refuses a run that changes things when nobody can confirm it (no terminal, or JSON output)
/// and `--yes` was not given, with `refusal` as the message; checked before any side effect.
fn require_confirmable(cli: &Cli, assume_yes: bool, refusal: &str) -> Result<()> {
    let interactive = cli.output == OutputFormat::Text
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    if !assume_yes && !interactive {
        return Err(Error::bad_input(refusal.to_owned()).with_hint(
            "pass --yes (required when not running in a terminal, and with --output json)",
        ));
    }
    Ok(())
}

/// Every command that touches an environment validates the whole file first.
fn load_env(cli: &Cli, env: &str) -> Result<(Config, EnvConfig)> {
    let config = Config::load(&cli.config)?;
    let env = config.env(env)?.clone();
    Ok((config, env))
}
