//! Drift of a running env against Git and against what Flux applied: Flux objects not at the
//! branch tip, suspended Flux objects, and objects of the Kustomizations' inventories that
//! someone other than Flux (or this tool) changed after Flux applied them, or deleted.
//!
//! "Changed since Flux applied it" is read from `metadata.managedFields`: kustomize-controller
//! server-side applies every object with its own field manager, so a field someone else set
//! (a `kubectl edit`/`patch`/`apply`, another controller) is owned by that other manager — an
//! update takes ownership from the applier — until Flux's next forced apply takes it back.
//! Subresources (status, scale) are not what Flux applies and are left out. The tool's own
//! objects (`cluster-config`, `cluster-secrets`, Flux's Git credentials, `sops-age`, the
//! `flux-system` Namespace with the ownership record) are read the same way: a field another
//! manager set is an edit that create-env or rebuild takes back.

use std::collections::BTreeMap;

use futures::{StreamExt as _, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::discovery::Discovery;
use kube::{Client, ResourceExt as _};
use serde::Serialize;
use serde_json::Value;

use super::apply::{CONFIG_MANAGER, FLUX_MANAGER};
use super::substituted::substitution_sources;
use super::wait::conditions::revision_sha;
use super::wait::tree::parse_inventory_id;
use super::wait::{flux_objects, source_of};
use super::{ObjectName, WaitError, flux_operator};

/// Managers that apply what Git holds or keep Flux's own bookkeeping (finalizers,
/// annotations): Flux's controllers, its client-side-apply migration manager, the Flux
/// Operator (which installs Flux, the `flux-system` Namespace included, and finalizes the
/// FluxInstance), this tool's own.
const APPLIERS: &[&str] = &[
    "kustomize-controller",
    "helm-controller",
    "source-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "before-first-apply",
    "flux-operator",
    CONFIG_MANAGER,
    FLUX_MANAGER,
];

/// Fields anyone may set without changing what runs: a reconcile request.
const IGNORED_FIELDS: &[&str] = &["metadata.annotations.reconcile.fluxcd.io/requestedAt"];

/// How many inventory objects are read at once.
const PARALLEL_READS: usize = 8;

/// What `status --drift` found in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FluxDrift {
    /// Objects of the env's repository that have not applied (or fetched) the branch tip.
    pub behind: Vec<Behind>,
    /// Flux objects with `spec.suspend: true`.
    pub suspended: Vec<ObjectName>,
    /// Objects whose live state someone other than Flux changed.
    pub changed: Vec<ChangedObject>,
    /// Objects a Kustomization's inventory lists that are gone.
    pub missing: Vec<ObjectName>,
    /// The FluxInstance, when the Flux Operator installed Flux and it is not Ready (a
    /// suspended one is in `suspended`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceNotReady>,
    /// Kustomizations whose substituted config changed after they last applied.
    pub stale_config: Vec<StaleConfig>,
}

/// A FluxInstance that is not Ready, in the operator's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceNotReady {
    pub object: ObjectName,
    pub reason: String,
    pub message: String,
}

impl FluxDrift {
    pub fn is_clean(&self) -> bool {
        self.behind.is_empty()
            && self.suspended.is_empty()
            && self.changed.is_empty()
            && self.missing.is_empty()
            && self.instance.is_none()
            && self.stale_config.is_empty()
    }
}

