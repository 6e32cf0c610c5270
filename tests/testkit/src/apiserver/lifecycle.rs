//! What the real control plane's controllers do after a write: Namespace termination,
//! CRD instance cleanup, ownerReference garbage collection (background and foreground), and
//! the root CA publisher's `kube-root-ca.crt` ConfigMap in every active namespace.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::fieldset::Scope;
use super::objects::{self, CRD_CLEANUP_FINALIZER, FOREGROUND_FINALIZER, Ownership, Propagation};
use super::registry::ResourceType;
use super::ssa::Writer;
use super::store::{Store, key_of};

const MANAGER: &str = "testkit-controller-manager";

/// Runs every controller until nothing changes (bounded, so a bug cannot spin forever);
/// `ca_pem` is the cluster CA the root CA publisher hands out.
pub fn reconcile(store: &mut Store, ca_pem: &str) {
    for _ in 0..50 {
        let before = store.resource_version();
        publish_root_ca(store, ca_pem);
        terminate_namespaces(store);
        clean_up_crds(store);
        collect_garbage(store);
        if store.resource_version() == before {
            return;
        }
    }
}

type Located = (ResourceType, Value);

fn located(store: &Store, filter: impl Fn(&str, &str, &Value) -> bool) -> Vec<Located> {
    store
        .all()
        .filter(|(group, plural, object)| filter(group, plural, object))
        .filter_map(|(group, plural, object)| {
            let rt = store.registry.by_group_resource(group, plural)?.clone();
            Some((rt, object.clone()))
        })
        .collect()
}

fn deleting(object: &Value) -> bool {
    object["metadata"]["deletionTimestamp"].is_string()
}

fn delete_all(store: &mut Store, objects: Vec<Located>) {
    for (rt, object) in objects.into_iter().filter(|(_, o)| !deleting(o)) {
        let (namespace, name) = key_of(&object);
        // Already gone or otherwise settled: nothing more to do for this one.
        let _ = objects::delete(
            store,
            &rt,
            &namespace,
            &name,
            Propagation::Background,
            false,
        );
    }
}

/// Drops `finalizer` from `object` (from `spec.finalizers` for a Namespace's own).
fn release(store: &mut Store, rt: &ResourceType, object: &Value, finalizer: &str) {
    let mut new = object.clone();
    for section in ["metadata", "spec"] {
        if let Some(items) = new[section]["finalizers"].as_array_mut() {
            items.retain(|f| f != finalizer);
        }
    }
    let writer = Writer {
        manager: MANAGER,
        api_version: &rt.api_version(&rt.versions[0]),
        scope: Scope::Main,
        now: &objects::now(),
    };
    // Namespace spec.finalizers live under the main scope here, as /finalize would set them.
    let written = objects::write(
        store,
        rt,
        object,
        new,
        Scope::Main,
        Ownership::Update(&writer),
        objects::WriteOptions {
            manager: MANAGER,
            version: &rt.versions[0],
            dry_run: false,
        },
    );
    if let Err(error) = written {
        tracing::debug!(?error, "releasing a finalizer failed");
    }
}

/// The ConfigMap kube-controller-manager's root CA publisher keeps in every namespace.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Creates `kube-root-ca.crt` (`ca.crt`: the cluster CA) in each active namespace lacking it;
/// a terminating namespace gets none, as the real publisher cannot create there either.
fn publish_root_ca(store: &mut Store, ca_pem: &str) {
    let Some(rt) = store.registry.by_group_resource("", "configmaps").cloned() else {
        return;
    };
    let namespaces: Vec<String> = located(store, |g, p, o| {
        g.is_empty() && p == "namespaces" && !deleting(o)
    })
    .iter()
    .filter_map(|(_, ns)| ns["metadata"]["name"].as_str().map(String::from))
    .filter(|ns| {
        store
            .get("", "configmaps", ns, ROOT_CA_CONFIG_MAP)
            .is_none()
    })
    .collect();
    for namespace in namespaces {
        let object = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": ROOT_CA_CONFIG_MAP,
                "namespace": namespace,
                "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
            },
            "data": {"ca.crt": ca_pem},
        });
        let created = objects::create(
            store,
            &rt,
            object,
            objects::WriteOptions {
                manager: MANAGER,
                version: &rt.versions[0],
                dry_run: false,
            },
            false,
        );
        if let Err(error) = created {
            tracing::debug!(?error, "publishing the root CA failed");
        }
    }
}

fn terminate_namespaces(store: &mut Store) {
    for (rt, namespace) in located(store, |g, p, o| {
        g.is_empty() && p == "namespaces" && deleting(o)
    }) {
        let name = namespace["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let contents = located(store, |_, _, o| {
            o["metadata"]["namespace"].as_str() == Some(name.as_str())
        });
        if contents.is_empty() {
            let mut finished = namespace.clone();
            finished["spec"]["finalizers"] = json!([]);
            if objects::finalizers(&finished).is_empty() {
                objects::remove(store, &rt, "", &name);
            } else {
                release(store, &rt, &namespace, "kubernetes");
            }
        } else {
            delete_all(store, contents);
        }
    }
}

fn clean_up_crds(store: &mut Store) {
    for (rt, crd) in located(store, |g, p, o| {
        g == "apiextensions.k8s.io" && p == "customresourcedefinitions" && deleting(o)
    }) {
        let group = crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let instances = located(store, |g, p, _| g == group && p == plural);
        if instances.is_empty() {
            release(store, &rt, &crd, CRD_CLEANUP_FINALIZER);
        } else {
            delete_all(store, instances);
        }
    }
}

/// Deletes objects all of whose owners are gone; a foreground-deleting owner first loses its
/// dependents, then its `foregroundDeletion` finalizer.
fn collect_garbage(store: &mut Store) {
    let uids: BTreeSet<String> = store
        .all()
        .filter_map(|(_, _, o)| o["metadata"]["uid"].as_str().map(String::from))
        .collect();
    let orphaned = located(store, |_, _, o| {
        let owners = objects::owner_uids(o);
        !owners.is_empty() && owners.iter().all(|uid| !uids.contains(uid))
    });
    delete_all(store, orphaned);

    for (rt, owner) in located(store, |_, _, o| {
        deleting(o)
            && objects::finalizers(o)
                .iter()
                .any(|f| f == FOREGROUND_FINALIZER)
    }) {
        let uid = owner["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let dependents = located(store, |_, _, o| objects::owner_uids(o).contains(&uid));
        if dependents.is_empty() {
            release(store, &rt, &owner, FOREGROUND_FINALIZER);
        } else {
            delete_all(store, dependents);
        }
    }
}
