//! Taking an env's objects out of its cluster in an order that orphans nothing: the root
//! Kustomization suspended, the Flux apps deleted in reverse `dependsOn` order (their finalizers
//! uninstall and prune what they applied), what owns cloud resources (LoadBalancer Services,
//! PersistentVolumeClaims) deleted and waited for, then Flux itself. Every deletion is
//! confirmed by UID through a watch (gone, or replaced by a new object).

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::runtime::wait::conditions::is_deleted;
use kube::{Client, Resource, ResourceExt as _};
use serde::Serialize;
use serde_json::json;

use super::flux::flux_resource;
use super::retry::await_condition;
use super::wait::tree::parse_inventory_id;
use super::{FLUX_NAMESPACE, ObjectName, api_message};
use crate::error::{Diagnose, ExitStatus};

/// The label Flux puts on everything it installs.
const FLUX_PART_OF: &str = "app.kubernetes.io/part-of=flux";

#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error("failed to list {what}: {message}")]
    List { what: String, message: String },
    #[error("failed to delete {object}: {message}")]
    Delete { object: ObjectName, message: String },
    #[error("failed to change {object}: {message}")]
    Patch { object: ObjectName, message: String },
}

impl Diagnose for TeardownError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Failure
    }

    fn hint(&self) -> Option<String> {
        Some("rerun the teardown: it picks up what is left".to_owned())
    }
}

/// An object to delete, with the UID its deletion is confirmed by.
#[derive(Debug, Clone)]
pub struct Doomed {
    pub object: ObjectName,
    uid: String,
    resource: ApiResource,
    /// Flux apps it depends on (`spec.dependsOn`), for the deletion order.
    depends_on: Vec<ObjectName>,
}

/// What did not go within its time, for the leftovers table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leftover {
    pub object: ObjectName,
    pub finalizers: Vec<String>,
    /// Since its creation, in seconds.
    pub age_seconds: i64,
}

