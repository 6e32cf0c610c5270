//! Applying, deleting and health-checking arbitrary objects against any API server:
//! discovery per kind, server-side apply with a field manager, Flux inventory ids.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use kube::api::{DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client};
use serde_json::Value;

use super::types::ResourceRef;

/// One object as Flux's inventory names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub kind: String,
    pub version: String,
}

impl ObjectId {
    /// `<namespace>_<name>_<group>_<Kind>` (empty namespace and group for cluster/core objects).
    pub fn inventory_id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace, self.name, self.group, self.kind
        )
    }

    pub fn to_ref(&self) -> ResourceRef {
        ResourceRef {
            id: self.inventory_id(),
            v: self.version.clone(),
        }
    }

    /// Parses an inventory entry; names never contain `_`, so splitting is unambiguous.
    pub fn from_ref(entry: &ResourceRef) -> Option<ObjectId> {
        let parts: Vec<&str> = entry.id.split('_').collect();
        let [namespace, name, group, kind] = parts.as_slice() else {
            return None;
        };
        Some(ObjectId {
            namespace: (*namespace).to_owned(),
            name: (*name).to_owned(),
            group: (*group).to_owned(),
            kind: (*kind).to_owned(),
            version: entry.v.clone(),
        })
    }

    pub fn gvk(&self) -> GroupVersionKind {
        GroupVersionKind::gvk(&self.group, &self.version, &self.kind)
    }

    /// `Kind/namespace/name` as Flux prints objects in messages.
    pub fn display(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

fn gvk_of(object: &DynamicObject) -> anyhow::Result<GroupVersionKind> {
    let types = object
        .types
        .as_ref()
        .ok_or_else(|| anyhow!("object {:?} has no apiVersion/kind", object.metadata.name))?;
    let (group, version) = types
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &types.api_version));
    Ok(GroupVersionKind::gvk(group, version, &types.kind))
}

/// Discovery for one kind, retried briefly: a CRD applied a moment ago may not be served yet.
pub async fn resolve(
    client: &Client,
    gvk: &GroupVersionKind,
) -> anyhow::Result<(ApiResource, ApiCapabilities)> {
    let mut last = None;
    for _ in 0..10 {
        match discovery::pinned_kind(client, gvk).await {
            Ok(found) => return Ok(found),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = last.map(|e| e.to_string()).unwrap_or_default();
    Err(anyhow!(
        "no matches for kind \"{}\" in version \"{}\": {e}",
        gvk.kind,
        gvk.api_version()
    ))
}

fn api_for(
    client: &Client,
    resource: &ApiResource,
    caps: &ApiCapabilities,
    namespace: &str,
) -> Api<DynamicObject> {
    match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, resource),
        Scope::Cluster => Api::all_with(client.clone(), resource),
    }
}

/// Which object `object` is once applied: `target_namespace` replaces the namespace of
/// namespaced objects; one without any fails as with Flux.
pub async fn identify(
    client: &Client,
    object: &DynamicObject,
    target_namespace: Option<&str>,
) -> anyhow::Result<ObjectId> {
    let gvk = gvk_of(object)?;
    let name = object
        .metadata
        .name
        .clone()
        .ok_or_else(|| anyhow!("{} without metadata.name", gvk.kind))?;
    let (_, caps) = resolve(client, &gvk).await?;
    let namespace = match caps.scope {
        Scope::Cluster => String::new(),
        Scope::Namespaced => match target_namespace
            .map(str::to_owned)
            .or(object.metadata.namespace.clone())
        {
            Some(ns) => ns,
            None => return Err(anyhow!("{}/{name} namespace not specified", gvk.kind)),
        },
    };
    Ok(ObjectId {
        namespace,
        name,
        group: gvk.group,
        kind: gvk.kind,
        version: gvk.version,
    })
}

/// Server-side applies `object` (forcing conflicts, as Flux does). `target_namespace` replaces
/// the namespace of namespaced objects; one without any fails as with Flux.
pub async fn apply(
    client: &Client,
    manager: &str,
    mut object: DynamicObject,
    target_namespace: Option<&str>,
) -> anyhow::Result<ObjectId> {
    let id = identify(client, &object, target_namespace).await?;
    let (resource, caps) = resolve(client, &id.gvk()).await?;
    object.metadata.namespace = (!id.namespace.is_empty()).then(|| id.namespace.clone());
    object.metadata.resource_version = None;
    object.metadata.managed_fields = None;
    let api = api_for(client, &resource, &caps, &id.namespace);
    api.patch(
        &id.name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("{} apply failed", id.display()))?;
    Ok(id)
}

/// `kustomize.toolkit.fluxcd.io/ssa: Ignore` on the manifest or on the object in the cluster:
/// kustomize-controller leaves the object alone (another manager, e.g. the Flux Operator,
/// owns it).
pub const SSA_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/ssa";

