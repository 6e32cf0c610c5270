//! cluster-plan (plan): what create-env would apply — the contract's ConfigMap and Secret,
//! the Flux components (forced, as flux-install does), the sync objects — server-side dry-run
//! against the env's cluster when it exists, and diffed. An env without a cluster, or one
//! that cannot be reached, is a skipped section.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::repository_plan::Rendered;
use crate::cluster::FLUX_NAMESPACE;
use crate::cluster::apply::{ApplyOptions, CONFIG_MANAGER, FLUX_MANAGER, parse_documents};
use crate::cluster::bootstrap::{GIT_CREDENTIALS, SOPS_AGE, substitution_objects};
pub use crate::cluster::dry_run::PlannedChange;
use crate::cluster::dry_run::{PlannedObject, dry_run_objects};
use crate::cluster::flux_operator;
use crate::config::{EnvConfig, FluxInstall};
use crate::error::{Error, ExitStatus, Result};
use crate::report::Reporter;
use crate::terraform::{EnvRoot, Terraform};
use crate::workflow::Outcome;
use crate::workflow::phases::reach::{self, Patience, Reach};
use crate::workflow::plan::Section;

/// The field manager Flux applies what Git holds with.
const KUSTOMIZE_CONTROLLER: &str = "kustomize-controller";

/// Compares; a cluster that could not be read (other than "there is none yet") is also a
/// warning.
pub async fn run(
    tf: &Terraform,
    root: &EnvRoot,
    env: &EnvConfig,
    rendered: Option<&Rendered>,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<(Outcome, Section<ClusterPlan>)> {
    let result = cluster(tf, root, env, rendered, cancel).await;
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
}

/// The cluster section: what create-env would apply, dry-run against the live cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    pub objects: Vec<PlannedObject>,
    /// Objects create-env applies that plan does not compare, and why.
    pub not_compared: Vec<String>,
}

impl ClusterPlan {
    pub fn count(&self, change: PlannedChange) -> usize {
        self.objects.iter().filter(|o| o.change == change).count()
    }

    pub fn describe(&self) -> String {
        let conflicts = self.count(PlannedChange::Conflict);
        format!(
            "{} to create, {} to change, {} unchanged{}",
            self.count(PlannedChange::Create),
            self.count(PlannedChange::Change),
            self.count(PlannedChange::Unchanged),
            if conflicts > 0 {
                format!(", {conflicts} in conflict")
            } else {
                String::new()
            }
        )
    }
}

/// Dry-runs create-env's applies — the contract's ConfigMap and Secret, the Flux components
/// (forced, as flux-install does), the sync objects — when the env's cluster exists.
async fn cluster(
    tf: &Terraform,
    root: &EnvRoot,
    env: &EnvConfig,
    rendered: Option<&Rendered>,
    cancel: &CancellationToken,
) -> Result<ClusterPlan> {
    let found = reach::run(tf, root, env, Patience::Existing, cancel).await?;
    if let Reach::Gone { why } = &found {
        return Err(Error::bad_input(format!(
            "the env has no cluster yet ({why}): create-env creates every object"
        )));
    }
    let rendered = rendered.ok_or_else(|| {
        Error::failure("the repository could not be read, so the Flux objects are not known")
    })?;
    let reached = found.readable(&env.name)?;
    let (client, contract) = (reached.client().clone(), &reached.contract);
    let names = &env.repository.substitution;
    let config = ApplyOptions::new(CONFIG_MANAGER);
    let mut objects = dry_run_objects(
        &client,
        substitution_objects(contract, names, env.flux.install, &env.flux_version),
        &config,
    )
    .await?;
    let components = parse_documents(&rendered.manifest)?;
    let flux = ApplyOptions::new(FLUX_MANAGER).forced();
    objects.extend(dry_run_objects(&client, components, &flux).await?);
    let mut sync = parse_documents(&rendered.sync_manifest)?;
    // A FluxInstance Flux adopted reaches the cluster from Git, applied by Flux (forced,
    // with the labels of the Kustomization applying it).
    let adopted = env.flux.install == FluxInstall::Operator
        && flux_operator::adopted_by_flux(&client).await?;
    let sync_options = match adopted {
        true => {
            for object in &mut sync {
                let labels = object.metadata.labels.get_or_insert_default();
                for key in [
                    "kustomize.toolkit.fluxcd.io/name",
                    "kustomize.toolkit.fluxcd.io/namespace",
                ] {
                    labels.insert(key.to_owned(), FLUX_NAMESPACE.to_owned());
                }
            }
            ApplyOptions::new(KUSTOMIZE_CONTROLLER).forced()
        }
        false => config,
    };
    objects.extend(dry_run_objects(&client, sync, &sync_options).await?);
    Ok(ClusterPlan {
        objects,
        not_compared: vec![
            format!("Secret {FLUX_NAMESPACE}/{GIT_CREDENTIALS} (Flux's Git credentials)"),
            format!("Secret {FLUX_NAMESPACE}/{SOPS_AGE} (the env's age key)"),
        ],
    })
}
