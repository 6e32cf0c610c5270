//! Flux itself: which components manifest to install (an explicit file or URL, the copy
//! committed in the repository when its version matches, else the release of the configured
//! version), installing it (CRDs first, force-applied, then the controllers Available), and
//! syncing (the GitRepository + Kustomization `flux-system`, with a reconcile requested).

use std::path::PathBuf;
use std::time::Duration;

use futures::future::try_join_all;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, GroupVersionKind, Patch, PatchParams};
use kube::{Client, ResourceExt as _};
use serde::Serialize;
use serde_json::json;

use super::apply::{
    self, ApplyError, ApplyOptions, ApplySummary, CONFIG_MANAGER, FLUX_MANAGER, parse_documents,
};
use super::retry::await_condition;
use super::wait::conditions::{WantedRevision, applied_readiness, source_readiness};
use super::{FLUX_NAMESPACE, ObjectName};
use crate::error::{Diagnose, ExitStatus};

/// The first line of a components manifest, as Flux's release manifests have it.
const VERSION_HEADER: &str = "# Flux version: ";
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

#[derive(Debug, thiserror::Error)]
pub enum FluxError {
    #[error("`--flux-manifests {location}` must be a file path or an https:// URL")]
    InsecureLocation { location: String },
    #[error("failed to read the Flux components from {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to download the Flux components from {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("the Flux release manifest of {version} is not reachable at {url}: {message}")]
    ReleaseUnreachable {
        version: String,
        url: String,
        message: String,
    },
    #[error(
        "the Flux components from {origin} are version {found}, but the config asks for {wanted}"
    )]
    VersionMismatch {
        origin: String,
        found: String,
        wanted: String,
    },
    #[error("the Flux components from {origin} are not a Flux install manifest: {reason}")]
    NotComponents { origin: String, reason: String },
    #[error("failed to install the Flux components: {0}")]
    Install(#[source] ApplyError),
    #[error(
        "the Flux controllers were not Available within {}: {}",
        crate::report::duration(*timeout),
        not_available.join("; ")
    )]
    ControllersNotAvailable {
        timeout: Duration,
        not_available: Vec<String>,
    },
    #[error("failed to watch Deployment {object}: {message}")]
    Watch { object: ObjectName, message: String },
    #[error("failed to apply the Flux sync objects: {0}")]
    Sync(#[source] ApplyError),
    #[error("failed to request a reconcile of {object}: {message}")]
    RequestReconcile { object: ObjectName, message: String },
    #[error("failed to read {object}: {message}")]
    Observe { object: ObjectName, message: String },
}

impl Diagnose for FluxError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            FluxError::InsecureLocation { .. }
            | FluxError::ReadFile { .. }
            | FluxError::VersionMismatch { .. }
            | FluxError::NotComponents { .. } => ExitStatus::BadInput,
            FluxError::ControllersNotAvailable { .. } => ExitStatus::TimedOut,
            FluxError::Install(err) | FluxError::Sync(err) => err.exit_status(),
            _ => ExitStatus::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            FluxError::ReleaseUnreachable { version, .. } => Some(format!(
                "download Flux {version}'s install.yaml where the internet is reachable (or run `flux install --export`) and pass it with --flux-manifests <file or https URL>"
            )),
            FluxError::VersionMismatch { .. } => Some(
                "pass the manifests of the configured flux_version, or change flux_version in the config".to_owned(),
            ),
            FluxError::NotComponents { .. } => Some(
                "pass Flux's install.yaml of the configured version (from the flux2 release, or `flux install --export`); nothing was committed or applied".to_owned(),
            ),
            FluxError::ControllersNotAvailable { .. } => Some(
                "check the controllers' pods in flux-system (image pulls, resources); rerunning resumes the wait".to_owned(),
            ),
            FluxError::Install(err) | FluxError::Sync(err) => err.hint(),
            _ => None,
        }
    }
}

/// Where `--flux-manifests` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestLocation {
    File(PathBuf),
    Url(String),
}

