//! The Flux Operator install method (`flux.install = "operator"`): the operator's install
//! manifest (which one, and that it is one), installing it and the `FluxInstance` it reconciles
//! into Flux, when that instance counts as Ready, and the `FluxReport` the operator publishes.
//! The API types follow the operator's documented `fluxcd.controlplane.io/v1` API; only the
//! fields the tool writes or reads are typed, the rest pass through untouched.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, CustomResource, ResourceExt as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::apply::{self, ApplyError, ApplyOptions, ApplySummary, CONFIG_MANAGER, FLUX_MANAGER};
use super::flux::{self, ComponentsOrigin, FluxError, ManifestLocation};
use super::wait::conditions::flux_readiness;
use super::{FLUX_NAMESPACE, ObjectName, Readiness};
use crate::error::{Diagnose, ExitStatus};

pub const GROUP: &str = "fluxcd.controlplane.io";
pub const VERSION: &str = "v1";
/// The one FluxInstance (and FluxReport) a cluster has, in the operator's namespace.
pub const INSTANCE_NAME: &str = "flux";
/// `disabled` on it: the operator leaves the instance alone (its suspend).
pub const RECONCILE_ANNOTATION: &str = "fluxcd.controlplane.io/reconcile";
/// What every operator install manifest holds: the FluxInstance CRD and the operator.
const INSTANCE_CRD: &str = "fluxinstances.fluxcd.controlplane.io";
const OPERATOR_DEPLOYMENT: &str = "flux-operator";
/// The operator's own release manifest, for when neither a file, a URL nor a committed copy
/// is given. `latest`: the copy committed on the first run is what every later run applies.
pub const RELEASE_URL: &str =
    "https://github.com/controlplaneio-fluxcd/flux-operator/releases/latest/download/install.yaml";

/// `FluxInstance.spec`: the Flux distribution, its components and options, and the sync.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fluxcd.controlplane.io",
    version = "v1",
    kind = "FluxInstance",
    namespaced,
    status = "FluxInstanceStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct FluxInstanceSpec {
    pub distribution: Distribution,
    /// Flux controllers to install; the operator's default set when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<Sync>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    /// A semver version or range of Flux (`2.10.0`, `2.10.x`).
    pub version: String,
    /// Where Flux's images come from (`ghcr.io/fluxcd`).
    pub registry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

/// `spec.sync`: the source and Kustomization the operator generates, named after the
/// namespace as `flux bootstrap` names them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sync {
    /// `GitRepository`, `OCIRepository` or `Bucket`.
    pub kind: String,
    pub url: String,
    /// `refs/heads/<branch>` for Git.
    #[serde(default, rename = "ref")]
    pub reference: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FluxInstanceStatus {
    #[serde(default)]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<serde_json::Value>,
    /// The distribution the operator last applied (`v2.10.0@sha256:…`).
    #[serde(default)]
    pub last_applied_revision: Option<String>,
    #[serde(default)]
    pub last_attempted_revision: Option<String>,
}