/// [`apply`], except for an object marked `ssa: Ignore` here or in the cluster, which is only
/// identified (it stays in the inventory, as Flux keeps skipped objects there).
pub async fn apply_unless_ignored(
    client: &Client,
    manager: &str,
    object: DynamicObject,
    target_namespace: Option<&str>,
) -> anyhow::Result<ObjectId> {
    let ignored = |annotations: Option<&std::collections::BTreeMap<String, String>>| {
        annotations
            .and_then(|a| a.get(SSA_ANNOTATION))
            .is_some_and(|v| v.eq_ignore_ascii_case("ignore"))
    };
    if !ignored(object.metadata.annotations.as_ref()) {
        let id = identify(client, &object, target_namespace).await?;
        match get(client, &id).await? {
            Some(live) if ignored(live.metadata.annotations.as_ref()) => return Ok(id),
            _ => {}
        }
        return apply(client, manager, object, target_namespace).await;
    }
    identify(client, &object, target_namespace).await
}

/// Deletes the object if it still carries every label of `owner` and not the annotation
/// `keep` (`<key>: disabled`), as Flux prunes only what it labelled; `Ok(false)` when it left
/// the object alone.
pub async fn delete_owned(
    client: &Client,
    id: &ObjectId,
    owner: &[(&str, &str)],
    keep: &str,
) -> anyhow::Result<bool> {
    let Some(live) = get(client, id).await.ok().flatten() else {
        return Ok(true);
    };
    let labels = live.metadata.labels.unwrap_or_default();
    let owned = owner
        .iter()
        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v));
    let kept = live
        .metadata
        .annotations
        .unwrap_or_default()
        .get(keep)
        .is_some_and(|v| v == "disabled");
    if !owned || kept {
        return Ok(false);
    }
    delete(client, id).await?;
    Ok(true)
}

/// Deletes the object (background propagation); gone already counts as done.
pub async fn delete(client: &Client, id: &ObjectId) -> anyhow::Result<()> {
    let (resource, caps) = match discovery::pinned_kind(client, &id.gvk()).await {
        Ok(found) => found,
        // The kind itself is gone (CRD deleted): so are its objects.
        Err(_) => return Ok(()),
    };
    let api = api_for(client, &resource, &caps, &id.namespace);
    match api.delete(&id.name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("{} delete failed", id.display())),
    }
}

/// Patches the object under `manager`.
pub async fn patch<P: serde::Serialize + std::fmt::Debug>(
    client: &Client,
    id: &ObjectId,
    manager: &str,
    patch: &Patch<P>,
) -> anyhow::Result<()> {
    let (resource, caps) = resolve(client, &id.gvk()).await?;
    let params = PatchParams {
        field_manager: Some(manager.to_owned()),
        ..PatchParams::default()
    };
    api_for(client, &resource, &caps, &id.namespace)
        .patch(&id.name, &params, patch)
        .await
        .with_context(|| format!("{} patch failed", id.display()))?;
    Ok(())
}

pub async fn get(client: &Client, id: &ObjectId) -> anyhow::Result<Option<DynamicObject>> {
    let (resource, caps) = resolve(client, &id.gvk()).await?;
    Ok(api_for(client, &resource, &caps, &id.namespace)
        .get_opt(&id.name)
        .await?)
}

/// kstatus-like health of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Current,
    InProgress(String),
    Failed(String),
}

/// Deployments must be Available at their generation, Flux objects Ready at theirs (Stalled is
/// failure), anything else only has to exist.
pub async fn health(client: &Client, id: &ObjectId) -> anyhow::Result<Health> {
    let Some(object) = get(client, id).await? else {
        return Ok(Health::InProgress("NotFound".to_owned()));
    };
    Ok(health_of(id, &object.data, object.metadata.generation))
}

pub fn health_of(id: &ObjectId, data: &Value, generation: Option<i64>) -> Health {
    let status = &data["status"];
    let condition = |type_: &str| {
        status["conditions"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["type"] == type_))
            .cloned()
    };
    let observed = status["observedGeneration"].as_i64();
    let caught_up = generation.is_none() || observed == generation;
    let is_flux = id.group.ends_with(".toolkit.fluxcd.io");
    if id.kind == "Deployment" && id.group == "apps" {
        if let Some(p) = condition("Progressing").filter(|c| c["status"] == "False") {
            return Health::Failed(
                p["message"]
                    .as_str()
                    .unwrap_or("progress deadline exceeded")
                    .to_owned(),
            );
        }
        let available = condition("Available").is_some_and(|c| c["status"] == "True");
        return if available && caught_up {
            Health::Current
        } else {
            Health::InProgress("Deployment is not Available yet".to_owned())
        };
    }
    if is_flux {
        if let Some(stalled) = condition("Stalled").filter(|c| c["status"] == "True") {
            return Health::Failed(stalled["message"].as_str().unwrap_or_default().to_owned());
        }
        let ready = condition("Ready");
        return match ready {
            Some(c) if c["status"] == "True" && caught_up => Health::Current,
            Some(c) => Health::InProgress(c["message"].as_str().unwrap_or_default().to_owned()),
            None => Health::InProgress("no Ready condition yet".to_owned()),
        };
    }
    Health::Current
}