/// A Kustomization that has not applied the current data of a ConfigMap or Secret it
/// substitutes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleConfig {
    pub kustomization: ObjectName,
    pub source: ObjectName,
    /// When the source's data was last written (RFC 3339).
    pub changed_at: String,
    /// The latest sign of the Kustomization applying, if any (RFC 3339).
    pub applied_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Behind {
    pub object: ObjectName,
    /// The commit it last applied (fetched, for the GitRepository), if any.
    pub revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedObject {
    pub object: ObjectName,
    /// Which Kustomization applied it; none for the tool's own objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_by: Option<ObjectName>,
    pub manager: String,
    /// Fields the manager owns, as dotted paths.
    pub fields: Vec<String>,
}

/// Compares the cluster with `tip`, the commit the env's branch points at, for the Flux
/// objects reading `repository` (the env's GitRepository), and looks for edits of `own`, the
/// tool's own objects.
pub async fn flux_drift(
    client: &Client,
    repository: &ObjectName,
    tip: &str,
    own: &[ObjectName],
) -> Result<FluxDrift, WaitError> {
    let objects = flux_objects(client).await?;
    let mut drift = FluxDrift::default();
    behind_and_suspended(&objects, repository, tip, &mut drift);
    let discovery =
        Discovery::new(client.clone())
            .run()
            .await
            .map_err(|err| WaitError::Discovery {
                message: super::api_message(&err),
            })?;
    let inventory = to_read(client, &discovery, &objects, own);
    let reads = stream::iter(inventory)
        .map(|(object, owner, api)| async move {
            let live = match api {
                Some(api) => api.get_opt(&object.name).await,
                // A kind the cluster no longer serves: its objects are gone with it.
                None => Ok(None),
            };
            (object, owner, live)
        })
        .buffer_unordered(PARALLEL_READS)
        .collect::<Vec<_>>()
        .await;
    // The latest write of each Kustomization's manager to what it applied.
    let mut applied_at: BTreeMap<ObjectName, jiff::Timestamp> = BTreeMap::new();
    for (object, owner, live) in reads {
        let live = live.map_err(|err| WaitError::List {
            kind: object.kind.clone(),
            message: super::api_message(&err),
        })?;
        match live {
            None => drift.missing.push(object),
            Some(live) => {
                let written = written_at(&live, |manager| manager == KUSTOMIZE_MANAGER);
                if let (Some(owner), Some(at)) = (&owner, written) {
                    let latest = applied_at.entry(owner.clone()).or_insert(at);
                    *latest = (*latest).max(at);
                }
                for (manager, fields) in foreign_fields(&live) {
                    drift.changed.push(ChangedObject {
                        object: object.clone(),
                        applied_by: owner.clone(),
                        manager,
                        fields,
                    });
                }
            }
        }
    }
    instance_drift(client, &mut drift).await?;
    drift
        .changed
        .sort_by(|a, b| (&a.object, &a.manager).cmp(&(&b.object, &b.manager)));
    drift.missing.sort();
    drift.stale_config = stale_config(client, &objects, &applied_at).await?;
    Ok(drift)
}

/// The FluxInstance's part: suspended (the operator's `fluxcd.controlplane.io/reconcile:
/// disabled`), or not Ready. Fields of it another manager owns are found with the rest of the
/// root Kustomization's inventory, which lists it.
async fn instance_drift(client: &Client, drift: &mut FluxDrift) -> Result<(), WaitError> {
    let instance = flux_operator::read_instance(client)
        .await
        .map_err(|err| WaitError::List {
            kind: "FluxInstance".to_owned(),
            message: err.to_string(),
        })?;
    let Some(instance) = instance else {
        return Ok(());
    };
    let object = ObjectName::namespaced(
        "FluxInstance",
        super::FLUX_NAMESPACE,
        flux_operator::INSTANCE_NAME,
    );
    let reconcile = instance
        .annotations()
        .get(flux_operator::RECONCILE_ANNOTATION);
    if reconcile.is_some_and(|value| value == "disabled") {
        drift.suspended.push(object);
        return Ok(());
    }
    let readiness = flux_operator::instance_readiness(Some(&instance));
    if !readiness.is_ready() {
        drift.instance = Some(InstanceNotReady {
            object,
            reason: readiness.reason().to_owned(),
            message: readiness.message().to_owned(),
        });
    }
    Ok(())
}

/// An object to read, the Kustomization that applied it (none for the tool's own) and its API
/// (none when the cluster no longer serves its kind).
type ToRead = (ObjectName, Option<ObjectName>, Option<Api<DynamicObject>>);

/// Every inventory object of the Kustomizations among `objects`, then the tool's `own` objects
/// no inventory lists.
fn to_read(
    client: &Client,
    discovery: &Discovery,
    objects: &BTreeMap<ObjectName, DynamicObject>,
    own: &[ObjectName],
) -> Vec<ToRead> {
    let mut inventory: Vec<ToRead> = objects
        .iter()
        .filter(|(name, _)| name.kind == "Kustomization")
        .flat_map(|(owner, kustomization)| inventory_of(kustomization, owner))
        .map(|(object, owner, group)| {
            let api = api_for(client, discovery, &group, &object);
            (object, Some(owner), api)
        })
        .collect();
    // The tool's objects are all of the core group; one Flux applied too is read once.
    let own: Vec<&ObjectName> = own
        .iter()
        .filter(|object| !inventory.iter().any(|(listed, _, _)| listed == *object))
        .collect();
    inventory.extend(own.into_iter().map(|object| {
        let api = api_for(client, discovery, "", object);
        (object.clone(), None, api)
    }));
    inventory
}

const KUSTOMIZE_MANAGER: &str = "kustomize-controller";

/// The Kustomizations whose substitution sources were written after their last apply
/// (`applied_at` holds kustomize-controller's latest write to each one's objects).
async fn stale_config(
    client: &Client,
    objects: &BTreeMap<ObjectName, DynamicObject>,
    applied_at: &BTreeMap<ObjectName, jiff::Timestamp>,
) -> Result<Vec<StaleConfig>, WaitError> {
    let mut written: BTreeMap<ObjectName, Option<jiff::Timestamp>> = BTreeMap::new();
    let mut stale = Vec::new();
    for (name, kustomization) in objects.iter().filter(|(n, _)| n.kind == "Kustomization") {
        let applied = last_applied(kustomization)
            .into_iter()
            .chain(applied_at.get(name).copied())
            .max();
        for source in substitution_sources(kustomization) {
            if !written.contains_key(&source) {
                let at = data_written_at(client, &source).await?;
                written.insert(source.clone(), at);
            }
            let Some(changed) = written[&source] else {
                continue;
            };
            if applied.is_none_or(|applied| changed > applied) {
                stale.push(StaleConfig {
                    kustomization: name.clone(),
                    source,
                    changed_at: changed.to_string(),
                    applied_at: applied.map(|at| at.to_string()),
                });
            }
        }
    }
    Ok(stale)
}

/// The signs on a Kustomization itself that it applied: its Ready transition to True, and a
/// reconcile request it handled while Ready (handled by applying, after it was made).
fn last_applied(kustomization: &DynamicObject) -> Option<jiff::Timestamp> {
    let status = &kustomization.data["status"];
    let ready = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")?;
    let transition = ready["lastTransitionTime"].as_str().and_then(timestamp);
    let handled = status["lastHandledReconcileAt"]
        .as_str()
        .and_then(timestamp);
    transition.into_iter().chain(handled).max()
}

fn timestamp(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

/// When a ConfigMap's or Secret's data was last written: the latest time of a managedFields
/// entry owning it. `None` when the object is absent (a build fails on that, not drift).
async fn data_written_at(
    client: &Client,
    source: &ObjectName,
) -> Result<Option<jiff::Timestamp>, WaitError> {
    let resource = match source.kind.as_str() {
        "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
        "Secret" => ApiResource::erase::<Secret>(&()),
        _ => return Ok(None),
    };
    let namespace = source.namespace.as_deref().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let live = api
        .get_opt(&source.name)
        .await
        .map(|o| o.map(|o| o.metadata));
    let metadata = live.map_err(|err| WaitError::List {
        kind: source.kind.clone(),
        message: super::api_message(&err),
    })?;
    Ok(metadata.and_then(|metadata| data_written(&metadata)))
}

/// The latest time of the managedFields entries that own `data` (or `stringData`,
/// `binaryData`).
fn data_written(metadata: &kube::api::ObjectMeta) -> Option<jiff::Timestamp> {
    metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| {
            let fields = entry.fields_v1.as_ref().map(|f| &f.0);
            ["f:data", "f:stringData", "f:binaryData"]
                .iter()
                .any(|key| fields.is_some_and(|f| f.get(key).is_some()))
        })
        .filter_map(|entry| entry.time.as_ref())
        .map(|time| time.0)
        .max()
}

/// The latest time a manager `counts` wrote the object (not a subresource).
fn written_at(object: &DynamicObject, counts: impl Fn(&str) -> bool) -> Option<jiff::Timestamp> {
    object
        .managed_fields()
        .iter()
        .filter(|entry| entry.manager.as_deref().is_some_and(&counts))
        .filter(|entry| entry.subresource.as_deref().is_none_or(str::is_empty))
        .filter_map(|entry| entry.time.as_ref())
        .map(|time| time.0)
        .max()
}

/// The Flux objects of `repository` not at `tip`, and every suspended Flux object.
fn behind_and_suspended(
    objects: &BTreeMap<ObjectName, DynamicObject>,
    repository: &ObjectName,
    tip: &str,
    drift: &mut FluxDrift,
) {
    for (name, object) in objects {
        if object.data["spec"]["suspend"].as_bool() == Some(true) {
            drift.suspended.push(name.clone());
        }
        let revision = if name == repository {
            object.data["status"]["artifact"]["revision"].as_str()
        } else if name.kind == "Kustomization" && source_of(object).as_ref() == Some(repository) {
            object.data["status"]["lastAppliedRevision"].as_str()
        } else {
            continue;
        };
        let revision = revision.map(|r| revision_sha(r).to_owned());
        if revision.as_deref() != Some(tip) {
            drift.behind.push(Behind {
                object: name.clone(),
                revision,
            });
        }
    }
}

/// The objects a Kustomization's inventory lists, with the Kustomization and their API group.
fn inventory_of(
    kustomization: &DynamicObject,
    owner: &ObjectName,
) -> Vec<(ObjectName, ObjectName, String)> {
    kustomization.data["status"]["inventory"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| parse_inventory_id(entry["id"].as_str()?))
        .map(|id| {
            let name = ObjectName::new(&id.kind, Some(&id.namespace), &id.name);
            (name, owner.clone(), id.group)
        })
        .collect()
}

fn api_for(
    client: &Client,
    discovery: &Discovery,
    group: &str,
    object: &ObjectName,
) -> Option<Api<DynamicObject>> {
    let resource = super::served_resource(discovery, group, &object.kind)?;
    Some(match &object.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    })
}

