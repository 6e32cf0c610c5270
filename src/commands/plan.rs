//! `plan <env>`: what Terraform would change and the files create-env would write in the
//! repository (a unified diff against the branch tip) and, when the cluster exists, the
//! objects it would apply (a server-side dry-run diff), without changing anything. A section
//! that cannot be computed says why; the Terraform plan still stands.

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env};
use crate::cli::{Cli, EnvArgs};
use crate::error::{ExitStatus, Result};
use crate::report::{Reporter, short_sha};
use crate::workflow::plan::{
    self, Change, ClusterPlan, Plan, PlannedChange, RepositoryPlan, Section,
};

pub async fn run(
    cli: &Cli,
    args: &EnvArgs,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.env)?;
    let plan = plan::run(reporter, &config, &env, args.terraform.as_deref(), cancel).await?;
    Ok(CommandOutput::new(ExitStatus::Success, &plan, text(&plan)))
}

/// Terraform's changes by address, then the repository and cluster sections.
fn text(plan: &Plan) -> String {
    let summary = &plan.terraform;
    let mut text = format!("env {}: {}", plan.env, summary.describe());
    for (sign, addresses) in [
        ("+", &summary.adds),
        ("~", &summary.changes),
        ("-/+", &summary.replaces),
        ("-/+ (tainted)", &summary.repairs),
        ("-", &summary.destroys),
    ] {
        for address in addresses {
            text.push_str(&format!("\n  {sign} {address}"));
        }
    }
    text.push_str(&repository_text(&plan.repository));
    text.push_str(&cluster_text(&plan.cluster));
    text
}

/// New files by name and size (gotk-components.yaml alone is thousands of lines), changed
/// files with their diff; or why the repository was not compared.
fn repository_text(section: &Section<RepositoryPlan>) -> String {
    let repository = match section {
        Section::Planned(repository) => repository,
        Section::Skipped { reason, hint } => {
            let mut text = format!("\nrepository: not compared: {reason}");
            if let Some(hint) = hint {
                text.push_str(&format!("\n  hint: {hint}"));
            }
            return text;
        }
    };
    let tip = repository.tip.as_deref().map_or("no commit yet", short_sha);
    let mut text = format!(
        "\nrepository {} ({tip}): {}",
        repository.branch,
        repository.describe()
    );
    for file in &repository.files {
        match file.change {
            Change::Create => {
                text.push_str(&format!("\n  + {} ({} lines)", file.path, file.lines));
            }
            Change::Modify => {
                text.push_str(&format!("\n  ~ {}", file.path));
                for line in file.diff.lines() {
                    text.push_str(&format!("\n    {line}"));
                }
            }
            Change::Unchanged => {}
        }
    }
    if repository.age_key_pending {
        text.push_str(
            "\n  (the env has no age key yet: create-env generates it and names it in .sops.yaml)",
        );
    }
    text
}

/// Objects to create by name, changed ones with their diff (Secret values redacted).
fn cluster_text(section: &Section<ClusterPlan>) -> String {
    let cluster = match section {
        Section::Planned(cluster) => cluster,
        Section::Skipped { reason, .. } => return format!("\ncluster: not compared: {reason}"),
    };
    let mut text = format!("\ncluster: {}", cluster.describe());
    for object in &cluster.objects {
        match object.change {
            PlannedChange::Create => text.push_str(&format!("\n  + {}", object.object)),
            PlannedChange::Change => {
                text.push_str(&format!("\n  ~ {}", object.object));
                for line in object.diff.lines() {
                    text.push_str(&format!("\n    {line}"));
                }
            }
            PlannedChange::Conflict => {
                text.push_str(&format!("\n  ! {}: {}", object.object, object.diff));
            }
            PlannedChange::Unchanged => {}
        }
    }
    for skipped in &cluster.not_compared {
        text.push_str(&format!("\n  (not compared: {skipped})"));
    }
    text
}
