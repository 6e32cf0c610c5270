//! Taking an env's objects out of its cluster in an order that orphans nothing: the root
//! Kustomization suspended, the Flux apps deleted in reverse `dependsOn` order (their finalizers
//! uninstall and prune what they applied), what owns cloud resources (LoadBalancer Services,
//! PersistentVolumeClaims) in the env's namespaces deleted and waited for, then Flux itself
//! ([`super::uninstall`]). Every deletion is confirmed by UID through a watch (gone, or replaced
//! by a new object). What a teardown will delete is read first ([`read_scope`]): the env's
//! namespaces are those its Kustomizations applied, and nothing outside them is touched.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::wait::conditions::is_deleted;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;

use super::flux::flux_resource;
use super::retry::await_condition;
use super::wait::tree::parse_inventory_id;
use super::{FLUX_NAMESPACE, ObjectName, api_message};
use crate::error::{Diagnose, ExitStatus};

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
    pub(super) uid: String,
    pub(super) resource: ApiResource,
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

pub(super) fn api(
    client: &Client,
    resource: &ApiResource,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

pub(super) fn resource_of<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

/// Every object of `resource` (all namespaces) matching `labels`; a kind the server does not
/// serve (Flux never installed, or already gone) has none.
pub(super) async fn list(
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

pub(super) fn doomed(resource: &ApiResource, object: &DynamicObject) -> Doomed {
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

/// How the root's pass under way when it was suspended ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootPass {
    /// None was under way.
    Idle,
    /// One was, and ended after this long.
    Ended(Duration),
    /// One was still under way at the bound.
    StillRunning(Duration),
}

/// Suspending stops the root's next pass, not one under way: that pass may still apply the
/// apps delete-apps is about to delete. kustomize-controller marks `Ready` `Unknown` (reason
/// `Progressing`) when a pass starts and `True` or `False` when it ends, so this waits for
/// the mark to go, up to `bound` (a controller that died mid-pass never clears it).
pub async fn await_root_pass(client: &Client, bound: Duration) -> Result<RootPass, TeardownError> {
    let resource = flux_resource("Kustomization").expect("a Flux kind");
    let api = api(client, &resource, Some(FLUX_NAMESPACE));
    let current = api
        .get_opt(FLUX_NAMESPACE)
        .await
        .map_err(|err| TeardownError::List {
            what: "the root Kustomization".to_owned(),
            message: api_message(&err),
        })?;
    if !current.as_ref().is_some_and(pass_under_way) {
        return Ok(RootPass::Idle);
    }
    let started = std::time::Instant::now();
    let ended = |root: Option<&DynamicObject>| !root.is_some_and(pass_under_way);
    match tokio::time::timeout(bound, await_condition(api, FLUX_NAMESPACE, ended)).await {
        Ok(Ok(_)) => Ok(RootPass::Ended(started.elapsed())),
        Ok(Err(err)) => Err(TeardownError::List {
            what: "the root Kustomization".to_owned(),
            message: err.to_string(),
        }),
        Err(_) => Ok(RootPass::StillRunning(bound)),
    }
}

fn pass_under_way(kustomization: &DynamicObject) -> bool {
    kustomization.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|condition| {
            condition["type"] == "Ready"
                && condition["status"] == "Unknown"
                && condition["reason"] == "Progressing"
        })
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

/// The cluster's own namespaces: never the env's, whatever an inventory lists.
const CLUSTER_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Namespaces never deleted, whichever app applied them: the cluster's own, and Flux's (its
/// uninstall removes that one last).
fn kept_namespace(name: &str) -> bool {
    name == FLUX_NAMESPACE || CLUSTER_NAMESPACES.contains(&name)
}

fn is_root(kustomization: &DynamicObject) -> bool {
    kustomization.name_any() == FLUX_NAMESPACE
        && kustomization.metadata.namespace.as_deref() == Some(FLUX_NAMESPACE)
}

/// The Namespaces a Kustomization's inventory lists.
fn inventory_namespaces(kustomization: &DynamicObject) -> impl Iterator<Item = String> + '_ {
    let entries = kustomization.data["status"]["inventory"]["entries"].as_array();
    entries
        .into_iter()
        .flatten()
        .filter_map(|entry| parse_inventory_id(entry["id"].as_str()?))
        .filter(|id| id.group.is_empty() && id.kind == "Namespace")
        .map(|id| id.name)
}

/// The Namespaces the Flux apps (Kustomizations but the root) applied, from their inventories.
/// Flux prunes them with their app, but a namespace terminates only once everything in it is
/// gone (a load balancer, a volume), after the app itself; read them before the apps go, since
/// their inventories go with them.
pub async fn app_namespaces(client: &Client) -> Result<Vec<Doomed>, TeardownError> {
    let kustomizations = flux_resource("Kustomization").expect("a Flux kind");
    let mut names = BTreeSet::new();
    for kustomization in list(client, &kustomizations, None).await? {
        if !is_root(&kustomization) {
            names.extend(inventory_namespaces(&kustomization).filter(|n| !kept_namespace(n)));
        }
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

/// The env's namespaces: those its Kustomizations (the root's included) applied, by their
/// inventories, and those still carrying the label kustomize-controller puts on what a
/// Kustomization of `flux-system` applied (an app deleted by an earlier run has no inventory
/// left, while its namespace may still be terminating). Never the cluster's own.
pub async fn env_namespaces(client: &Client) -> Result<BTreeSet<String>, TeardownError> {
    let kustomizations = flux_resource("Kustomization").expect("a Flux kind");
    let mut names = BTreeSet::new();
    for kustomization in list(client, &kustomizations, None).await? {
        names.extend(inventory_namespaces(&kustomization));
    }
    let labelled = format!("kustomize.toolkit.fluxcd.io/namespace={FLUX_NAMESPACE}");
    let namespaces = list(client, &resource_of::<Namespace>(), Some(&labelled)).await?;
    names.extend(namespaces.iter().map(ResourceExt::name_any));
    names.retain(|name| !CLUSTER_NAMESPACES.contains(&name.as_str()));
    Ok(names)
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
        .filter(|namespace| !kept_namespace(&namespace.name_any()))
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

/// LoadBalancer Services and PersistentVolumeClaims — what a cloud backs with resources
/// `terraform destroy` does not know of — split into those in `namespaces` (the env's) and
/// those elsewhere, which are not the env's to delete.
pub async fn cloud_owners(
    client: &Client,
    namespaces: &BTreeSet<String>,
) -> Result<(Vec<Doomed>, Vec<ObjectName>), TeardownError> {
    let services = resource_of::<Service>();
    let claims = resource_of::<PersistentVolumeClaim>();
    let mut found: Vec<Doomed> = list(client, &services, None)
        .await?
        .iter()
        .filter(|svc| svc.data["spec"]["type"].as_str() == Some("LoadBalancer"))
        .map(|svc| doomed(&services, svc))
        .collect();
    found.extend(
        list(client, &claims, None)
            .await?
            .iter()
            .map(|pvc| doomed(&claims, pvc)),
    );
    let (owned, others): (Vec<Doomed>, Vec<Doomed>) = found.into_iter().partition(|owner| {
        owner
            .object
            .namespace
            .as_ref()
            .is_some_and(|ns| namespaces.contains(ns))
    });
    Ok((
        owned,
        others.into_iter().map(|other| other.object).collect(),
    ))
}

/// What a teardown will delete from the cluster, and what it leaves alone, read before
/// anything is deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterScope {
    /// The Flux apps: Kustomizations (but the root) and HelmReleases.
    pub apps: Vec<ObjectName>,
    /// The env's namespaces ([`env_namespaces`]).
    pub namespaces: BTreeSet<String>,
    /// The LoadBalancer Services and PVCs in them.
    pub cloud_owners: Vec<ObjectName>,
    /// Those elsewhere: not the env's.
    pub left_alone: Vec<ObjectName>,
}

pub async fn read_scope(client: &Client) -> Result<ClusterScope, TeardownError> {
    let apps = flux_apps(client).await?;
    let namespaces = env_namespaces(client).await?;
    let (owners, left_alone) = cloud_owners(client, &namespaces).await?;
    Ok(ClusterScope {
        apps: apps.into_iter().map(|app| app.object).collect(),
        namespaces,
        cloud_owners: owners.into_iter().map(|owner| owner.object).collect(),
        left_alone,
    })
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
    (current.metadata.uid.as_deref() == Some(doomed.uid.as_str()))
        .then(|| as_leftover(&doomed.object, &current))
}

fn as_leftover(object: &ObjectName, current: &DynamicObject) -> Leftover {
    let age_seconds = current
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|created| (jiff::Timestamp::now() - created.0).get_seconds())
        .unwrap_or(0);
    Leftover {
        object: object.clone(),
        finalizers: current.finalizers().to_vec(),
        age_seconds,
    }
}

/// Looks for `doomed` once more, whatever its UID: what is there is left behind. A kind the
/// cluster no longer serves has nothing left; a failure to look is an error, never "gone".
pub(super) async fn look_again(
    client: &Client,
    doomed: &Doomed,
) -> Result<Option<Leftover>, TeardownError> {
    let api = api(client, &doomed.resource, doomed.object.namespace.as_deref());
    match api.get_opt(&doomed.object.name).await {
        Ok(current) => Ok(current.map(|current| as_leftover(&doomed.object, &current))),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(err) => Err(TeardownError::List {
            what: doomed.object.to_string(),
            message: api_message(&err),
        }),
    }
}

/// `--force` on the `objects` still there at the deadline (`leftovers`): their finalizers
/// removed — nobody released them in time — and each watched once more until gone. Returns
/// what is still there, and the objects whose finalizers were removed.
pub async fn remove_finalizers_of_leftovers(
    client: &Client,
    objects: &[Doomed],
    leftovers: &[Leftover],
    timeout: Duration,
) -> Result<(Vec<Leftover>, Vec<ObjectName>), TeardownError> {
    let stuck: Vec<Doomed> = objects
        .iter()
        .filter(|doomed| leftovers.iter().any(|l| l.object == doomed.object))
        .cloned()
        .collect();
    for doomed in &stuck {
        remove_finalizers(client, &doomed.resource, &doomed.object).await?;
    }
    let still = delete_and_wait(client, &stuck, timeout).await?;
    Ok((
        still,
        stuck.into_iter().map(|doomed| doomed.object).collect(),
    ))
}

pub(super) async fn remove_finalizers(
    client: &Client,
    resource: &ApiResource,
    object: &ObjectName,
) -> Result<(), TeardownError> {
    let api = api(client, resource, object.namespace.as_deref());
    let patch = json!({ "metadata": { "finalizers": null } });
    match api
        .patch(&object.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(TeardownError::Patch {
            object: object.clone(),
            message: api_message(&err),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with_ready(status: &str, reason: &str) -> DynamicObject {
        let resource = flux_resource("Kustomization").unwrap();
        let mut root = DynamicObject::new(FLUX_NAMESPACE, &resource).within(FLUX_NAMESPACE);
        root.data = json!({ "status": { "conditions": [
            { "type": "Ready", "status": status, "reason": reason, "message": "m" }
        ] } });
        root
    }

    #[test]
    fn a_pass_is_under_way_only_while_ready_is_unknown_and_progressing() {
        assert!(pass_under_way(&root_with_ready("Unknown", "Progressing")));
        assert!(!pass_under_way(&root_with_ready(
            "True",
            "ReconciliationSucceeded"
        )));
        assert!(!pass_under_way(&root_with_ready("False", "BuildFailed")));
        // Never reconciled: no pass to wait for.
        let resource = flux_resource("Kustomization").unwrap();
        assert!(!pass_under_way(&DynamicObject::new(
            FLUX_NAMESPACE,
            &resource
        )));
    }

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

    #[test]
    fn inventories_name_namespaces_and_the_clusters_own_are_never_deleted() {
        let kustomization: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": { "name": "web", "namespace": "flux-system" },
            "status": { "inventory": { "entries": [
                { "id": "_web__Namespace", "v": "v1" },
                { "id": "web_site_apps_Deployment", "v": "v1" },
                { "id": "_kube-system__Namespace", "v": "v1" },
            ] } }
        }))
        .unwrap();
        let names: Vec<String> = inventory_namespaces(&kustomization).collect();
        assert_eq!(names, ["web", "kube-system"]);
        assert!(kept_namespace("kube-system") && kept_namespace("flux-system"));
        assert!(!kept_namespace("web"));
        assert!(!is_root(&kustomization));
    }
}
