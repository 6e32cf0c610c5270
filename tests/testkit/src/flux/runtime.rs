//! What the three controllers share: the context, waiting for installation, pacing of
//! reconciliations per `spec.interval`, status and finalizer patches, the run loop.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::FluxOptions;
use super::artifacts::ArtifactStore;
use super::conditions::parse_duration;
use super::manifest::FLUX_NAMESPACE;

pub const FINALIZER: &str = "finalizers.fluxcd.io";
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

pub struct Context {
    pub client: Client,
    pub opts: FluxOptions,
    pub artifacts: ArtifactStore,
    pacer: Mutex<HashMap<String, (String, Instant)>>,
    /// When an object started waiting for something (health, install), by uid and fingerprint.
    waits: Mutex<HashMap<String, (String, Instant)>>,
}

impl Context {
    pub fn new(client: Client, opts: FluxOptions, artifacts: ArtifactStore) -> Arc<Context> {
        Arc::new(Context {
            client,
            opts,
            artifacts,
            pacer: Mutex::default(),
            waits: Mutex::default(),
        })
    }

    /// If the object was reconciled with this fingerprint and its next attempt is not due
    /// yet, how long to wait; `None` means reconcile now. Watch events caused by our own
    /// status writes land here.
    pub fn not_due(&self, key: &str, fingerprint: &str) -> Option<Duration> {
        let pacer = self.pacer.lock().unwrap_or_else(|p| p.into_inner());
        let (settled_fingerprint, due) = pacer.get(key)?;
        let now = Instant::now();
        (settled_fingerprint == fingerprint && now < *due).then(|| *due - now)
    }

    /// Records a finished attempt: the next one is due after `wait` unless the fingerprint
    /// (generation, reconcile request, source revision) changes.
    pub fn settle(&self, key: &str, fingerprint: String, wait: Duration) {
        let mut pacer = self.pacer.lock().unwrap_or_else(|p| p.into_inner());
        pacer.insert(key.to_owned(), (fingerprint, Instant::now() + wait));
    }

    pub fn unsettle(&self, key: &str) {
        self.pacer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// How long the object has been waiting for the condition named by `fingerprint`.
    pub fn waited(&self, key: &str, fingerprint: &str) -> Duration {
        let mut waits = self.waits.lock().unwrap_or_else(|p| p.into_inner());
        let entry = waits
            .entry(key.to_owned())
            .or_insert_with(|| (fingerprint.to_owned(), Instant::now()));
        if entry.0 != fingerprint {
            *entry = (fingerprint.to_owned(), Instant::now());
        }
        entry.1.elapsed()
    }

    pub fn stop_waiting(&self, key: &str) {
        self.waits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// `spec.interval`, capped for tests.
    pub fn interval(&self, spec_interval: Option<&str>) -> Duration {
        spec_interval
            .and_then(parse_duration)
            .unwrap_or(self.opts.max_interval)
            .min(self.opts.max_interval)
    }
}

/// The error a reconcile returns when it could not even record a status.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct ReconcileError(#[from] pub anyhow::Error);

impl From<kube::Error> for ReconcileError {
    fn from(e: kube::Error) -> Self {
        ReconcileError(e.into())
    }
}

pub type ReconcileResult = Result<Action, ReconcileError>;

/// Waits until `crd` is served and Deployment flux-system/`deployment` is Available.
pub async fn wait_installed<K>(ctx: &Context, crd: &str, deployment: &str)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    if !ctx.opts.require_install {
        return;
    }
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), FLUX_NAMESPACE);
    let served: Api<K> = Api::all(ctx.client.clone());
    loop {
        let crd_present = matches!(crds.get_opt(crd).await, Ok(Some(_)));
        let is_served = crd_present && served.list(&ListParams::default().limit(1)).await.is_ok();
        let available = match deployments.get_opt(deployment).await {
            Ok(Some(d)) => d.status.and_then(|s| s.conditions).is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
                })
            }),
            _ => false,
        };
        if is_served && available {
            return;
        }
        tokio::time::sleep(ctx.opts.install_poll).await;
    }
}

/// Runs a kube-runtime controller until the task is cancelled.
pub async fn drive<K, F, Fut>(controller: Controller<K>, ctx: Arc<Context>, reconcile: F)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = ReconcileResult> + Send + 'static,
{
    controller
        .run(
            reconcile,
            |_, error: &ReconcileError, ctx: Arc<Context>| {
                tracing::debug!(%error, "reconcile failed");
                Action::requeue(ctx.opts.retry_interval)
            },
            ctx,
        )
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// `namespace/name` of an object.
pub fn key_of<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// The value of `reconcile.fluxcd.io/requestedAt`, if any.
pub fn requested_at<K: Resource>(object: &K) -> Option<String> {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(REQUESTED_AT))
        .cloned()
}

/// Writes `status` through the /status subresource when it differs from `current`.
pub async fn write_status<K, S>(
    api: &Api<K>,
    object: &K,
    manager: &str,
    current: Option<&S>,
    status: &S,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(());
    }
    let params = PatchParams {
        field_manager: Some(manager.to_owned()),
        ..Default::default()
    };
    api.patch_status(
        &object.name_any(),
        &params,
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

pub fn has_finalizer<K: Resource>(object: &K) -> bool {
    object
        .meta()
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// Adds or removes Flux's finalizer, guarded by the resourceVersion that was read.
pub async fn set_finalizer<K>(api: &Api<K>, object: &K, present: bool) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut finalizers: Vec<String> = object.meta().finalizers.clone().unwrap_or_default();
    finalizers.retain(|f| f != FINALIZER);
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": object.meta().resource_version } });
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

pub fn is_deleting<K: Resource>(object: &K) -> bool {
    object.meta().deletion_timestamp.is_some()
}

pub fn is_suspended(flag: Option<bool>) -> bool {
    flag.unwrap_or(false)
}
