//! `envs`: the configured environments, as a table or as CI matrices.

use super::CommandOutput;
use crate::cli::Cli;
use crate::config::Config;
use crate::error::{ExitStatus, Result};
use crate::workflow::envs;

pub fn run(cli: &Cli) -> Result<CommandOutput> {
    let config = Config::load(&cli.config)?;
    let matrix = envs::matrix(&config);
    Ok(CommandOutput::new(
        ExitStatus::Success,
        &matrix,
        matrix.text(),
    ))
}