/// `FluxReport.spec`: what the operator observed of the installation.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fluxcd.controlplane.io",
    version = "v1",
    kind = "FluxReport",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct FluxReportSpec {
    #[serde(default)]
    pub distribution: ReportDistribution,
    #[serde(default)]
    pub components: Vec<ReportComponent>,
    #[serde(default)]
    pub sync: Option<ReportSync>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportDistribution {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportComponent {
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportSync {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(
        "the Flux Operator manifest from {origin} is not an operator install manifest: {reason}"
    )]
    NotOperator { origin: String, reason: String },
    #[error("the Flux Operator's release manifest is not reachable at {url}: {message}")]
    ReleaseUnreachable { url: String, message: String },
    #[error("{file} is not a FluxInstance the operator accepts: {reason}")]
    InvalidInstance { file: String, reason: String },
    #[error("failed to install the Flux Operator: {0}")]
    Install(#[source] ApplyError),
    #[error("failed to apply FluxInstance {FLUX_NAMESPACE}/{INSTANCE_NAME}: {0}")]
    Instance(#[source] ApplyError),
    #[error("failed to read {object}: {message}")]
    Observe { object: ObjectName, message: String },
    #[error("FluxInstance {FLUX_NAMESPACE}/{INSTANCE_NAME} failed ({reason}): {message}")]
    InstanceFailed { reason: String, message: String },
    #[error(
        "FluxInstance {FLUX_NAMESPACE}/{INSTANCE_NAME} was not Ready within {}: {last}",
        crate::report::duration(*timeout)
    )]
    InstanceNotReady { timeout: Duration, last: Readiness },
    #[error(transparent)]
    Flux(Box<FluxError>),
}

impl From<FluxError> for OperatorError {
    fn from(err: FluxError) -> OperatorError {
        OperatorError::Flux(Box::new(err))
    }
}

impl Diagnose for OperatorError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            OperatorError::NotOperator { .. } | OperatorError::InvalidInstance { .. } => {
                ExitStatus::BadInput
            }
            OperatorError::InstanceNotReady { .. } => ExitStatus::TimedOut,
            OperatorError::Install(err) | OperatorError::Instance(err) => err.exit_status(),
            OperatorError::Flux(err) => err.exit_status(),
            _ => ExitStatus::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            OperatorError::NotOperator { .. } => Some(
                "pass the Flux Operator's install.yaml (from its release) with --flux-manifests; nothing was committed or applied".to_owned(),
            ),
            OperatorError::ReleaseUnreachable { .. } => Some(
                "download the Flux Operator's install.yaml where the internet is reachable and pass it with --flux-manifests <file or https URL>".to_owned(),
            ),
            OperatorError::InvalidInstance { file, .. } => Some(format!(
                "fix {file} in Git (kind FluxInstance, name flux, namespace flux-system, spec.distribution.version and registry) and rerun"
            )),
            OperatorError::InstanceFailed { .. } => Some(
                "fix the FluxInstance (flux_version in the config, or the repository's flux-instance.yaml) and rerun; `kubectl -n flux-system describe fluxinstance flux` shows the operator's events".to_owned(),
            ),
            OperatorError::InstanceNotReady { .. } => Some(
                "check the operator's logs (`kubectl -n flux-system logs deploy/flux-operator`); rerunning resumes the wait".to_owned(),
            ),
            OperatorError::Install(err) | OperatorError::Instance(err) => err.hint(),
            OperatorError::Flux(err) => err.hint(),
            _ => None,
        }
    }
}

/// The first line of the operator manifest as committed: it says why no kustomization lists it.
const OPERATOR_HEADER: &str = "# The Flux Operator, applied by gitops-bootstrap (flux-install); Flux does not apply this file.";

/// The operator's install manifest, as applied and committed.
#[derive(Debug, Clone)]
pub struct OperatorManifest {
    pub yaml: String,
    pub origin: ComponentsOrigin,
}

/// Picks the operator manifest: explicit (`--flux-manifests`, `flux_manifests`), else the copy
/// committed for the env (never a newer one), else the operator's latest release.
pub async fn resolve_manifest(
    explicit: Option<&ManifestLocation>,
    committed: Option<String>,
    extra_ca_pem: Option<&str>,
) -> Result<OperatorManifest, OperatorError> {
    let (yaml, origin) = match (explicit, committed) {
        (Some(location), _) => flux::read_location(location, extra_ca_pem).await?,
        (None, Some(committed)) => (committed, ComponentsOrigin::Committed),
        (None, None) => {
            let yaml = flux::fetch(RELEASE_URL, extra_ca_pem)
                .await
                .map_err(|message| OperatorError::ReleaseUnreachable {
                    url: RELEASE_URL.to_owned(),
                    message,
                })?;
            (yaml, ComponentsOrigin::Release(RELEASE_URL.to_owned()))
        }
    };
    flux::check_manifest(
        &yaml,
        &[
            ("CustomResourceDefinition", INSTANCE_CRD),
            ("Deployment", OPERATOR_DEPLOYMENT),
        ],
    )
    .map_err(|reason| OperatorError::NotOperator {
        origin: origin.to_string(),
        reason,
    })?;
    let yaml = match yaml.starts_with(OPERATOR_HEADER) {
        true => yaml,
        false => format!("{OPERATOR_HEADER}\n{yaml}"),
    };
    Ok(OperatorManifest { yaml, origin })
}