impl ManifestLocation {
    /// An `https://` URL, else a file path; plain `http://` is refused.
    pub fn parse(text: &str) -> Result<ManifestLocation, FluxError> {
        if text.starts_with("https://") {
            Ok(ManifestLocation::Url(text.to_owned()))
        } else if text.contains("://") {
            Err(FluxError::InsecureLocation {
                location: text.to_owned(),
            })
        } else {
            Ok(ManifestLocation::File(PathBuf::from(text)))
        }
    }
}

/// The candidates for the components manifest, in order of preference.
#[derive(Debug, Clone, Default)]
pub struct ComponentsSource {
    /// `--flux-manifests`.
    pub explicit: Option<ManifestLocation>,
    /// The `gotk-components.yaml` already committed for the env, if any.
    pub committed: Option<String>,
    /// An extra CA (PEM) to trust when downloading, for private mirrors.
    pub extra_ca_pem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "location")]
pub enum ComponentsOrigin {
    File(PathBuf),
    Url(String),
    Committed,
    Release(String),
}

impl std::fmt::Display for ComponentsOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentsOrigin::File(path) => write!(f, "{}", path.display()),
            ComponentsOrigin::Url(url) | ComponentsOrigin::Release(url) => f.write_str(url),
            ComponentsOrigin::Committed => f.write_str("the copy committed in the repository"),
        }
    }
}

/// A components manifest whose first line is `# Flux version: <version>`.
#[derive(Debug, Clone)]
pub struct Components {
    pub yaml: String,
    pub version: String,
    pub origin: ComponentsOrigin,
}

/// The official release manifest of `version`.
pub fn release_url(version: &str) -> String {
    format!("https://github.com/fluxcd/flux2/releases/download/{version}/install.yaml")
}

/// The version a manifest's first line declares.
pub fn manifest_version(yaml: &str) -> Option<&str> {
    yaml.lines()
        .next()
        .and_then(|line| line.strip_prefix(VERSION_HEADER))
        .map(str::trim)
}

/// Picks the components manifest for `version`: explicit, else committed (when its header
/// matches), else the release download.
pub async fn resolve_components(
    source: &ComponentsSource,
    version: &str,
) -> Result<Components, FluxError> {
    if let Some(location) = &source.explicit {
        let (yaml, origin) = read_location(location, source.extra_ca_pem.as_deref()).await?;
        return with_header(yaml, version, origin);
    }
    if let Some(committed) = &source.committed
        && manifest_version(committed) == Some(version)
    {
        check_components(committed, &ComponentsOrigin::Committed)?;
        return Ok(Components {
            yaml: committed.clone(),
            version: version.to_owned(),
            origin: ComponentsOrigin::Committed,
        });
    }
    let url = release_url(version);
    let yaml = fetch(&url, source.extra_ca_pem.as_deref())
        .await
        .map_err(|message| FluxError::ReleaseUnreachable {
            version: version.to_owned(),
            url: url.clone(),
            message,
        })?;
    with_header(yaml, version, ComponentsOrigin::Release(url))
}

/// Reads a manifest from a file or downloads it.
pub(super) async fn read_location(
    location: &ManifestLocation,
    extra_ca_pem: Option<&str>,
) -> Result<(String, ComponentsOrigin), FluxError> {
    match location {
        ManifestLocation::File(path) => {
            let yaml =
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|source| FluxError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
            Ok((yaml, ComponentsOrigin::File(path.clone())))
        }
        ManifestLocation::Url(url) => {
            let yaml = fetch(url, extra_ca_pem)
                .await
                .map_err(|message| FluxError::Fetch {
                    url: url.clone(),
                    message,
                })?;
            Ok((yaml, ComponentsOrigin::Url(url.clone())))
        }
    }
}

/// What the tool relies on in a components manifest: the CRDs of the objects it writes and
/// reads, and the controllers that reconcile them.
const REQUIRED_CRDS: [&str; 2] = [
    "gitrepositories.source.toolkit.fluxcd.io",
    "kustomizations.kustomize.toolkit.fluxcd.io",
];
const REQUIRED_CONTROLLERS: [&str; 2] = ["source-controller", "kustomize-controller"];

