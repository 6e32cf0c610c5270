//! The bench playing Flux's controllers for a synthetic tree: N objects, half Kustomizations
//! and half HelmReleases, in `dependsOn` chains, listed in the inventory of the root
//! Kustomization `flux-system/flux-system`. The bench writes their status itself, so it knows
//! exactly when (by the server's clock) the last one turned Ready.

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

/// Objects per `dependsOn` chain (each waits on the one before it).
const CHAIN: usize = 10;
/// Writes the bench sends at once.
const CONCURRENT_WRITES: usize = 8;
const TRANSITION_TIME: &str = "2026-01-01T00:00:00Z";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Kustomization,
    HelmRelease,
}

impl Kind {
    fn resource(self) -> ApiResource {
        match self {
            Kind::Kustomization => resource("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"),
            Kind::HelmRelease => resource("helm.toolkit.fluxcd.io", "v2", "HelmRelease"),
        }
    }
}

fn resource(group: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn inventory_id(namespace: &str, name: &str, resource: &ApiResource) -> Value {
    json!({
        "id": format!("{namespace}_{name}_{}_{}", resource.group, resource.kind),
        "v": resource.version,
    })
}

pub struct Synthetic {
    client: Client,
    namespace: String,
    objects: Vec<(Kind, String)>,
    /// The revision the GitRepository fetched, which the Kustomizations report applied.
    revision: String,
}

impl Synthetic {
    /// Creates `count` objects in a new namespace, none Ready yet, and points the root's
    /// inventory at them (and at their HelmRepository).
    pub async fn create(client: &Client, namespace: &str, count: usize) -> anyhow::Result<Self> {
        let revision = fetched_revision(client).await?;
        let namespaces: Api<DynamicObject> =
            Api::all_with(client.clone(), &resource("", "v1", "Namespace"));
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        namespaces
            .create(&PostParams::default(), &serde_json::from_value(ns)?)
            .await
            .with_context(|| format!("creating namespace {namespace}"))?;
        let repository = resource("source.toolkit.fluxcd.io", "v1", "HelmRepository");
        let repositories: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &repository);
        let body = json!({
            "apiVersion": repository.api_version, "kind": "HelmRepository",
            "metadata": {"name": "charts"},
            "spec": {"interval": "1h", "url": "https://charts.example.test"},
        });
        repositories
            .create(&PostParams::default(), &serde_json::from_value(body)?)
            .await?;
        let ready = ready_status(None);
        patch_status(&repositories, "charts", ready).await?;

        let objects: Vec<(Kind, String)> = (0..count)
            .map(|i| match i % 2 {
                0 => (Kind::Kustomization, format!("ks-{i}")),
                _ => (Kind::HelmRelease, format!("hr-{i}")),
            })
            .collect();
        let synthetic = Synthetic {
            client: client.clone(),
            namespace: namespace.to_owned(),
            objects,
            revision,
        };
        futures::stream::iter(0..count)
            .map(|index| synthetic.create_object(index))
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect::<Vec<()>>()
            .await?;
        synthetic.point_root_here(&repository).await?;
        Ok(synthetic)
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// The object `index` is in its chain after the one two places before it (same kind).
    fn depends_on(&self, index: usize) -> Option<&str> {
        let position = index / 2;
        (!position.is_multiple_of(CHAIN)).then(|| self.objects[index - 2].1.as_str())
    }

    fn api(&self, kind: Kind) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &kind.resource())
    }

    async fn create_object(&self, index: usize) -> anyhow::Result<()> {
        let (kind, name) = &self.objects[index];
        let depends_on: Vec<Value> = self
            .depends_on(index)
            .map(|d| json!({"name": d}))
            .into_iter()
            .collect();
        let spec = match kind {
            Kind::Kustomization => json!({
                "interval": "10m", "path": format!("./apps/{name}"), "prune": true,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"},
                "dependsOn": depends_on,
            }),
            Kind::HelmRelease => json!({
                "interval": "10m",
                "chart": {"spec": {"chart": name, "version": "1.0.0",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
                "dependsOn": depends_on,
            }),
        };
        let resource = kind.resource();
        let body = json!({
            "apiVersion": resource.api_version, "kind": resource.kind,
            "metadata": {"name": name}, "spec": spec,
        });
        let api = self.api(*kind);
        api.create(&PostParams::default(), &serde_json::from_value(body)?)
            .await
            .with_context(|| format!("creating {} {name}", resource.kind))?;
        patch_status(&api, name, progressing_status()).await
    }

    async fn point_root_here(&self, repository: &ApiResource) -> anyhow::Result<()> {
        let mut entries = vec![inventory_id(&self.namespace, "charts", repository)];
        entries.extend(
            self.objects
                .iter()
                .map(|(kind, name)| inventory_id(&self.namespace, name, &kind.resource())),
        );
        let roots = self.api_root();
        let status = json!({"inventory": {"entries": entries}});
        patch_status(&roots, "flux-system", status).await
    }

    fn api_root(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            "flux-system",
            &Kind::Kustomization.resource(),
        )
    }

    /// Writes what a controller writes when it starts working on object `index`.
    pub async fn set_progressing(&self, index: usize) -> anyhow::Result<()> {
        let (kind, name) = &self.objects[index];
        patch_status(&self.api(*kind), name, progressing_status()).await
    }

    /// Writes what a controller writes when object `index` is done.
    pub async fn set_ready(&self, index: usize) -> anyhow::Result<()> {
        let (kind, name) = &self.objects[index];
        let revision = (*kind == Kind::Kustomization).then_some(self.revision.as_str());
        patch_status(&self.api(*kind), name, ready_status(revision)).await
    }

    /// Every object but the last Ready (the last one is progressing).
    pub async fn all_ready_but_last(&self) -> anyhow::Result<()> {
        let last = self.len() - 1;
        futures::stream::iter(0..last)
            .map(|index| self.set_ready(index))
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect::<Vec<()>>()
            .await?;
        self.set_progressing(last).await
    }

    /// The status resource and name of object `index`, as the server's write log has them.
    pub fn status_target(&self, index: usize) -> (String, &str) {
        let (kind, name) = &self.objects[index];
        (format!("{}/status", kind.resource().plural), name)
    }

    /// Deletes the namespace and waits until it is gone, so its objects leave the watches.
    pub async fn delete(self) -> anyhow::Result<()> {
        let namespaces: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &resource("", "v1", "Namespace"));
        namespaces
            .delete(&self.namespace, &Default::default())
            .await?;
        for _ in 0..600 {
            if namespaces.get_opt(&self.namespace).await?.is_none() {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "namespace {} was not deleted within a minute",
            self.namespace
        )
    }
}

