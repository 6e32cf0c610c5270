//! `init [DIR] [--force]`: scaffold a GitOps repository from the content in the binary.

use super::CommandOutput;
use crate::cli::InitArgs;
use crate::error::{ExitStatus, Result};
use crate::workflow::init;

pub fn run(args: &InitArgs) -> Result<CommandOutput> {
    let summary = init::run(&args.dir, args.force)?;
    Ok(CommandOutput::new(
        ExitStatus::Success,
        &summary,
        summary.text(),
    ))
}
