//! `plan <env>`: what create-env would do, changing nothing — three steps: terraform-plan
//! (`terraform plan`), repository-plan (the files of `clusters/<env>/` against the branch tip)
//! and cluster-plan (the objects, dry-run against the live cluster). The repository and
//! cluster sections depend on something outside and may be skipped with the reason; the
//! Terraform plan stands on its own.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use super::phases::cluster_plan::{ClusterPlan, PlannedChange};
pub use super::phases::repository_plan::{Change, FilePlan, RepositoryPlan};
use super::phases::terraform_plan::TerraformPlanned;
use super::phases::{cluster_plan, repository_plan, terraform_plan};
use super::{EnvPaths, run_step};
use crate::config::{Config, EnvConfig};
use crate::error::Result;
use crate::lock::EnvLock;
use crate::report::Reporter;
use crate::terraform::PlanSummary;

/// How long `plan` waits for another run of the env to finish.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The `result` of plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub env: String,
    pub terraform: PlanSummary,
    pub repository: Section<RepositoryPlan>,
    pub cluster: Section<ClusterPlan>,
}

pub async fn run(
    reporter: &dyn Reporter,
    config: &Config,
    env: &EnvConfig,
    terraform_binary: Option<&Path>,
    cancel: &CancellationToken,
) -> Result<Plan> {
    // Terraform locks the state too, but says so in its own words mid-run: wait briefly for a
    // running create-env instead, and name it when it does not finish.
    let lock_file = EnvPaths::new(config, &env.name).lock();
    let _lock = EnvLock::acquire_within(&env.name, &lock_file, LOCK_WAIT).await?;
    let planning = terraform_plan::run(config, env, terraform_binary, cancel);
    let TerraformPlanned {
        terraform,
        root,
        summary,
    } = run_step(reporter, "terraform-plan", planning).await.1?;
    let comparing = repository_plan::run(env, reporter);
    let (repository, rendered) = run_step(reporter, "repository-plan", comparing).await.1?;
    let rendered = rendered.as_ref();
    let dry_running = cluster_plan::run(&terraform, &root, env, rendered, reporter, cancel);
    let cluster = run_step(reporter, "cluster-plan", dry_running).await.1?;
    Ok(Plan {
        env: env.name.clone(),
        terraform: summary,
        repository,
        cluster,
    })
}

/// A section of the plan that depends on something outside (the repository, the cluster):
/// either planned, or why not. Terraform's section is the plan itself and has no such case.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Section<T> {
    Planned(T),
    /// Not compared, and why (with what to do): the rest of the plan stands.
    Skipped {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
}

impl<T> Section<T> {
    /// A failure to look becomes the section's reason (plan shows the other sections).
    pub fn from_result(result: Result<T>) -> Self {
        match result {
            Ok(planned) => Section::Planned(planned),
            Err(err) => Section::Skipped {
                reason: err.message().to_owned(),
                hint: err.hint().map(str::to_owned),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn a_section_that_could_not_be_planned_says_why_in_json() {
        let skipped: Section<u8> = Section::from_result(Err(Error::failure("no route")
            .context("cannot read https://git.example.test/fleet.git")
            .with_hint("check the network")));
        assert_eq!(
            serde_json::to_value(&skipped).unwrap(),
            serde_json::json!({
                "state": "skipped",
                "reason": "cannot read https://git.example.test/fleet.git: no route",
                "hint": "check the network",
            })
        );
    }
}