fn api(client: &Client, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

fn resource_of<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

/// Every object of `resource` (all namespaces) matching `labels`; a kind the server does not
/// serve (Flux never installed, or already gone) has none.
async fn list(
    client: &Client,
    resource: &ApiResource,
    labels: Option<&str>,
) -> Result<Vec<DynamicObject>, TeardownError> {
    let mut params = ListParams::default();
    if let Some(labels) = labels {
        params = params.labels(labels);
    }
    match api(client, resource, None).list(&params).await {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        Err(err) => Err(TeardownError::List {
            what: resource.plural.clone(),
            message: api_message(&err),
        }),
    }
}

fn doomed(resource: &ApiResource, object: &DynamicObject) -> Doomed {
    let depends_on = object.data["spec"]["dependsOn"]
        .as_array()
        .map(|deps| {
            deps.iter()
                .filter_map(|dep| {
                    let name = dep["name"].as_str()?;
                    let namespace = dep["namespace"]
                        .as_str()
                        .or(object.metadata.namespace.as_deref());
                    Some(ObjectName::new(&resource.kind, namespace, name))
                })
                .collect()
        })
        .unwrap_or_default();
    Doomed {
        object: ObjectName::new(
            &resource.kind,
            object.metadata.namespace.as_deref(),
            &object.name_any(),
        ),
        uid: object.metadata.uid.clone().unwrap_or_default(),
        resource: resource.clone(),
        depends_on,
    }
}

/// `spec.suspend: true` on the root Kustomization, so Flux does not recreate what is being
/// removed. Returns whether it changed anything (false: suspended already, or absent).
pub async fn suspend_root(client: &Client) -> Result<bool, TeardownError> {
    let resource = flux_resource("Kustomization").expect("a Flux kind");
    let root = ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE);
    let api = api(client, &resource, Some(FLUX_NAMESPACE));
    let current = match api.get_opt(FLUX_NAMESPACE).await {
        Ok(current) => current,
        Err(kube::Error::Api(status)) if status.code == 404 => None,
        Err(err) => {
            return Err(TeardownError::Patch {
                object: root,
                message: api_message(&err),
            });
        }
    };
    match current {
        Some(ks) if ks.data["spec"]["suspend"].as_bool() != Some(true) => {
            let patch = json!({ "spec": { "suspend": true } });
            api.patch(
                FLUX_NAMESPACE,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|err| TeardownError::Patch {
                object: root,
                message: api_message(&err),
            })?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The Kustomizations (but the root) and HelmReleases of the cluster.
pub async fn flux_apps(client: &Client) -> Result<Vec<Doomed>, TeardownError> {
    let root = ObjectName::namespaced("Kustomization", FLUX_NAMESPACE, FLUX_NAMESPACE);
    let mut apps = Vec::new();
    for kind in ["Kustomization", "HelmRelease"] {
        let resource = flux_resource(kind).expect("a Flux kind");
        for object in list(client, &resource, None).await? {
            let app = doomed(&resource, &object);
            if app.object != root {
                apps.push(app);
            }
        }
    }
    Ok(apps)
}

/// Namespaces never deleted, whichever app applied them: the cluster's own, and Flux's (its
/// uninstall removes that one last).
const KEPT_NAMESPACES: [&str; 5] = [
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    FLUX_NAMESPACE,
];

/// The Namespaces the Flux apps (Kustomizations but the root) applied, from their inventories.
/// Flux prunes them with their app, but a namespace terminates only once everything in it is
/// gone (a load balancer, a volume), after the app itself; read them before the apps go, since
/// their inventories go with them.
pub async fn app_namespaces(client: &Client) -> Result<Vec<Doomed>, TeardownError> {
    let kustomizations = flux_resource("Kustomization").expect("a Flux kind");
    let mut names = BTreeSet::new();
    for kustomization in list(client, &kustomizations, None).await? {
        let root = kustomization.name_any() == FLUX_NAMESPACE
            && kustomization.metadata.namespace.as_deref() == Some(FLUX_NAMESPACE);
        let entries = kustomization.data["status"]["inventory"]["entries"].as_array();
        let applied = entries
            .into_iter()
            .flatten()
            .filter_map(|entry| parse_inventory_id(entry["id"].as_str()?))
            .filter(|id| id.group.is_empty() && id.kind == "Namespace")
            .filter(|id| !KEPT_NAMESPACES.contains(&id.name.as_str()));
        names.extend(applied.filter(|_| !root).map(|id| id.name));
    }
    let namespaces = resource_of::<Namespace>();
    let api = api(client, &namespaces, None);
    let mut doomed_namespaces = Vec::new();
    for name in names {
        let found = api
            .get_opt(&name)
            .await
            .map_err(|err| TeardownError::List {
                what: "namespaces".to_owned(),
                message: api_message(&err),
            })?;
        doomed_namespaces.extend(found.map(|namespace| doomed(&namespaces, &namespace)));
    }
    Ok(doomed_namespaces)
}

/// The Namespaces still there that a Flux Kustomization other than the root applied (Flux's
/// labels say which): those an app applied again while it was being deleted, which its
/// inventory never recorded.
pub async fn flux_applied_namespaces(client: &Client) -> Result<Vec<Doomed>, TeardownError> {
    let namespaces = resource_of::<Namespace>();
    let selector = format!(
        "kustomize.toolkit.fluxcd.io/namespace={FLUX_NAMESPACE},kustomize.toolkit.fluxcd.io/name!={FLUX_NAMESPACE}"
    );
    Ok(list(client, &namespaces, Some(&selector))
        .await?
        .iter()
        .filter(|namespace| !KEPT_NAMESPACES.contains(&namespace.name_any().as_str()))
        .map(|namespace| doomed(&namespaces, namespace))
        .collect())
}

/// Deletion waves in reverse `dependsOn` order: first what nothing depends on, then what only
/// those depended on, and so on. A dependency cycle ends up in one last wave.
pub fn deletion_waves(mut apps: Vec<Doomed>) -> Vec<Vec<Doomed>> {
    let mut waves = Vec::new();
    while !apps.is_empty() {
        let needed: BTreeSet<ObjectName> = apps
            .iter()
            .flat_map(|app| app.depends_on.iter().cloned())
            .collect();
        let (wave, rest): (Vec<Doomed>, Vec<Doomed>) = apps
            .into_iter()
            .partition(|app| !needed.contains(&app.object));
        if wave.is_empty() {
            waves.push(rest);
            break;
        }
        waves.push(wave);
        apps = rest;
    }
    waves
}

/// LoadBalancer Services and PersistentVolumeClaims in every namespace: what a cloud backs
/// with resources `terraform destroy` does not know of.
pub async fn cloud_owners(client: &Client) -> Result<Vec<Doomed>, TeardownError> {
    let services = resource_of::<Service>();
    let claims = resource_of::<PersistentVolumeClaim>();
    let mut owners: Vec<Doomed> = list(client, &services, None)
        .await?
        .iter()
        .filter(|svc| svc.data["spec"]["type"].as_str() == Some("LoadBalancer"))
        .map(|svc| doomed(&services, svc))
        .collect();
    owners.extend(
        list(client, &claims, None)
            .await?
            .iter()
            .map(|pvc| doomed(&claims, pvc)),
    );
    Ok(owners)
}

/// Deletes every object and watches each until it is gone (or replaced), at most `timeout`.
/// Returns those still there, with their finalizers and age.
pub async fn delete_and_wait(
    client: &Client,
    objects: &[Doomed],
    timeout: Duration,
) -> Result<Vec<Leftover>, TeardownError> {
    for doomed in objects {
        let api = api(client, &doomed.resource, doomed.object.namespace.as_deref());
        match api
            .delete(&doomed.object.name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => {
                return Err(TeardownError::Delete {
                    object: doomed.object.clone(),
                    message: api_message(&err),
                });
            }
        }
    }
    let waits = objects.iter().map(|doomed| async move {
        let api = api(client, &doomed.resource, doomed.object.namespace.as_deref());
        let gone = tokio::time::timeout(
            timeout,
            await_condition(api.clone(), &doomed.object.name, is_deleted(&doomed.uid)),
        )
        .await;
        match gone {
            Ok(Ok(_)) => None,
            // Still there (or the watch broke): look once more and report what holds it.
            _ => leftover(&api, doomed).await,
        }
    });
    Ok(join_all(waits).await.into_iter().flatten().collect())
}

async fn leftover(api: &Api<DynamicObject>, doomed: &Doomed) -> Option<Leftover> {
    let current = api.get_opt(&doomed.object.name).await.ok().flatten()?;
    if current.metadata.uid.as_deref() != Some(doomed.uid.as_str()) {
        return None;
    }
    let age_seconds = current
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|created| (jiff::Timestamp::now() - created.0).get_seconds())
        .unwrap_or(0);
    Some(Leftover {
        object: doomed.object.clone(),
        finalizers: current.finalizers().to_vec(),
        age_seconds,
    })
}

/// What [`uninstall_flux`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FluxUninstall {
    /// Objects deleted (controllers, Flux objects, CRDs, RBAC, the namespace).
    pub deleted: usize,
    /// Flux objects whose finalizer was removed by hand once their controller was gone.
    pub finalizers_removed: Vec<ObjectName>,
    pub leftovers: Vec<Leftover>,
}

/// Uninstalls Flux as `flux uninstall` does — after the FluxInstance, when the Flux Operator
/// installed Flux: the controllers first (and waits until they are gone), then the finalizers of the remaining Flux objects — nobody is left to honour them —
/// then those objects, the CRDs, the cluster RBAC and the `flux-system` namespace.
pub async fn uninstall_flux(
    client: &Client,
    timeout: Duration,
) -> Result<FluxUninstall, TeardownError> {
    let mut done = FluxUninstall::default();
    // The operator's finalizer on the FluxInstance uninstalls the Flux it installed; deleted
    // while the operator still runs, confirmed by UID like every deletion here.
    let instance = super::flux_operator::instance_resource();
    let instances: Vec<Doomed> = list(client, &instance, None)
        .await?
        .iter()
        .map(|object| doomed(&instance, object))
        .collect();
    done.leftovers
        .extend(delete_and_wait(client, &instances, timeout).await?);
    done.deleted += instances.len();
    let deployments = resource_of::<Deployment>();
    let controllers: Vec<Doomed> = list(client, &deployments, Some(FLUX_PART_OF))
        .await?
        .iter()
        .map(|deployment| doomed(&deployments, deployment))
        .collect();
    done.leftovers
        .extend(delete_and_wait(client, &controllers, timeout).await?);
    done.deleted += controllers.len();

    let crds = resource_of::<CustomResourceDefinition>();
    let flux_crds = list(client, &crds, Some(FLUX_PART_OF)).await?;
    let mut flux_objects = Vec::new();
    for crd in &flux_crds {
        let Some(resource) = crd_resource(crd) else {
            continue;
        };
        for object in list(client, &resource, None).await? {
            if !object.finalizers().is_empty() {
                remove_finalizers(client, &resource, &object).await?;
                done.finalizers_removed
                    .push(doomed(&resource, &object).object);
            }
            flux_objects.push(doomed(&resource, &object));
        }
    }
    done.leftovers
        .extend(delete_and_wait(client, &flux_objects, timeout).await?);
    done.deleted += flux_objects.len();

    let mut rest: Vec<Doomed> = flux_crds.iter().map(|crd| doomed(&crds, crd)).collect();
    for resource in [
        resource_of::<ClusterRoleBinding>(),
        resource_of::<ClusterRole>(),
    ] {
        rest.extend(
            list(client, &resource, Some(FLUX_PART_OF))
                .await?
                .iter()
                .map(|object| doomed(&resource, object)),
        );
    }
    let namespaces = resource_of::<Namespace>();
    if let Some(namespace) = api(client, &namespaces, None)
        .get_opt(FLUX_NAMESPACE)
        .await
        .ok()
        .flatten()
    {
        rest.push(doomed(&namespaces, &namespace));
    }
    done.leftovers
        .extend(delete_and_wait(client, &rest, timeout).await?);
    done.deleted += rest.len();
    Ok(done)
}

/// The served version of a CRD's kind, to list its objects.
fn crd_resource(crd: &DynamicObject) -> Option<ApiResource> {
    let spec = &crd.data["spec"];
    let group = spec["group"].as_str()?;
    let kind = spec["names"]["kind"].as_str()?;
    let plural = spec["names"]["plural"].as_str()?;
    let version =
        spec["versions"].as_array()?.iter().find(|v| {
            v["storage"].as_bool() == Some(true) || v["served"].as_bool() == Some(true)
        })?["name"]
            .as_str()?;
    let mut resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    resource.plural = plural.to_owned();
    Some(resource)
}

async fn remove_finalizers(
    client: &Client,
    resource: &ApiResource,
    object: &DynamicObject,
) -> Result<(), TeardownError> {
    let api = api(client, resource, object.metadata.namespace.as_deref());
    let patch = json!({ "metadata": { "finalizers": null } });
    match api
        .patch(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(TeardownError::Patch {
            object: doomed(resource, object).object,
            message: api_message(&err),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, depends_on: &[&str]) -> Doomed {
        Doomed {
            object: ObjectName::namespaced("Kustomization", "flux-system", name),
            uid: format!("uid-{name}"),
            resource: flux_resource("Kustomization").unwrap(),
            depends_on: depends_on
                .iter()
                .map(|dep| ObjectName::namespaced("Kustomization", "flux-system", dep))
                .collect(),
        }
    }

    fn names(waves: &[Vec<Doomed>]) -> Vec<Vec<&str>> {
        waves
            .iter()
            .map(|wave| wave.iter().map(|d| d.object.name.as_str()).collect())
            .collect()
    }

    #[test]
    fn dependents_are_deleted_before_what_they_depend_on() {
        let waves = deletion_waves(vec![
            app("cert-manager", &[]),
            app("cluster-issuer", &["cert-manager"]),
            app("ingress", &[]),
            app("external-dns", &["ingress", "cert-manager"]),
        ]);
        assert_eq!(
            names(&waves),
            [
                vec!["cluster-issuer", "external-dns"],
                vec!["cert-manager", "ingress"]
            ]
        );
    }

    #[test]
    fn a_dependency_cycle_ends_in_one_last_wave() {
        let waves = deletion_waves(vec![app("a", &["b"]), app("b", &["a"]), app("c", &["a"])]);
        assert_eq!(names(&waves), [vec!["c"], vec!["a", "b"]]);
    }

    #[test]
    fn depends_on_is_read_with_the_objects_namespace_by_default() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": { "name": "issuer", "namespace": "flux-system", "uid": "u1" },
            "spec": { "dependsOn": [{ "name": "cert-manager" }, { "name": "x", "namespace": "other" }] }
        }))
        .unwrap();
        let doomed = doomed(&flux_resource("Kustomization").unwrap(), &object);
        assert_eq!(
            doomed.depends_on,
            [
                ObjectName::namespaced("Kustomization", "flux-system", "cert-manager"),
                ObjectName::namespaced("Kustomization", "other", "x"),
            ]
        );
    }
}
