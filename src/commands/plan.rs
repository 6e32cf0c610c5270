//! `plan <env>`: what Terraform would change and the files create-env would write in the
//! repository (a unified diff against the branch tip) and, when the cluster exists, the
//! objects it would apply (a server-side dry-run diff), without changing anything. A section
//! that cannot be computed says why; the Terraform plan still stands.

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, load_env};
use crate::cli::{Cli, EnvArgs};
use crate::error::{ExitStatus, Result};
use crate::lock::EnvLock;
use crate::report::{Reporter, short_sha};
use crate::terraform::PlanMode;
use crate::workflow::plan::{self, Change, ClusterPlan, PlannedChange, RepositoryPlan, Section};
use crate::workflow::{EnvPaths, Outcome, run_step, terraform};

/// How long `plan` waits for another run of the env to finish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn run(
    cli: &Cli,
    args: &EnvArgs,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<CommandOutput> {
    let (config, env) = load_env(cli, &args.env)?;
    // Terraform locks the state too, but says so in its own words mid-run: wait briefly for a
    // running create-env instead, and name it when it does not finish.
    let _lock = EnvLock::acquire_within(
        &env.name,
        &EnvPaths::new(&config, &env.name).lock(),
        LOCK_WAIT,
    )
    .await?;
    let planning = async {
        let (tf, root) =
            terraform::prepare(&config, &env, args.terraform.as_deref(), cancel).await?;
        let summary = tf
            .plan(&root, PlanMode::Apply, cancel)
            .await?
            .summary()
            .clone();
        let outcome = if summary.is_empty() {
            Outcome::UpToDate(summary.describe())
        } else {
            Outcome::Done(summary.describe())
        };
        Ok((outcome, (tf, root, summary)))
    };
    let (tf, root, summary) = run_step(reporter, "terraform-plan", planning).await.1?;
    let mut rendered = None;
    let comparing = async {
        let section = Section::from_result(plan::repository(&env).await.map(|(plan, files)| {
            rendered = Some(files);
            plan
        }));
        let outcome = match &section {
            Section::Planned(repository) if repository.is_unchanged() => {
                Outcome::UpToDate(repository.describe())
            }
            Section::Planned(repository) => Outcome::Done(repository.describe()),
            Section::Skipped { reason, .. } => {
                reporter.warning(format!("the repository is not compared: {reason}"));
                Outcome::Done("not compared".to_owned())
            }
        };
        Ok((outcome, section))
    };
    let repository = run_step(reporter, "repository-plan", comparing).await.1?;
    let dry_running = async {
        let result = plan::cluster(&tf, &root, &env, rendered.as_ref(), cancel).await;
        if let Err(err) = &result
            && err.status() != ExitStatus::BadInput
        {
            reporter.warning(format!("the cluster is not compared: {}", err.message()));
        }
        let section = Section::from_result(result);
        let outcome = match &section {
            Section::Planned(cluster)
                if cluster.count(PlannedChange::Unchanged) == cluster.objects.len() =>
            {
                Outcome::UpToDate(cluster.describe())
            }
            Section::Planned(cluster) => Outcome::Done(cluster.describe()),
            Section::Skipped { .. } => Outcome::Done("not compared".to_owned()),
        };
        Ok((outcome, section))
    };
    let cluster = run_step(reporter, "cluster-plan", dry_running).await.1?;
    let mut text = format!("env {}: {}", env.name, summary.describe());
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
    text.push_str(&repository_text(&repository));
    text.push_str(&cluster_text(&cluster));
    let document = serde_json::json!({
        "env": env.name,
        "terraform": summary,
        "repository": repository,
        "cluster": cluster,
    });
    Ok(CommandOutput::new(ExitStatus::Success, &document, text))
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