/// Parses the manifest and checks it holds Flux: before anything is committed or applied, so
/// a wrong file never replaces the good copy in Git (and rebuild reads no garbage back).
pub fn check_components(yaml: &str, origin: &ComponentsOrigin) -> Result<(), FluxError> {
    let required = REQUIRED_CRDS
        .iter()
        .map(|crd| ("CustomResourceDefinition", *crd))
        .chain(REQUIRED_CONTROLLERS.iter().map(|c| ("Deployment", *c)))
        .collect::<Vec<_>>();
    check_manifest(yaml, &required).map_err(|reason| FluxError::NotComponents {
        origin: origin.to_string(),
        reason,
    })
}

/// Parses a manifest and checks it holds the `(kind, name)` objects required; the reason
/// names what is missing.
pub(super) fn check_manifest(yaml: &str, required: &[(&str, &str)]) -> Result<(), String> {
    let objects = parse_documents(yaml).map_err(|err| err.to_string())?;
    let names: Vec<ObjectName> = objects.iter().map(apply::object_name).collect();
    let missing: Vec<String> = required
        .iter()
        .filter(|(kind, name)| !names.iter().any(|o| o.kind == *kind && o.name == *name))
        .map(|(kind, name)| format!("{kind} {name}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} object(s) found, {} missing",
            objects.len(),
            missing.join(", ")
        ));
    }
    Ok(())
}

/// Checks the manifest's declared version, or declares it when the manifest has none, so
/// the committed copy can be matched next time.
fn with_header(
    yaml: String,
    version: &str,
    origin: ComponentsOrigin,
) -> Result<Components, FluxError> {
    let yaml = match manifest_version(&yaml) {
        Some(found) if found != version => {
            return Err(FluxError::VersionMismatch {
                origin: origin.to_string(),
                found: found.to_owned(),
                wanted: version.to_owned(),
            });
        }
        Some(_) => yaml,
        None => format!("{VERSION_HEADER}{version}\n{yaml}"),
    };
    check_components(&yaml, &origin)?;
    Ok(Components {
        yaml,
        version: version.to_owned(),
        origin,
    })
}

pub(super) async fn fetch(url: &str, extra_ca_pem: Option<&str>) -> Result<String, String> {
    super::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .https_only(true)
        .timeout(FETCH_TIMEOUT);
    if let Some(pem) = extra_ca_pem {
        let certificate = reqwest::Certificate::from_pem(pem.as_bytes())
            .map_err(|err| format!("the extra CA is not a PEM certificate: {err}"))?;
        builder = builder.add_root_certificate(certificate);
    }
    let client = builder.build().map_err(|err| err.to_string())?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|err| super::error_chain(&err))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    response
        .text()
        .await
        .map_err(|err| super::error_chain(&err))
}

/// Force-applies the components (field manager `gitops-bootstrap-flux`, CRDs first), then
/// waits until every Deployment of the manifest is Available. `adopting` also reports the
/// fields taken from the tool that installed them before.
pub async fn install(
    client: &Client,
    components: &Components,
    timeout: Duration,
    adopting: bool,
) -> Result<ApplySummary, FluxError> {
    let objects = parse_documents(&components.yaml).map_err(FluxError::Install)?;
    let deployments = deployments(&objects);
    let options = match adopting {
        true => ApplyOptions::new(FLUX_MANAGER).adopting(),
        false => ApplyOptions::new(FLUX_MANAGER).forced(),
    };
    let summary = apply::apply_objects(client, objects, &options)
        .await
        .map_err(FluxError::Install)?;
    wait_available(client, &deployments, timeout).await?;
    Ok(summary)
}

/// The Deployments of a manifest, whose availability an install waits for.
pub(super) fn deployments(objects: &[kube::api::DynamicObject]) -> Vec<ObjectName> {
    objects
        .iter()
        .map(apply::object_name)
        .filter(|name| name.kind == "Deployment")
        .collect()
}