/// The fields of the object (not of a subresource) owned by managers that do not apply Git.
fn foreign_fields(object: &DynamicObject) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in object.managed_fields() {
        let manager = entry.manager.as_deref().unwrap_or("(unnamed)");
        if APPLIERS.contains(&manager)
            || entry.subresource.as_deref().is_some_and(|s| !s.is_empty())
        {
            continue;
        }
        let Some(fields) = &entry.fields_v1 else {
            continue;
        };
        let mut paths = Vec::new();
        field_paths(&fields.0, "", &mut paths);
        paths.retain(|path| !IGNORED_FIELDS.contains(&path.as_str()));
        if !paths.is_empty() {
            found.entry(manager.to_owned()).or_default().extend(paths);
        }
    }
    found
}

/// The leaves of a `fieldsV1` set as dotted paths: `f:spec` → `spec`, a list item by key
/// `k:{"name":"app"}` → `[name=app]`, by value `v:"x"` → `["x"]`.
fn field_paths(set: &Value, prefix: &str, out: &mut Vec<String>) {
    let Some(map) = set.as_object() else {
        return;
    };
    let children: Vec<(&String, &Value)> = map.iter().filter(|(key, _)| *key != ".").collect();
    if children.is_empty() {
        if !prefix.is_empty() {
            out.push(prefix.to_owned());
        }
        return;
    }
    for (key, child) in children {
        let path = match key.split_once(':') {
            Some(("f", field)) if prefix.is_empty() => field.to_owned(),
            Some(("f", field)) => format!("{prefix}.{field}"),
            Some(("k", keys)) => format!("{prefix}[{}]", list_key(keys)),
            Some(("v", value)) => format!("{prefix}[{value}]"),
            _ => format!("{prefix}.{key}"),
        };
        field_paths(child, &path, out);
    }
}

