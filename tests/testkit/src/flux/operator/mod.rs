//! A stand-in for the Flux Operator (`fluxcd.controlplane.io/v1`): its install manifest (CRDs
//! for FluxInstance and FluxReport derived from [`types`], RBAC and the `flux-operator`
//! Deployment), a FluxInstance reconciler that installs the testkit's Flux stand-ins at the
//! requested distribution version with the sync objects and patches the instance asks for,
//! and the FluxReport. It runs only once its own Deployment is Available, like the
//! controllers it installs. See the testkit README for what it does and does not model.

mod build;
mod instance;
mod patches;
mod report;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, PodTemplateSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

pub use build::{OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL};
pub use types::{FluxInstance, FluxReport, INSTANCE_NAME};

use super::manifest::{FLUX_NAMESPACE, documents, to_value};
use super::runtime::{Context, ReconcileError};
use super::types::{GitRepository, HelmRelease, HelmRepository, Kustomization};

/// The operator's Deployment, ServiceAccount and field manager.
pub const MANAGER: &str = "flux-operator";
/// The version the stand-in's manifest and FluxReport declare.
pub const OPERATOR_VERSION: &str = "v0.40.0";
pub const FINALIZER: &str = "fluxcd.controlplane.io/finalizer";

/// Runs the FluxInstance reconciler and the FluxReport until cancelled.
pub(crate) async fn run(ctx: Arc<Context>) {
    tokio::join!(instance::run(ctx.clone()), report::run(ctx));
}

fn labels() -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", MANAGER),
        ("app.kubernetes.io/instance", MANAGER),
        ("app.kubernetes.io/version", OPERATOR_VERSION),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels()),
        ..ObjectMeta::default()
    }
}

fn deployment() -> Deployment {
    let selector: BTreeMap<String, String> =
        [("app.kubernetes.io/name".to_owned(), MANAGER.to_owned())].into();
    Deployment {
        metadata: meta(MANAGER, Some(FLUX_NAMESPACE)),
        spec: DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(MANAGER.to_owned()),
                    containers: vec![Container {
                        name: "manager".to_owned(),
                        // Never pulled: the testkit plays the operator in-process.
                        image: Some(format!(
                            "testkit.invalid/controlplaneio-fluxcd/flux-operator:{OPERATOR_VERSION}"
                        )),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

/// The stand-in operator's install manifest: first line `# Flux Operator version: <v>`,
/// then the FluxInstance and FluxReport CRDs, the namespace, the ServiceAccount, cluster
/// RBAC and the `flux-operator` Deployment.
pub fn operator_manifest() -> String {
    let mut instance_crd = types::instance_crd();
    let mut report_crd = types::report_crd();
    instance_crd.metadata.labels = Some(labels());
    report_crd.metadata.labels = Some(labels());
    let role = ClusterRole {
        metadata: meta(MANAGER, None),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["*".to_owned()]),
            resources: Some(vec!["*".to_owned()]),
            verbs: vec!["*".to_owned()],
            ..PolicyRule::default()
        }]),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: meta(MANAGER, None),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "ClusterRole".to_owned(),
            name: MANAGER.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: MANAGER.to_owned(),
            namespace: Some(FLUX_NAMESPACE.to_owned()),
            ..Subject::default()
        }]),
    };
    let objects = vec![
        to_value(&instance_crd),
        to_value(&report_crd),
        to_value(&Namespace {
            metadata: meta(FLUX_NAMESPACE, None),
            ..Namespace::default()
        }),
        to_value(&ServiceAccount {
            metadata: meta(MANAGER, Some(FLUX_NAMESPACE)),
            ..ServiceAccount::default()
        }),
        to_value(&role),
        to_value(&binding),
        to_value(&deployment()),
    ];
    format!(
        "# Flux Operator version: {OPERATOR_VERSION}\n{}",
        documents(&objects)
    )
}

/// Empties the finalizers of every Flux object the testkit's kinds define, for an
/// uninstall: once the controllers are gone nobody else would.
async fn strip_flux_finalizers(client: &Client) -> Result<(), ReconcileError> {
    async fn strip<K>(client: &Client) -> Result<(), ReconcileError>
    where
        K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let all: Api<K> = Api::all(client.clone());
        let Ok(list) = all.list(&ListParams::default()).await else {
            // The kind is no longer served: its objects are gone with it.
            return Ok(());
        };
        for item in list.items.iter().filter(|i| !i.finalizers().is_empty()) {
            let api: Api<K> =
                Api::namespaced(client.clone(), &item.namespace().unwrap_or_default());
            let patch = json!({"metadata": {"finalizers": null}});
            match api
                .patch(
                    &item.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
    strip::<Kustomization>(client).await?;
    strip::<HelmRelease>(client).await?;
    strip::<HelmRepository>(client).await?;
    strip::<GitRepository>(client).await?;
    Ok(())
}