/// Parses a FluxInstance file (the repository's or the tool's) and checks what the operator
/// requires of it: the kind, the `flux` name rule, and a distribution.
pub fn parse_instance(file: &str, yaml: &str) -> Result<FluxInstance, OperatorError> {
    let invalid = |reason: String| OperatorError::InvalidInstance {
        file: file.to_owned(),
        reason,
    };
    let objects = apply::parse_documents(yaml).map_err(|err| invalid(err.to_string()))?;
    let [object] = objects.as_slice() else {
        return Err(invalid(format!(
            "{} objects, one FluxInstance expected",
            objects.len()
        )));
    };
    let types = object.types.as_ref();
    if types.is_none_or(|t| t.kind != "FluxInstance" || t.api_version != api_version()) {
        return Err(invalid(format!("not a {} FluxInstance", api_version())));
    }
    let value = serde_json::to_value(object).map_err(|err| invalid(err.to_string()))?;
    let instance: FluxInstance =
        serde_json::from_value(value).map_err(|err| invalid(err.to_string()))?;
    if instance.metadata.name.as_deref() != Some(INSTANCE_NAME)
        || instance.metadata.namespace.as_deref() != Some(FLUX_NAMESPACE)
    {
        return Err(invalid(format!(
            "the operator reconciles only FluxInstance {FLUX_NAMESPACE}/{INSTANCE_NAME}"
        )));
    }
    if instance.spec.distribution.version.is_empty()
        || instance.spec.distribution.registry.is_empty()
    {
        return Err(invalid(
            "spec.distribution.version and spec.distribution.registry are required".to_owned(),
        ));
    }
    Ok(instance)
}

pub fn api_version() -> String {
    format!("{GROUP}/{VERSION}")
}

pub fn instance_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, VERSION, "FluxInstance"),
        "fluxinstances",
    )
}

/// Force-applies the operator manifest (field manager `gitops-bootstrap-flux`, CRDs first),
/// waits until the operator is Available, then applies the FluxInstance as committed — unless
/// Flux already adopted it from Git (`kustomize.toolkit.fluxcd.io/name`): from then on Git is
/// where it changes, and re-applying would only fight kustomize-controller.
pub async fn install(
    client: &Client,
    manifest: &OperatorManifest,
    instance_yaml: &str,
    timeout: Duration,
    adopting: bool,
) -> Result<ApplySummary, OperatorError> {
    let objects = apply::parse_documents(&manifest.yaml).map_err(OperatorError::Install)?;
    let deployments = flux::deployments(&objects);
    let options = match adopting {
        true => ApplyOptions::new(FLUX_MANAGER).adopting(),
        false => ApplyOptions::new(FLUX_MANAGER).forced(),
    };
    let mut summary = apply::apply_objects(client, objects, &options)
        .await
        .map_err(OperatorError::Install)?;
    flux::wait_available(client, &deployments, timeout).await?;
    if adopted_by_flux(client).await? {
        return Ok(summary);
    }
    let options = match adopting {
        true => ApplyOptions::new(CONFIG_MANAGER).adopting(),
        false => ApplyOptions::new(CONFIG_MANAGER),
    };
    let applied = apply::apply_yaml(client, instance_yaml, &options)
        .await
        .map_err(OperatorError::Instance)?;
    summary.extend(applied);
    Ok(summary)
}

