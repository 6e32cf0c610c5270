//! The Flux install manifest of the testkit, generated from our own types: CRDs, namespace,
//! RBAC and the three controller Deployments, as `flux install --export` would lay them out.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, PodTemplateSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::{Client, CustomResourceExt};
use serde::Serialize;
use serde_json::Value;

use super::distribution::deprecated_versions;
use super::objects::{self, ObjectId};
use super::types::{GitRepository, HelmRelease, HelmRepository, Kustomization};

pub const FLUX_NAMESPACE: &str = "flux-system";
/// The controllers the testkit plays (other components get a Deployment that nothing runs).
pub(crate) const CONTROLLERS: [&str; 3] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
];

fn labels(flux_version: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = [
        ("app.kubernetes.io/part-of", "flux"),
        ("app.kubernetes.io/instance", FLUX_NAMESPACE),
        ("app.kubernetes.io/version", flux_version),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    labels.retain(|_, v| !v.is_empty());
    labels
}

fn meta(name: &str, namespace: Option<&str>, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels),
        ..Default::default()
    }
}

fn deployment(name: &str, flux_version: &str) -> Deployment {
    let selector: BTreeMap<String, String> = [("app".to_owned(), name.to_owned())].into();
    let mut pod_labels = selector.clone();
    pod_labels.extend(labels(flux_version, &[]));
    Deployment {
        metadata: meta(
            name,
            Some(FLUX_NAMESPACE),
            labels(
                flux_version,
                &[
                    ("app.kubernetes.io/component", name),
                    ("control-plane", "controller"),
                ],
            ),
        ),
        spec: DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name.to_owned()),
                    containers: vec![Container {
                        name: "manager".to_owned(),
                        // Never pulled: the testkit plays the controller in-process.
                        image: Some(format!("testkit.invalid/fluxcd/{name}:{flux_version}")),
                        args: Some(vec![
                            "--watch-all-namespaces=true".to_owned(),
                            "--log-level=info".to_owned(),
                        ]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        status: None,
    }
}

fn rbac(flux_version: &str, components: &[&str]) -> (ClusterRole, ClusterRoleBinding) {
    let role = ClusterRole {
        metadata: meta(
            "crd-controller-flux-system",
            None,
            labels(flux_version, &[]),
        ),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["*".to_owned()]),
            resources: Some(vec!["*".to_owned()]),
            verbs: vec!["*".to_owned()],
            ..Default::default()
        }]),
        ..Default::default()
    };
    let binding = ClusterRoleBinding {
        metadata: meta(
            "cluster-reconciler-flux-system",
            None,
            labels(flux_version, &[]),
        ),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "ClusterRole".to_owned(),
            name: "crd-controller-flux-system".to_owned(),
        },
        subjects: Some(
            components
                .iter()
                .map(|name| Subject {
                    kind: "ServiceAccount".to_owned(),
                    name: (*name).to_owned(),
                    namespace: Some(FLUX_NAMESPACE.to_owned()),
                    ..Default::default()
                })
                .collect(),
        ),
    };
    (role, binding)
}

/// An object as JSON with its `apiVersion`/`kind` first, as kubectl prints objects.
pub(crate) fn to_value<T: Serialize + kube::Resource<DynamicType = ()>>(object: &T) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
        let mut ordered = serde_json::Map::new();
        ordered.insert("apiVersion".to_owned(), T::api_version(&()).into());
        ordered.insert("kind".to_owned(), T::kind(&()).into());
        ordered.extend(std::mem::take(map));
        value = ordered.into();
    }
    value
}

/// Multi-document YAML of `objects`, each starting with `---`.
pub(crate) fn documents(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|object| {
            format!(
                "---\n{}",
                serde_yaml_ng::to_string(object).unwrap_or_default()
            )
        })
        .collect()
}

/// A Flux CRD as `flux_version` ships it: the GA version stored, and the older versions that
/// release still serves (deprecated, sharing the schema: the test cluster converts nothing).
fn crd_for(mut crd: CustomResourceDefinition, flux_version: &str) -> CustomResourceDefinition {
    crd.metadata.labels = Some(labels(
        flux_version,
        &[("app.kubernetes.io/component", component_of(&crd.spec.group))],
    ));
    let kind = crd.spec.names.kind.clone();
    let ga = crd.spec.versions[0].clone();
    for old in deprecated_versions(flux_version, &crd.spec.group) {
        crd.spec.versions.push(CustomResourceDefinitionVersion {
            name: (*old).to_owned(),
            storage: false,
            deprecated: Some(true),
            deprecation_warning: Some(format!(
                "{old} {kind} is deprecated, upgrade to {}",
                ga.name
            )),
            ..ga.clone()
        });
    }
    crd
}

