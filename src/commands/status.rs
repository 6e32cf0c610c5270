//! `status <env>`: the readiness tree of the env's Flux objects, once, read through the env's
//! Terraform outputs (changing nothing).

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env};
use crate::cli::{Cli, EnvArgs};
use crate::cluster::Snapshot;
use crate::error::{ExitStatus, Result};
use crate::report::Reporter;
use crate::workflow::status;

pub async fn run(
    cli: &Cli,
    args: &EnvArgs,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.env)?;
    let snapshot = status::run(reporter, &config, &env, args.terraform.as_deref(), cancel).await?;
    let status = if snapshot.all_ready() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    let text = table(&env.name, &snapshot);
    Ok(CommandOutput::new(status, &snapshot, text))
}

/// One aligned row per object: name, state, what it waits on.
fn table(env: &str, snapshot: &Snapshot) -> String {
    let names: Vec<String> = snapshot
        .rows
        .iter()
        .map(|row| row.object.to_string())
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let mut text = format!("env {env}: {}/{} Ready\n", snapshot.ready, snapshot.total);
    for (row, name) in snapshot.rows.iter().zip(&names) {
        let mark = if row.readiness.is_ready() {
            "✔"
        } else {
            "✘"
        };
        text.push_str(&format!("  {mark} {name:<width$}  {}", row.readiness));
        if !row.waiting_on.is_empty() {
            let waiting: Vec<String> = row.waiting_on.iter().map(ToString::to_string).collect();
            text.push_str(&format!("  (waits on {})", waiting.join(", ")));
        }
        text.push('\n');
    }
    text.trim_end().to_owned()
}
