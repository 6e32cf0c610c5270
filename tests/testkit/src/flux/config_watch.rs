//! kustomize-controller from Flux 2.7 on reconciles a Kustomization as soon as a ConfigMap or
//! Secret it substitutes from (`postBuild.substituteFrom`) or decrypts with
//! (`decryption.secretRef`) changes — if that object carries the label
//! `reconcile.fluxcd.io/watch: Enabled`. Earlier versions, and unlabelled objects, see such a
//! change only at the Kustomization's next interval or reconcile request. Which version runs is
//! read from the installed Deployment's `app.kubernetes.io/version`, as the real controller's
//! behaviour follows its own release.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

use super::manifest::FLUX_NAMESPACE;
use super::types::Kustomization;

pub const WATCH_LABEL: &str = "reconcile.fluxcd.io/watch";
pub const WATCH_ENABLED: &str = "Enabled";
/// The first Flux minor (v2.<minor>) whose kustomize-controller watches labelled config.
const WATCHING_SINCE_MINOR: u32 = 7;
const CONTROLLER: &str = "kustomize-controller";

/// The label selector of the objects the controller watches.
pub fn selector() -> String {
    format!("{WATCH_LABEL}={WATCH_ENABLED}")
}

/// The ConfigMaps and Secrets a Kustomization reads, as (kind, name) in its own namespace.
fn references(ks: &Kustomization) -> Vec<(&str, &str)> {
    let substituted = ks
        .spec
        .post_build
        .iter()
        .flat_map(|post_build| &post_build.substitute_from)
        .map(|reference| (reference.kind.as_str(), reference.name.as_str()));
    let decryption = ks
        .spec
        .decryption
        .as_ref()
        .and_then(|d| d.secret_ref.as_ref())
        .map(|secret| ("Secret", secret.name.as_str()));
    substituted.chain(decryption).collect()
}

/// The Kustomizations of `store` that read the ConfigMap or Secret `object`.
pub fn readers<K: Resource<DynamicType = ()>>(
    store: &Store<Kustomization>,
    object: &K,
) -> Vec<ObjectRef<Kustomization>> {
    let kind = K::kind(&());
    let (namespace, name) = (object.namespace(), object.name_any());
    store
        .state()
        .into_iter()
        .filter(|ks| ks.namespace() == namespace)
        .filter(|ks| references(ks).contains(&(kind.as_ref(), name.as_str())))
        .map(|ks| ObjectRef::from_obj(&*ks))
        .collect()
}

/// Whether the installed kustomize-controller watches labelled config (v2.7 or later).
async fn watching(client: &Client) -> bool {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), FLUX_NAMESPACE);
    let Ok(Some(deployment)) = deployments.get_opt(CONTROLLER).await else {
        return false;
    };
    let version = deployment
        .labels()
        .get("app.kubernetes.io/version")
        .cloned()
        .unwrap_or_default();
    let minor = version
        .strip_prefix("v2.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|minor| minor.parse::<u32>().ok());
    minor.is_some_and(|minor| minor >= WATCHING_SINCE_MINOR)
}

/// What a watched change adds to a Kustomization's fingerprint: the resourceVersion of each
/// labelled object it reads, when the installed version watches them (empty otherwise), so a
/// change of one makes a reconcile due at once and a change of an unwatched one does not.
pub async fn watched_versions(client: &Client, ks: &Kustomization) -> String {
    let references = references(ks);
    if references.is_empty() || !watching(client).await {
        return String::new();
    }
    let namespace = ks.namespace().unwrap_or_default();
    let mut versions = Vec::new();
    for (kind, name) in references {
        let labels_and_version = match kind {
            "ConfigMap" => Api::<ConfigMap>::namespaced(client.clone(), &namespace)
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|o| (o.labels().clone(), o.resource_version())),
            "Secret" => Api::<Secret>::namespaced(client.clone(), &namespace)
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|o| (o.labels().clone(), o.resource_version())),
            _ => None,
        };
        if let Some((labels, version)) = labels_and_version
            && labels.get(WATCH_LABEL).map(String::as_str) == Some(WATCH_ENABLED)
        {
            versions.push(format!("{kind}/{name}@{}", version.unwrap_or_default()));
        }
    }
    versions.join(",")
}
