//! `doctor [<env>]`: one line per check, each failed one with its fix.

use super::CommandOutput;
use crate::cli::{Cli, DoctorArgs};
use crate::error::{ExitStatus, Result};
use crate::workflow::doctor::{self, Check, CheckStatus};

pub async fn run(cli: &Cli, args: &DoctorArgs) -> Result<CommandOutput> {
    let checks = doctor::checks(&cli.config, args.env.as_deref(), args.terraform.as_deref()).await;
    let failed = checks.iter().any(|c| c.status == CheckStatus::Failed);
    let text = checks.iter().map(line).collect::<Vec<_>>().join("\n");
    let status = if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    };
    Ok(CommandOutput::new(
        status,
        &serde_json::json!({ "checks": checks }),
        text,
    ))
}

/// A check as a line: its mark, name and detail, and the fix under it.
fn line(check: &Check) -> String {
    let mark = match check.status {
        CheckStatus::Ok => "✔",
        CheckStatus::Warning => "⚠",
        CheckStatus::Failed => "✘",
    };
    let mut line = format!("{mark} {}: {}", check.name, check.detail);
    if let Some(fix) = &check.fix {
        line.push_str(&format!("\n    fix: {fix}"));
    }
    line
}