/// Watches until every Deployment is Available, or reports those that are not.
pub(super) async fn wait_available(
    client: &Client,
    deployments: &[ObjectName],
    timeout: Duration,
) -> Result<(), FluxError> {
    let api_of = |name: &ObjectName| -> Api<Deployment> {
        Api::namespaced(
            client.clone(),
            name.namespace.as_deref().unwrap_or("default"),
        )
    };
    let all_available = try_join_all(deployments.iter().map(|deployment| async {
        await_condition(api_of(deployment), &deployment.name, is_available)
            .await
            .map_err(|err| FluxError::Watch {
                object: deployment.clone(),
                message: err.to_string(),
            })
    }));
    match tokio::time::timeout(timeout, all_available).await {
        Ok(result) => result.map(drop),
        Err(_) => {
            let mut not_available = Vec::new();
            for deployment in deployments {
                let current = api_of(deployment)
                    .get_opt(&deployment.name)
                    .await
                    .ok()
                    .flatten();
                if !is_available(current.as_ref()) {
                    not_available.push(format!("{deployment}: {}", availability(current.as_ref())));
                }
            }
            Err(FluxError::ControllersNotAvailable {
                timeout,
                not_available,
            })
        }
    }
}

/// Available=True for the current generation of the Deployment.
pub fn is_available(deployment: Option<&Deployment>) -> bool {
    let Some(deployment) = deployment else {
        return false;
    };
    let observed = deployment
        .status
        .as_ref()
        .and_then(|s| s.observed_generation);
    observed >= deployment.metadata.generation
        && available_condition(deployment).is_some_and(|(status, _)| status == "True")
}

