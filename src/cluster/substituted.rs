//! The Kustomizations that substitute from config a run changed (`postBuild.substituteFrom`
//! naming the contract's ConfigMap or Secret), and the reconcile the run requests of them.
//! Flux re-applies a Kustomization whose spec and source did not change only on its interval
//! (or at once on a change of a watched, labelled object from Flux 2.7 on), so without the
//! request the apps would run the old config for up to that interval; the wait then counts
//! each of them only once it handled this request (`status.lastHandledReconcileAt`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use serde::Serialize;

use super::ObjectName;
use super::apply::object_name;
use super::flux::{FluxError, flux_resource, request_reconcile};
use super::wait::tree::flux_children;

/// The reconcile a run requested of the Kustomizations substituting from what it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigReconcile {
    /// The value of `reconcile.fluxcd.io/requestedAt` the run wrote.
    pub requested_at: String,
    /// Each Kustomization asked, with the names of the changed objects it substitutes from.
    pub kustomizations: BTreeMap<ObjectName, Vec<String>>,
}

impl ConfigReconcile {
    pub fn is_empty(&self) -> bool {
        self.kustomizations.is_empty()
    }

    /// What `kustomization` waits to apply, when the run asked it: `cluster-config and
    /// cluster-secrets`.
    pub fn awaited(&self, kustomization: &ObjectName) -> Option<String> {
        let sources = self.kustomizations.get(kustomization)?;
        Some(sources.join(" and "))
    }
}

/// Asks each Kustomization under `root` (followed through the inventories) that substitutes
/// from one of `changed` to reconcile now. Nothing when nothing changed, or when the cluster
/// has no Kustomizations yet (Flux not installed: it will apply the new config first).
pub async fn request_reconcile_of_substituting(
    client: &Client,
    root: &ObjectName,
    changed: &[ObjectName],
) -> Result<ConfigReconcile, FluxError> {
    if changed.is_empty() {
        return Ok(ConfigReconcile::default());
    }
    let resource = flux_resource("Kustomization").expect("Kustomization is a Flux kind");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let listed = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        // The kind is not served: Flux is not installed yet.
        Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
        Err(err) => {
            return Err(FluxError::Observe {
                object: root.clone(),
                message: super::api_message(&err),
            });
        }
    };
    let kustomizations: BTreeMap<ObjectName, DynamicObject> = listed
        .into_iter()
        .map(|mut object| {
            object.types.get_or_insert_with(|| kube::api::TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            });
            (object_name(&object), object)
        })
        .collect();
    let asked = substituting(&kustomizations, root, changed);
    if asked.is_empty() {
        return Ok(ConfigReconcile::default());
    }
    let requested_at = jiff::Timestamp::now().to_string();
    for kustomization in asked.keys() {
        request_reconcile(client, &resource, kustomization, &requested_at).await?;
    }
    Ok(ConfigReconcile {
        requested_at,
        kustomizations: asked,
    })
}

/// The Kustomizations reachable from `root` through inventories whose `substituteFrom` names
/// one of `changed` (in the Kustomization's own namespace, where Flux looks), with the names.
fn substituting(
    kustomizations: &BTreeMap<ObjectName, DynamicObject>,
    root: &ObjectName,
    changed: &[ObjectName],
) -> BTreeMap<ObjectName, Vec<String>> {
    let mut found = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([root.clone()]);
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(kustomization) = kustomizations.get(&name) else {
            continue;
        };
        let sources: Vec<String> = substitution_sources(kustomization)
            .into_iter()
            .filter(|source| changed.contains(source))
            .map(|source| source.name)
            .collect();
        if !sources.is_empty() {
            found.insert(name, sources);
        }
        let children = flux_children(kustomization);
        queue.extend(children.into_iter().filter(|c| c.kind == "Kustomization"));
    }
    found
}

/// The ConfigMaps and Secrets a Kustomization's `postBuild.substituteFrom` names.
pub fn substitution_sources(kustomization: &DynamicObject) -> Vec<ObjectName> {
    let namespace = kustomization
        .metadata
        .namespace
        .as_deref()
        .unwrap_or_default();
    kustomization.data["spec"]["postBuild"]["substituteFrom"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|reference| {
            Some(ObjectName::namespaced(
                reference["kind"].as_str()?,
                namespace,
                reference["name"].as_str()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::apply::parse_documents;

    const KUSTOMIZATIONS: &str = r#"
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec: {}
status:
  inventory:
    entries:
    - {id: flux-system_profile_kustomize.toolkit.fluxcd.io_Kustomization, v: v1}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: profile, namespace: flux-system}
spec:
  postBuild:
    substituteFrom:
    - {kind: ConfigMap, name: cluster-config}
    - {kind: Secret, name: cluster-secrets}
status:
  inventory:
    entries:
    - {id: flux-system_external-dns_kustomize.toolkit.fluxcd.io_Kustomization, v: v1}
    - {id: flux-system_ingress_kustomize.toolkit.fluxcd.io_Kustomization, v: v1}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: external-dns, namespace: flux-system}
spec:
  postBuild:
    substituteFrom:
    - {kind: ConfigMap, name: cluster-config}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: ingress, namespace: flux-system}
spec:
  postBuild:
    substituteFrom:
    - {kind: ConfigMap, name: other}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: elsewhere, namespace: flux-system}
spec:
  postBuild:
    substituteFrom:
    - {kind: ConfigMap, name: cluster-config}
"#;

    fn kustomizations() -> BTreeMap<ObjectName, DynamicObject> {
        parse_documents(KUSTOMIZATIONS)
            .unwrap()
            .into_iter()
            .map(|object| (object_name(&object), object))
            .collect()
    }

    fn ks(name: &str) -> ObjectName {
        ObjectName::namespaced("Kustomization", "flux-system", name)
    }

    #[test]
    fn only_kustomizations_under_the_root_substituting_from_a_changed_object_are_asked() {
        let config = ObjectName::namespaced("ConfigMap", "flux-system", "cluster-config");
        let secrets = ObjectName::namespaced("Secret", "flux-system", "cluster-secrets");
        let asked = substituting(
            &kustomizations(),
            &ks("flux-system"),
            std::slice::from_ref(&config),
        );
        // `elsewhere` reads it too, but no Kustomization of this env applied it.
        assert_eq!(
            asked,
            BTreeMap::from([
                (ks("external-dns"), vec!["cluster-config".to_owned()]),
                (ks("profile"), vec!["cluster-config".to_owned()]),
            ])
        );
        let both = substituting(&kustomizations(), &ks("flux-system"), &[config, secrets]);
        assert_eq!(both[&ks("profile")], ["cluster-config", "cluster-secrets"]);
        let reconcile = ConfigReconcile {
            requested_at: "t".to_owned(),
            kustomizations: both,
        };
        assert_eq!(
            reconcile.awaited(&ks("profile")).as_deref(),
            Some("cluster-config and cluster-secrets")
        );
        assert_eq!(reconcile.awaited(&ks("ingress")), None);
        // The same name in another namespace is another object.
        let foreign = ObjectName::namespaced("ConfigMap", "apps", "cluster-config");
        assert!(substituting(&kustomizations(), &ks("flux-system"), &[foreign]).is_empty());
    }
}