/// The label kustomize-controller puts on what it applies.
const FLUX_OWNER_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";

/// Whether Flux applies the FluxInstance from Git now (as the operator's Terraform bootstrap
/// hands off): the tool applies it no more.
pub async fn adopted_by_flux(client: &Client) -> Result<bool, OperatorError> {
    Ok(read_instance(client)
        .await?
        .is_some_and(|instance| instance.labels().contains_key(FLUX_OWNER_LABEL)))
}

/// Stops the operator reconciling the FluxInstance (`fluxcd.controlplane.io/reconcile:
/// disabled`): deleted so, the operator drops its finalizer and leaves Flux installed.
pub async fn disable(client: &Client) -> Result<(), OperatorError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), FLUX_NAMESPACE, &instance_resource());
    let patch =
        serde_json::json!({"metadata": {"annotations": {RECONCILE_ANNOTATION: "disabled"}}});
    let params = kube::api::PatchParams {
        field_manager: Some(CONFIG_MANAGER.to_owned()),
        ..Default::default()
    };
    api.patch(INSTANCE_NAME, &params, &kube::api::Patch::Merge(&patch))
        .await
        .map_err(|err| OperatorError::Observe {
            object: ObjectName::namespaced("FluxInstance", FLUX_NAMESPACE, INSTANCE_NAME),
            message: super::api_message(&err),
        })?;
    Ok(())
}

/// The FluxInstance as the cluster has it (`None` without one, or without the operator's CRD).
pub async fn read_instance(client: &Client) -> Result<Option<DynamicObject>, OperatorError> {
    read(client, &instance_resource(), "FluxInstance").await
}

/// The FluxReport the operator publishes, typed (`None` before the operator wrote one).
pub async fn read_report(client: &Client) -> Result<Option<FluxReport>, OperatorError> {
    let api: Api<FluxReport> = Api::namespaced(client.clone(), FLUX_NAMESPACE);
    match api.get_opt(INSTANCE_NAME).await {
        Ok(report) => Ok(report),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(err) => Err(OperatorError::Observe {
            object: ObjectName::namespaced("FluxReport", FLUX_NAMESPACE, INSTANCE_NAME),
            message: super::api_message(&err),
        }),
    }
}

async fn read(
    client: &Client,
    resource: &ApiResource,
    kind: &str,
) -> Result<Option<DynamicObject>, OperatorError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), FLUX_NAMESPACE, resource);
    match api.get_opt(INSTANCE_NAME).await {
        Ok(object) => Ok(object),
        // A cluster without the operator's CRD has no such kind at all.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(err) => Err(OperatorError::Observe {
            object: ObjectName::namespaced(kind, FLUX_NAMESPACE, INSTANCE_NAME),
            message: super::api_message(&err),
        }),
    }
}

/// What the FluxReport says: Ready when its sync and every component are, else the sync's
/// status (`<id> at <path>: <status>`) and the components that are not ready.
pub fn report_readiness(report: &FluxReport) -> Readiness {
    let sync = report.spec.sync.as_ref();
    let not_ready: Vec<String> = report
        .spec
        .components
        .iter()
        .filter(|component| !component.ready)
        .map(|component| format!("{} ({})", component.name, component.status))
        .collect();
    if sync.is_some_and(|sync| sync.ready) && not_ready.is_empty() {
        return Readiness::Ready;
    }
    let sync_line = match sync {
        Some(sync) => format!("sync {} at {}: {}", sync.id, sync.path, sync.status),
        None => "no sync reported yet".to_owned(),
    };
    let message = match not_ready.is_empty() {
        true => sync_line,
        false => format!(
            "{sync_line}; components not ready: {}",
            not_ready.join(", ")
        ),
    };
    Readiness::Progressing {
        reason: "NotReady".to_owned(),
        message,
    }
}

