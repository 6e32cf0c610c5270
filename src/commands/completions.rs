//! `completions <shell>`: a completion script generated from the CLI definition.

use clap::CommandFactory;

use super::CommandOutput;
use crate::cli::Cli;
use crate::error::ExitStatus;

pub fn run(shell: clap_complete::Shell) -> CommandOutput {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gitops-bootstrap", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    CommandOutput::new(
        ExitStatus::Success,
        &serde_json::json!({ "shell": shell.to_string(), "script": script }),
        script,
    )
}
