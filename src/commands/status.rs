//! `status <env>`: the readiness tree of the env's Flux objects, once, read through the env's
//! Terraform outputs (changing nothing).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env};
use crate::cli::{Cli, EnvArgs};
use crate::cluster::wait::readiness_tree;
use crate::cluster::{FLUX_NAMESPACE, ObjectName, Snapshot, connect};
use crate::contract::Contract;
use crate::error::{Error, ExitStatus, Result};
use crate::report::Reporter;
use crate::terraform::StateInfo;
use crate::workflow::{Outcome, run_step, terraform};

const CONNECT_BUDGET: Duration = Duration::from_secs(30);

pub async fn run(
    cli: &Cli,
    args: &EnvArgs,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.env)?;
    let reading = async {
        let (tf, root) =
            terraform::prepare(&config, &env, args.terraform.as_deref(), cancel).await?;
        if let Some(state) = root.local_state_file()
            && !StateInfo::read(&state)?.exists
        {
            return Err(Error::bad_input(format!(
                "env {} has not been created yet: it has no Terraform state",
                env.name
            ))
            .with_hint(format!("run `gitops-bootstrap create-env {}`", env.name)));
        }
        let contract = Contract::parse(&tf.output_json(&root, cancel).await?, &env.outputs)?;
        let client = connect(&contract.access, CONNECT_BUDGET).await?;
        let root = ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE);
        let snapshot = readiness_tree(&client, &root).await?;
        Ok((
            Outcome::Done(format!("{}/{} Ready", snapshot.ready, snapshot.total)),
            snapshot,
        ))
    };
    let snapshot = run_step(reporter, "status", reading).await.1?;
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