/// `{"name":"app","port":80}` → `name=app,port=80`.
fn list_key(keys: &str) -> String {
    match serde_json::from_str::<serde_json::Map<String, Value>>(keys) {
        Ok(map) => map
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => format!("{key}={text}"),
                other => format!("{key}={other}"),
            })
            .collect::<Vec<_>>()
            .join(","),
        Err(_) => keys.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(managed: Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "managedFields": managed},
        }))
        .unwrap()
    }

    #[test]
    fn config_data_is_written_when_an_entry_owning_it_last_changed() {
        let config: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster-config", "namespace": "flux-system", "managedFields": [
                {"manager": "gitops-bootstrap", "operation": "Apply", "time": "2026-12-07T12:00:00Z",
                 "fieldsV1": {"f:data": {"f:dns_domain": {}}}},
                {"manager": "kubectl-label", "operation": "Update", "time": "2026-12-07T12:05:00Z",
                 "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}},
            ]},
        }))
        .unwrap();
        let written = data_written(&config.metadata).unwrap();
        assert_eq!(written.to_string(), "2026-12-07T12:00:00Z");
        let any = written_at(&config, |_| true).unwrap();
        assert_eq!(any.to_string(), "2026-12-07T12:05:00Z");
    }

    #[test]
    fn a_kustomization_applied_when_it_turned_ready_or_handled_a_request_while_ready() {
        let ks = |status: &str, handled: &str| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": "apps", "namespace": "flux-system"},
                "status": {
                    "conditions": [{"type": "Ready", "status": status,
                        "lastTransitionTime": "2026-12-07T12:00:00Z"}],
                    "lastHandledReconcileAt": handled,
                },
            }))
            .unwrap()
        };
        let at = |ks: &DynamicObject| last_applied(ks).map(|t| t.to_string());
        assert_eq!(
            at(&ks("True", "2026-12-07T12:10:00.5Z")).as_deref(),
            Some("2026-12-07T12:10:00.5Z")
        );
        assert_eq!(
            at(&ks("True", "a request that is no time")).as_deref(),
            Some("2026-12-07T12:00:00Z")
        );
        assert_eq!(at(&ks("False", "2026-12-07T12:10:00Z")), None);
    }

    #[test]
    fn fields_sets_flatten_to_dotted_paths() {
        let set = serde_json::json!({
            "f:metadata": {"f:labels": {".": {}, "f:team": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:image": {}}
                }}},
                "f:finalizers": {"v:\"keep\"": {}},
            },
        });
        let mut paths = Vec::new();
        field_paths(&set, "", &mut paths);
        assert_eq!(
            paths,
            vec![
                "metadata.labels.team",
                "spec.finalizers[\"keep\"]",
                "spec.replicas",
                "spec.template.spec.containers[name=app].image",
            ]
        );
    }

    #[test]
    fn only_managers_that_do_not_apply_git_count_and_subresources_do_not() {
        let live = object(serde_json::json!([
            {"manager": "kustomize-controller", "operation": "Apply",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kubelet", "operation": "Update", "subresource": "status",
             "fieldsV1": {"f:status": {"f:readyReplicas": {}}}},
            {"manager": "gitops-bootstrap", "operation": "Apply",
             "fieldsV1": {"f:metadata": {"f:annotations":
                {"f:reconcile.fluxcd.io/requestedAt": {}}}}},
            {"manager": "flux", "operation": "Update",
             "fieldsV1": {"f:metadata": {"f:annotations":
                {"f:reconcile.fluxcd.io/requestedAt": {}}}}},
            {"manager": "kubectl-patch", "operation": "Update",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        ]));
        let found = foreign_fields(&live);
        assert_eq!(
            found,
            BTreeMap::from([("kubectl-patch".to_owned(), vec!["spec.replicas".to_owned()])])
        );
    }
}