fn available_condition(deployment: &Deployment) -> Option<(String, String)> {
    deployment
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some("Available"))
        .map(|c| {
            (
                c.status.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

fn availability(deployment: Option<&Deployment>) -> String {
    match deployment {
        None => "not found".to_owned(),
        Some(deployment) => match available_condition(deployment) {
            Some((status, message)) => format!("Available={status} {message}").trim().to_owned(),
            None => "no Available condition yet".to_owned(),
        },
    }
}

/// What [`sync`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    pub applied: ApplySummary,
    /// Flux was asked to reconcile now rather than at its next interval.
    pub reconcile_requested: bool,
}

impl SyncSummary {
    pub fn is_up_to_date(&self) -> bool {
        self.applied.is_up_to_date() && !self.reconcile_requested
    }
}

/// Applies the sync objects (GitRepository + Kustomization `flux-system`) and asks Flux to
/// reconcile them now — unless nothing changed and Flux already applied `wanted`, so a rerun on
/// a converged env writes nothing. `adopting` takes them over from the tool that wrote them,
/// reporting the fields taken.
pub async fn sync(
    client: &Client,
    gotk_sync_yaml: &str,
    wanted: &WantedRevision<'_>,
    adopting: bool,
) -> Result<SyncSummary, FluxError> {
    let options = match adopting {
        true => ApplyOptions::new(CONFIG_MANAGER).adopting(),
        false => ApplyOptions::new(CONFIG_MANAGER),
    };
    let applied = apply::apply_yaml(client, gotk_sync_yaml, &options)
        .await
        .map_err(FluxError::Sync)?;
    let objects: Vec<ObjectName> = applied.objects.iter().map(|o| o.object.clone()).collect();
    let reconcile_requested =
        !(applied.is_up_to_date() && request_unless_at(client, &objects, wanted).await?);
    Ok(SyncSummary {
        applied,
        reconcile_requested,
    })
}

/// The sync objects `flux-system` the Flux Operator generates from the FluxInstance: asked to
/// reconcile when they exist and have not reached `wanted` (a fresh install fetches at once).
pub async fn request_generated_sync(
    client: &Client,
    wanted: &WantedRevision<'_>,
) -> Result<SyncSummary, FluxError> {
    let mut existing = Vec::new();
    for kind in SYNC_OBJECT_KINDS {
        let object = ObjectName::namespaced(kind, FLUX_NAMESPACE, FLUX_NAMESPACE);
        if read_flux_object(client, &object).await?.is_some() {
            existing.push(object);
        }
    }
    let at_wanted = existing.is_empty() || request_unless_at(client, &existing, wanted).await?;
    Ok(SyncSummary {
        applied: ApplySummary::default(),
        reconcile_requested: !at_wanted,
    })
}

/// Whether Flux's root sync Kustomization (`flux-system`) is on the cluster.
pub async fn has_sync_kustomization(client: &Client) -> Result<bool, FluxError> {
    let object = ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE);
    Ok(read_flux_object(client, &object).await?.is_some())
}

/// The kinds of the sync objects, both named after the namespace.
const SYNC_OBJECT_KINDS: [&str; 2] = ["GitRepository", "Kustomization"];

/// Whether the Flux objects reached `wanted`; asks each to reconcile now when not. Returns
/// true when they were there already.
async fn request_unless_at(
    client: &Client,
    objects: &[ObjectName],
    wanted: &WantedRevision<'_>,
) -> Result<bool, FluxError> {
    let flux_objects: Vec<(ObjectName, ApiResource)> = objects
        .iter()
        .filter_map(|o| Some((o.clone(), flux_resource(&o.kind)?)))
        .collect();
    if at_wanted_revision(client, &flux_objects, wanted).await? {
        return Ok(true);
    }
    let requested_at = jiff::Timestamp::now().to_string();
    for (object, resource) in &flux_objects {
        request_reconcile(client, resource, object, &requested_at).await?;
    }
    Ok(false)
}

/// Whether each GitRepository has an artifact of `wanted` and each Kustomization applied it.
async fn at_wanted_revision(
    client: &Client,
    objects: &[(ObjectName, ApiResource)],
    wanted: &WantedRevision<'_>,
) -> Result<bool, FluxError> {
    for (object, resource) in objects {
        let current = read_with(client, object, resource).await?;
        let readiness = match object.kind.as_str() {
            "GitRepository" => source_readiness(current.as_ref(), wanted),
            _ => applied_readiness(current.as_ref(), wanted),
        };
        if !readiness.is_ready() {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn read_flux_object(
    client: &Client,
    object: &ObjectName,
) -> Result<Option<kube::api::DynamicObject>, FluxError> {
    match flux_resource(&object.kind) {
        Some(resource) => read_with(client, object, &resource).await,
        None => Ok(None),
    }
}

async fn read_with(
    client: &Client,
    object: &ObjectName,
    resource: &ApiResource,
) -> Result<Option<kube::api::DynamicObject>, FluxError> {
    let namespace = object.namespace.as_deref().unwrap_or("default");
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, resource);
    match api.get_opt(&object.name).await {
        Ok(found) => Ok(found),
        // Before the operator installed Flux, the cluster serves no such kind at all.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(err) => Err(FluxError::Observe {
            object: object.clone(),
            message: super::api_message(&err),
        }),
    }
}

pub(crate) async fn request_reconcile(
    client: &Client,
    resource: &ApiResource,
    object: &ObjectName,
    requested_at: &str,
) -> Result<(), FluxError> {
    let namespace = object.namespace.as_deref().unwrap_or("default");
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, resource);
    let patch = json!({"metadata": {"annotations": {REQUESTED_AT: requested_at}}});
    let params = PatchParams {
        field_manager: Some(CONFIG_MANAGER.to_owned()),
        ..Default::default()
    };
    let patched = api
        .patch(&object.name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|err| FluxError::RequestReconcile {
            object: object.clone(),
            message: super::api_message(&err),
        })?;
    tracing::debug!(object = %object, resource_version = ?patched.resource_version(), "reconcile requested");
    Ok(())
}