/// The install objects of `components` at `flux_version`, in `flux install --export` order:
/// the CRDs of the components the testkit plays, the namespace, a ServiceAccount per
/// component, cluster RBAC and a Deployment per component.
pub(crate) fn install_objects(flux_version: &str, components: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    let crds = [
        GitRepository::crd(),
        HelmRepository::crd(),
        Kustomization::crd(),
        HelmRelease::crd(),
    ];
    for crd in crds {
        if components.contains(&component_of(&crd.spec.group)) {
            out.push(to_value(&crd_for(crd, flux_version)));
        }
    }
    let namespace = Namespace {
        metadata: meta(FLUX_NAMESPACE, None, labels(flux_version, &[])),
        ..Default::default()
    };
    out.push(to_value(&namespace));
    for name in components {
        let account = ServiceAccount {
            metadata: meta(
                name,
                Some(FLUX_NAMESPACE),
                labels(flux_version, &[("app.kubernetes.io/component", name)]),
            ),
            ..Default::default()
        };
        out.push(to_value(&account));
    }
    let (role, binding) = rbac(flux_version, components);
    out.push(to_value(&role));
    out.push(to_value(&binding));
    for name in components {
        out.push(to_value(&deployment(name, flux_version)));
    }
    out
}

/// The components manifest for `flux_version`: first line `# Flux version: <version>`, then
/// the CRDs, the namespace, RBAC and the controller Deployments.
pub fn components_manifest(flux_version: &str) -> String {
    format!(
        "# Flux version: {flux_version}\n# Components: {}\n{}",
        CONTROLLERS.join(","),
        documents(&install_objects(flux_version, &CONTROLLERS))
    )
}

fn component_of(group: &str) -> &'static str {
    match group {
        "source.toolkit.fluxcd.io" => "source-controller",
        "kustomize.toolkit.fluxcd.io" => "kustomize-controller",
        _ => "helm-controller",
    }
}

/// Server-side applies a multi-document manifest, CRDs and Namespaces first. For tests that
/// install the components themselves (the product has its own apply).
pub async fn apply_manifest(
    client: &Client,
    yaml: &str,
    field_manager: &str,
) -> anyhow::Result<Vec<ObjectId>> {
    let mut documents = objects::parse_documents(yaml)?;
    documents.sort_by_key(objects::apply_order);
    let mut applied = Vec::with_capacity(documents.len());
    for object in documents {
        applied.push(objects::apply(client, field_manager, object, None).await?);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_back_into_the_promised_objects() {
        let manifest = components_manifest("v2.5.1");
        assert_eq!(manifest.lines().next(), Some("# Flux version: v2.5.1"));
        let objects = objects::parse_documents(&manifest).unwrap();
        let kinds: Vec<(String, String)> = objects
            .iter()
            .map(|o| {
                (
                    o.types.as_ref().unwrap().kind.clone(),
                    o.metadata.name.clone().unwrap(),
                )
            })
            .collect();
        for crd in [
            "gitrepositories.source.toolkit.fluxcd.io",
            "helmrepositories.source.toolkit.fluxcd.io",
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "helmreleases.helm.toolkit.fluxcd.io",
        ] {
            assert!(
                kinds.contains(&("CustomResourceDefinition".into(), crd.into())),
                "{crd} missing"
            );
        }
        for name in CONTROLLERS {
            assert!(kinds.contains(&("Deployment".into(), name.into())));
            assert!(kinds.contains(&("ServiceAccount".into(), name.into())));
        }
        assert!(kinds.contains(&("Namespace".into(), FLUX_NAMESPACE.into())));
        let deployment = objects
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some("helm-controller"))
            .unwrap();
        let labels = deployment.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/part-of"], "flux");
        assert_eq!(labels["app.kubernetes.io/version"], "v2.5.1");
        let crd = objects
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some("helmreleases.helm.toolkit.fluxcd.io"))
            .unwrap();
        let version = &crd.data["spec"]["versions"][0];
        assert_eq!(version["name"], "v2");
        assert!(version["subresources"]["status"].is_object());
    }

    #[test]
    fn a_release_serves_the_betas_it_still_had() {
        let versions = |flux: &str, crd: &str| -> Vec<(String, bool)> {
            let objects = objects::parse_documents(&components_manifest(flux)).unwrap();
            let crd = objects
                .iter()
                .find(|o| o.metadata.name.as_deref() == Some(crd))
                .unwrap();
            crd.data["spec"]["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| (v["name"].as_str().unwrap().to_owned(), v["storage"] == true))
                .collect()
        };
        let helm = "helmreleases.helm.toolkit.fluxcd.io";
        assert_eq!(
            versions("v2.4.0", helm),
            [
                ("v2".into(), true),
                ("v2beta1".into(), false),
                ("v2beta2".into(), false)
            ]
        );
        let kustomize = "kustomizations.kustomize.toolkit.fluxcd.io";
        assert_eq!(versions("v2.8.0", kustomize), [("v1".into(), true)]);
    }
}