/// The revision the root's GitRepository has fetched (create-env left it Ready).
async fn fetched_revision(client: &Client) -> anyhow::Result<String> {
    let sources: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "flux-system",
        &resource("source.toolkit.fluxcd.io", "v1", "GitRepository"),
    );
    let source = sources.get("flux-system").await?;
    source.data["status"]["artifact"]["revision"]
        .as_str()
        .map(str::to_owned)
        .context("the GitRepository flux-system has fetched no revision")
}

async fn patch_status(api: &Api<DynamicObject>, name: &str, status: Value) -> anyhow::Result<()> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .with_context(|| format!("writing the status of {name}"))?;
    Ok(())
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "observedGeneration": 1, "lastTransitionTime": TRANSITION_TIME,
    })
}

fn progressing_status() -> Value {
    json!({
        "observedGeneration": 1,
        "conditions": [
            condition("Reconciling", "True", "Progressing", "reconciliation in progress"),
            condition("Ready", "Unknown", "Progressing", "reconciliation in progress"),
        ],
    })
}

/// Ready at generation 1; a Kustomization also reports `revision` applied.
fn ready_status(revision: Option<&str>) -> Value {
    let message = revision.map_or("succeeded".to_owned(), |r| format!("Applied revision: {r}"));
    let mut status = json!({
        "observedGeneration": 1,
        "conditions": [condition("Ready", "True", "ReconciliationSucceeded", &message)],
    });
    if let Some(revision) = revision {
        status["lastAppliedRevision"] = json!(revision);
        status["lastAttemptedRevision"] = json!(revision);
    }
    status
}
