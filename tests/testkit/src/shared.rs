//! Sharing one long-lived cluster (`GITOPS_BOOTSTRAP_TEST_KUBECONFIG`) between tests run
//! serially: a sandbox notes what the cluster held before it started and, when it ends, removes
//! what appeared since (namespaces with everything in them, finalizers released, CRDs with
//! their objects, cluster RBAC), so the next test finds the cluster as this one did.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Resource, ResourceExt as _};

/// How long removing a test's leftovers may take before the test fails.
const RESTORE_LIMIT: Duration = Duration::from_secs(120);

/// Restores a shared cluster to what it held when this was taken, once dropped; nothing for
/// an in-process cluster, which goes with its test. Drop it after the Flux stand-ins of the
/// test (declare it after them), so nothing re-creates what it removes.
pub struct Cleanup(Option<Baseline>);

impl Cleanup {
    pub async fn of(cluster: &crate::cluster::TestCluster) -> Cleanup {
        match cluster.admin() {
            Some(_) => Cleanup(None),
            None => Cleanup(Some(
                Baseline::take(&cluster.client(), cluster.kubeconfig_yaml()).await,
            )),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(baseline) = self.0.take() {
            baseline.restore_blocking();
        }
    }
}

/// The cluster-scoped names a shared cluster held when a test started.
struct Baseline {
    kubeconfig_yaml: String,
    namespaces: BTreeSet<String>,
    crds: BTreeSet<String>,
    cluster_roles: BTreeSet<String>,
    cluster_role_bindings: BTreeSet<String>,
}

async fn names<K>(client: &kube::Client) -> BTreeSet<String>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("listing the shared cluster")
        .items
        .iter()
        .map(|item| item.name_any())
        .collect()
}

impl Baseline {
    async fn take(client: &kube::Client, kubeconfig_yaml: &str) -> Baseline {
        Baseline {
            kubeconfig_yaml: kubeconfig_yaml.to_owned(),
            namespaces: names::<Namespace>(client).await,
            crds: names::<CustomResourceDefinition>(client).await,
            cluster_roles: names::<ClusterRole>(client).await,
            cluster_role_bindings: names::<ClusterRoleBinding>(client).await,
        }
    }

    /// Restores the cluster from a thread of its own, so a sandbox can do it when dropped
    /// (its own runtime may be the one blocked in `drop`). A failed cleanup fails the test,
    /// unless the test is failing already (a second panic would abort the whole run).
    fn restore_blocking(self) {
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            runtime.block_on(async {
                tokio::time::timeout(RESTORE_LIMIT, self.restore())
                    .await
                    .expect("the shared cluster's leftovers are removed in time");
            });
        })
        .join();
        if outcome.is_err() && !std::thread::panicking() {
            panic!("removing this test's leftovers from the shared cluster failed");
        }
    }

    async fn restore(&self) {
        let client = crate::apiserver::client_from_kubeconfig(&self.kubeconfig_yaml)
            .await
            .expect("a client of the shared cluster");
        let crds: Vec<CustomResourceDefinition> = Api::all(client.clone())
            .list(&ListParams::default())
            .await
            .expect("listing CRDs")
            .items;
        let new_namespaces: BTreeSet<String> = names::<Namespace>(&client)
            .await
            .difference(&self.namespaces)
            .cloned()
            .collect();
        // The Flux, kubelet and load-balancer stand-ins stopped with the sandbox: release what
        // they would have, or the new namespaces never finish terminating.
        for crd in &crds {
            let Some(resource) = served_resource(crd) else {
                continue;
            };
            let crd_is_new = !self.crds.contains(&crd.name_any());
            let chosen = |ns: &str| crd_is_new || new_namespaces.contains(ns);
            release_finalizers(&client, &resource, chosen).await;
        }
        for resource in [
            ApiResource::erase::<Service>(&()),
            ApiResource::erase::<PersistentVolumeClaim>(&()),
        ] {
            let chosen = |ns: &str| new_namespaces.contains(ns);
            release_finalizers(&client, &resource, chosen).await;
        }
        delete_all::<Namespace>(&client, &new_namespaces).await;
        let new_crds: BTreeSet<String> = crds
            .iter()
            .map(|crd| crd.name_any())
            .filter(|name| !self.crds.contains(name))
            .collect();
        delete_all::<CustomResourceDefinition>(&client, &new_crds).await;
        let roles = names::<ClusterRole>(&client).await;
        delete_all::<ClusterRole>(&client, &(&roles - &self.cluster_roles)).await;
        let bindings = names::<ClusterRoleBinding>(&client).await;
        delete_all::<ClusterRoleBinding>(&client, &(&bindings - &self.cluster_role_bindings)).await;
    }
}

/// The version of `crd` the cluster serves, as a resource to list.
fn served_resource(crd: &CustomResourceDefinition) -> Option<ApiResource> {
    let version = crd.spec.versions.iter().find(|v| v.served)?;
    let gvk = GroupVersionKind::gvk(&crd.spec.group, &version.name, &crd.spec.names.kind);
    Some(ApiResource::from_gvk_with_plural(
        &gvk,
        &crd.spec.names.plural,
    ))
}

/// Clears the finalizers of the objects of `resource` in the namespaces `chosen` picks.
async fn release_finalizers(
    client: &kube::Client,
    resource: &ApiResource,
    chosen: impl Fn(&str) -> bool,
) {
    let all: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let Ok(list) = all.list(&ListParams::default()).await else {
        return;
    };
    for object in list.items {
        let namespace = object.namespace().unwrap_or_default();
        if object.finalizers().is_empty() || !chosen(&namespace) {
            continue;
        }
        let api: Api<DynamicObject> = if namespace.is_empty() {
            all.clone()
        } else {
            Api::namespaced_with(client.clone(), &namespace, resource)
        };
        let patch = serde_json::json!({"metadata": {"finalizers": null}});
        // Gone meanwhile is as good as released.
        let _ = api
            .patch(
                &object.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await;
    }
}

/// Deletes the named cluster-scoped objects and waits until they are gone.
async fn delete_all<K>(client: &kube::Client, doomed: &BTreeSet<String>)
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    for name in doomed {
        // Already gone (a namespace's cascade, an earlier pass) is the goal.
        let _ = api.delete(name, &DeleteParams::background()).await;
    }
    while !names::<K>(client).await.is_disjoint(doomed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