/// The FluxInstance's readiness by the operator's conditions: Ready for the current
/// generation; Stalled, or Ready=False with a reason no retry fixes without a change to the
/// instance (`ArtifactFailed`: the distribution version or artifact cannot be resolved;
/// `BuildFailed`: its patches do not build), is terminal; `HealthCheckFailed` and
/// `ReconciliationFailed` keep the wait going (the operator retries), and the timeout names
/// them. A condition of an older generation is not terminal (the stale-generation rule of
/// every Flux object).
pub fn instance_readiness(instance: Option<&DynamicObject>) -> Readiness {
    match flux_readiness(instance) {
        Readiness::Progressing { reason, message }
            if TERMINAL_INSTANCE_REASONS.contains(&reason.as_str()) && is_current(instance) =>
        {
            Readiness::Failed { reason, message }
        }
        other => other,
    }
}

const TERMINAL_INSTANCE_REASONS: [&str; 2] = ["ArtifactFailed", "BuildFailed"];

/// Whether the status speaks of the current generation.
fn is_current(instance: Option<&DynamicObject>) -> bool {
    instance.is_some_and(|object| {
        let status = &object.data["status"];
        let ready_generation = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["observedGeneration"].as_i64())
            .or_else(|| status["observedGeneration"].as_i64());
        object.metadata.generation.is_none() || ready_generation == object.metadata.generation
    })
}