/// The health of a set of objects: what failed (with why) and what is still in progress.
#[derive(Debug, Default)]
pub struct HealthReport {
    pub failed: Vec<(ObjectId, String)>,
    pub pending: Vec<ObjectId>,
}

impl HealthReport {
    pub fn is_healthy(&self) -> bool {
        self.failed.is_empty() && self.pending.is_empty()
    }

    /// `[Deployment/ns/name status: 'Failed']`, as Flux lists objects in health messages.
    pub fn describe(&self) -> String {
        let failed = self
            .failed
            .iter()
            .map(|(id, why)| format!("{} status: 'Failed': {why}", id.display()));
        let pending = self
            .pending
            .iter()
            .map(|id| format!("{} status: 'InProgress'", id.display()));
        format!("[{}]", failed.chain(pending).collect::<Vec<_>>().join(", "))
    }
}

pub async fn check_health(client: &Client, ids: &[ObjectId]) -> anyhow::Result<HealthReport> {
    let mut report = HealthReport::default();
    for id in ids {
        match health(client, id).await? {
            Health::Current => {}
            Health::InProgress(_) => report.pending.push(id.clone()),
            Health::Failed(why) => report.failed.push((id.clone(), why)),
        }
    }
    Ok(report)
}

/// Parses multi-document YAML into objects, skipping empty documents.
pub fn parse_documents(yaml: &str) -> anyhow::Result<Vec<DynamicObject>> {
    let mut out = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value: Value =
            serde::Deserialize::deserialize(document).context("invalid YAML document")?;
        if value.is_null() {
            continue;
        }
        out.push(serde_json::from_value(value).context("not a Kubernetes object")?);
    }
    Ok(out)
}

/// Applies CRDs and Namespaces before everything else, as Flux and kubectl do.
pub fn apply_order(object: &DynamicObject) -> u8 {
    match object.types.as_ref().map(|t| t.kind.as_str()) {
        Some("CustomResourceDefinition") => 0,
        Some("Namespace") => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inventory_ids_follow_flux() {
        let deployment = ObjectId {
            namespace: "apps".into(),
            name: "web".into(),
            group: "apps".into(),
            kind: "Deployment".into(),
            version: "v1".into(),
        };
        assert_eq!(deployment.inventory_id(), "apps_web_apps_Deployment");
        let namespace = ObjectId {
            namespace: String::new(),
            name: "apps".into(),
            group: String::new(),
            kind: "Namespace".into(),
            version: "v1".into(),
        };
        assert_eq!(namespace.inventory_id(), "_apps__Namespace");
        assert_eq!(
            ObjectId::from_ref(&namespace.to_ref()),
            Some(namespace.clone())
        );
        assert_eq!(ObjectId::from_ref(&deployment.to_ref()), Some(deployment));
        assert_eq!(
            ObjectId::from_ref(&ResourceRef {
                id: "bad".into(),
                v: "v1".into()
            }),
            None
        );
    }

    #[test]
    fn deployment_health_reads_conditions() {
        let id = ObjectId {
            namespace: "a".into(),
            name: "d".into(),
            group: "apps".into(),
            kind: "Deployment".into(),
            version: "v1".into(),
        };
        let available = json!({"status": {"observedGeneration": 2, "conditions": [{"type": "Available", "status": "True"}]}});
        assert_eq!(health_of(&id, &available, Some(2)), Health::Current);
        assert!(matches!(
            health_of(&id, &available, Some(3)),
            Health::InProgress(_)
        ));
        let failed = json!({"status": {"conditions": [{"type": "Progressing", "status": "False", "message": "image pull"}]}});
        assert_eq!(
            health_of(&id, &failed, Some(1)),
            Health::Failed("image pull".into())
        );
        let config = ObjectId {
            kind: "ConfigMap".into(),
            group: String::new(),
            ..id
        };
        assert_eq!(health_of(&config, &json!({}), None), Health::Current);
    }

    #[test]
    fn parses_multi_document_yaml() {
        let objects = parse_documents("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n").unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(gvk_of(&objects[1]).unwrap().group, "apps");
        assert_eq!(apply_order(&objects[0]), 1);
    }
}