/// The API resources of the Flux kinds gitops-bootstrap reads and reconciles.
pub(crate) fn flux_resource(kind: &str) -> Option<ApiResource> {
    let (group, plural) = match kind {
        "GitRepository" => ("source.toolkit.fluxcd.io/v1", "gitrepositories"),
        "Kustomization" => ("kustomize.toolkit.fluxcd.io/v1", "kustomizations"),
        "HelmRelease" => ("helm.toolkit.fluxcd.io/v2", "helmreleases"),
        _ => return None,
    };
    let (group, version) = group.split_once('/')?;
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_files_or_https_urls() {
        assert_eq!(
            ManifestLocation::parse("https://example.com/install.yaml").unwrap(),
            ManifestLocation::Url("https://example.com/install.yaml".to_owned())
        );
        assert_eq!(
            ManifestLocation::parse("./flux/install.yaml").unwrap(),
            ManifestLocation::File(PathBuf::from("./flux/install.yaml"))
        );
        let err = ManifestLocation::parse("http://example.com/install.yaml").unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
    }

    #[test]
    fn the_header_names_the_version() {
        assert_eq!(
            manifest_version("# Flux version: v2.5.1\n---\n"),
            Some("v2.5.1")
        );
        assert_eq!(manifest_version("---\n# Flux version: v2.5.1\n"), None);
    }

    /// The least a components manifest must hold.
    const MINIMAL: &str = "---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gitrepositories.source.toolkit.fluxcd.io}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: kustomizations.kustomize.toolkit.fluxcd.io}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: source-controller, namespace: flux-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kustomize-controller, namespace: flux-system}
";

    #[tokio::test]
    async fn a_committed_copy_of_the_configured_version_is_used() {
        let source = ComponentsSource {
            committed: Some(format!("# Flux version: v2.5.1\n{MINIMAL}")),
            ..Default::default()
        };
        let components = resolve_components(&source, "v2.5.1").await.unwrap();
        assert_eq!(components.origin, ComponentsOrigin::Committed);
        assert_eq!(components.yaml, source.committed.unwrap());
    }

    #[tokio::test]
    async fn explicit_files_win_and_get_a_header_when_they_lack_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("install.yaml");
        std::fs::write(&path, MINIMAL).unwrap();
        let source = ComponentsSource {
            explicit: Some(ManifestLocation::File(path.clone())),
            committed: Some("# Flux version: v2.5.1\n".to_owned()),
            extra_ca_pem: None,
        };
        let components = resolve_components(&source, "v2.5.1").await.unwrap();
        assert_eq!(components.origin, ComponentsOrigin::File(path.clone()));
        assert_eq!(
            components.yaml,
            format!("# Flux version: v2.5.1\n{MINIMAL}")
        );

        std::fs::write(&path, "# Flux version: v2.4.0\n---\n").unwrap();
        let err = resolve_components(&source, "v2.5.1").await.unwrap_err();
        assert!(matches!(err, FluxError::VersionMismatch { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_file_that_is_not_flux_is_refused_naming_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostname");
        let source = ComponentsSource {
            explicit: Some(ManifestLocation::File(path.clone())),
            ..Default::default()
        };
        for (text, says) in [
            ("buildhost\n", "is not a Kubernetes object"),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
                "CustomResourceDefinition gitrepositories",
            ),
            ("a: [unclosed\n", "document 1"),
            (
                &MINIMAL.replace("kustomize-controller", "other"),
                "Deployment kustomize-controller",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = resolve_components(&source, "v2.5.1").await.unwrap_err();
            assert!(matches!(err, FluxError::NotComponents { .. }), "{err}");
            assert!(err.to_string().contains(says), "{err}");
            assert_eq!(err.exit_status(), ExitStatus::BadInput);
            assert!(err.hint().unwrap().contains("nothing was committed"));
        }
    }

    #[test]
    fn an_unreachable_release_says_to_pass_flux_manifests() {
        let err = FluxError::ReleaseUnreachable {
            version: "v2.5.1".to_owned(),
            url: release_url("v2.5.1"),
            message: "dns error".to_owned(),
        };
        assert!(
            err.to_string()
                .contains("releases/download/v2.5.1/install.yaml")
        );
        assert!(err.hint().unwrap().contains("--flux-manifests"));
    }

    #[test]
    fn deployments_are_available_only_for_their_current_generation() {
        let deployment = |generation: i64, observed: i64, status: &str| -> Deployment {
            serde_yaml_ng::from_str(&format!(
                "metadata: {{name: d, generation: {generation}}}\nstatus:\n  observedGeneration: {observed}\n  conditions:\n  - {{type: Available, status: \"{status}\"}}\n"
            ))
            .unwrap()
        };
        assert!(is_available(Some(&deployment(2, 2, "True"))));
        assert!(!is_available(Some(&deployment(3, 2, "True"))));
        assert!(!is_available(Some(&deployment(2, 2, "False"))));
        assert!(!is_available(None));
    }
}