/// Watches the FluxInstance until it is Ready, failing at once on a terminal state.
pub async fn wait_ready(client: &Client, timeout: Duration) -> Result<(), OperatorError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), FLUX_NAMESPACE, &instance_resource());
    let settled = |object: Option<&DynamicObject>| {
        let readiness = instance_readiness(object);
        readiness.is_ready() || readiness.is_terminal()
    };
    let watched = super::retry::await_condition(api, INSTANCE_NAME, settled);
    let last = match tokio::time::timeout(timeout, watched).await {
        Ok(Ok(object)) => instance_readiness(object.as_ref()),
        Ok(Err(err)) => {
            return Err(OperatorError::Observe {
                object: ObjectName::namespaced("FluxInstance", FLUX_NAMESPACE, INSTANCE_NAME),
                message: err.to_string(),
            });
        }
        Err(_) => {
            let current = read_instance(client).await?;
            return match instance_readiness(current.as_ref()) {
                Readiness::Ready => Ok(()),
                last => Err(OperatorError::InstanceNotReady { timeout, last }),
            };
        }
    };
    match last {
        Readiness::Ready => Ok(()),
        Readiness::Suspended => Err(OperatorError::InstanceFailed {
            reason: "Suspended".to_owned(),
            message: last.message().to_owned(),
        }),
        other => Err(OperatorError::InstanceFailed {
            reason: other.reason().to_owned(),
            message: other.message().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(yaml: &str) -> DynamicObject {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    const HEAD: &str = "apiVersion: fluxcd.controlplane.io/v1\nkind: FluxInstance\nmetadata: {name: flux, namespace: flux-system, generation: 2}\n";

    #[test]
    fn the_report_names_its_sync_and_the_components_not_ready() {
        let report: FluxReport = serde_yaml_ng::from_str(
            "apiVersion: fluxcd.controlplane.io/v1
kind: FluxReport
metadata: {name: flux, namespace: flux-system}
spec:
  distribution: {version: v2.10.0, status: Installed}
  components:
  - {name: source-controller, ready: true, status: 'Current Deployment is available'}
  - {name: helm-controller, ready: false, status: 'InProgress'}
  sync: {id: kustomization/flux-system, path: clusters/dev, ready: false, source: https://git.example/fleet.git, status: 'Reconciliation in progress'}
",
        )
        .unwrap();
        let readiness = report_readiness(&report);
        assert_eq!(
            readiness.message(),
            "sync kustomization/flux-system at clusters/dev: Reconciliation in progress; components not ready: helm-controller (InProgress)"
        );
        let mut ready = report.clone();
        ready.spec.components[1].ready = true;
        ready.spec.sync.as_mut().unwrap().ready = true;
        assert_eq!(report_readiness(&ready), Readiness::Ready);
    }

    #[test]
    fn the_instance_is_ready_for_its_current_generation_only() {
        let with = |status: &str| object(&format!("{HEAD}status:\n{status}"));
        let ready = with(
            "  observedGeneration: 2\n  conditions:\n  - {type: Ready, status: \"True\", reason: ReconciliationSucceeded, message: ok, observedGeneration: 2}\n",
        );
        assert_eq!(instance_readiness(Some(&ready)), Readiness::Ready);
        let stale = with(
            "  observedGeneration: 1\n  conditions:\n  - {type: Ready, status: \"True\", reason: ReconciliationSucceeded, message: ok, observedGeneration: 1}\n",
        );
        assert!(!instance_readiness(Some(&stale)).is_ready());
        assert!(!instance_readiness(Some(&stale)).is_terminal());
        assert_eq!(instance_readiness(None), Readiness::Missing);
    }

    #[test]
    fn an_unresolvable_distribution_fails_at_once_and_health_checks_keep_waiting() {
        let failing = |reason: &str, generation: i64| {
            object(&format!(
                "{HEAD}status:\n  observedGeneration: {generation}\n  conditions:\n  - {{type: Ready, status: \"False\", reason: {reason}, message: no such version, observedGeneration: {generation}}}\n"
            ))
        };
        let failed = instance_readiness(Some(&failing("ArtifactFailed", 2)));
        assert!(failed.is_terminal(), "{failed:?}");
        assert_eq!(failed.reason(), "ArtifactFailed");
        assert!(!instance_readiness(Some(&failing("ArtifactFailed", 1))).is_terminal());
        assert!(!instance_readiness(Some(&failing("HealthCheckFailed", 2))).is_terminal());
        assert!(!instance_readiness(Some(&failing("ReconciliationFailed", 2))).is_terminal());
        let stalled = object(&format!(
            "{HEAD}status:\n  observedGeneration: 2\n  conditions:\n  - {{type: Stalled, status: \"True\", reason: BuildFailed, message: bad patch, observedGeneration: 2}}\n"
        ));
        assert!(instance_readiness(Some(&stalled)).is_terminal());
    }

    #[test]
    fn instances_the_operator_would_refuse_are_refused_naming_the_rule() {
        for (yaml, says) in [
            (
                format!("{HEAD}spec: {{distribution: {{version: 2.10.0, registry: r}}}}\n")
                    .replace("name: flux,", "name: other,"),
                "only FluxInstance flux-system/flux",
            ),
            (
                format!("{HEAD}spec: {{distribution: {{version: \"\", registry: r}}}}\n"),
                "spec.distribution.version",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flux}\n".to_owned(),
                "not a fluxcd.controlplane.io/v1 FluxInstance",
            ),
        ] {
            let err = parse_instance("flux-instance.yaml", &yaml).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
            assert_eq!(err.exit_status(), ExitStatus::BadInput);
        }
    }

    #[tokio::test]
    async fn operator_manifests_must_hold_the_crd_and_the_operator() {
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: fluxinstances.fluxcd.controlplane.io}\n";
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: flux-operator, namespace: flux-system}\n";
        let good = format!("{crd}---\n{deployment}");
        let manifest = resolve_manifest(None, Some(good.clone()), None)
            .await
            .unwrap();
        assert_eq!(manifest.origin, ComponentsOrigin::Committed);
        assert!(manifest.yaml.starts_with(OPERATOR_HEADER));
        assert!(manifest.yaml.ends_with(&good));
        let err = resolve_manifest(None, Some(crd.to_owned()), None)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("Deployment flux-operator"),
            "{err}"
        );
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
    }
}
