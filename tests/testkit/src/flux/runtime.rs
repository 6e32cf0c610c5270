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
use kube::runtime::watcher;
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
/// The interval of an object whose spec has none (HelmRepository's is optional).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

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

    /// Starts an attempt on `object` (whose source, if any, is at `source_revision`), or
    /// `Err(requeue)` when it was reconciled with the same fingerprint and its next attempt is
    /// not due yet. Watch events caused by our own status writes land there.
    pub fn begin<K: Resource>(
        &self,
        object: &K,
        source_revision: Option<&str>,
    ) -> Result<Attempt, Action> {
        let key = key_of(object);
        let requested_at = requested_at(object);
        // The uid too: an object deleted and created again under its name is a new object,
        // which Flux reconciles at once, whatever the old one's interval.
        let fingerprint = format!(
            "{:?}/{:?}/{:?}/{:?}",
            object.meta().uid,
            object.meta().generation,
            requested_at,
            source_revision
        );
        let pacer = self.pacer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((settled_fingerprint, due)) = pacer.get(&key) {
            let now = Instant::now();
            if *settled_fingerprint == fingerprint && now < *due {
                return Err(Action::requeue(*due - now));
            }
        }
        Ok(Attempt {
            key,
            fingerprint,
            requested_at,
        })
    }

    /// Ends an attempt. `paced`: the next one is due after `next` unless the fingerprint
    /// changes; otherwise any event starts it at once.
    pub fn end(&self, attempt: Attempt, next: Duration, paced: bool) {
        let mut pacer = self.pacer.lock().unwrap_or_else(|p| p.into_inner());
        if paced {
            pacer.insert(attempt.key, (attempt.fingerprint, Instant::now() + next));
        } else {
            pacer.remove(&attempt.key);
        }
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

    /// `spec.interval`: the pause before a Ready object is reconciled again.
    pub fn interval(&self, spec_interval: Option<&str>) -> Duration {
        spec_interval
            .and_then(parse_duration)
            .unwrap_or(DEFAULT_INTERVAL)
    }
}

/// One reconcile attempt of an object, from [`Context::begin`] to [`Context::end`].
pub struct Attempt {
    /// `namespace/name`, the key of the object's pacing and waits.
    pub key: String,
    /// Uid, generation, reconcile request and source revision: a change makes an attempt due.
    pub fingerprint: String,
    /// The value of `reconcile.fluxcd.io/requestedAt`, if any.
    pub requested_at: Option<String>,
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

/// A controller over `K` in every namespace, once `crd` is served and Deployment
/// flux-system/`deployment` is Available.
pub async fn installed_controller<K>(ctx: &Context, crd: &str, deployment: &str) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    wait_installed::<K>(ctx, crd, deployment).await;
    Controller::new(
        Api::<K>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
}

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

/// Runs `reconcile` over every `K` while it is installed (see [`installed_controller`] and
/// [`drive_while_installed`]), until the task is cancelled.
pub async fn run<K, F, Fut>(ctx: Arc<Context>, crd: &str, deployment: &str, mut reconcile: F)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = ReconcileResult> + Send + 'static,
{
    loop {
        let controller = installed_controller::<K>(&ctx, crd, deployment).await;
        if !drive_while_installed(controller, ctx.clone(), deployment, &mut reconcile).await {
            return;
        }
    }
}

/// Drives `controller` until Deployment flux-system/`deployment` goes, as its pods would stop
/// (`true`: wait for the next install), or until the controller ends (`false`).
pub async fn drive_while_installed<K, F, Fut>(
    controller: Controller<K>,
    ctx: Arc<Context>,
    deployment: &str,
    reconcile: F,
) -> bool
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = ReconcileResult> + Send + 'static,
{
    if !ctx.opts.require_install {
        drive(controller, ctx, reconcile).await;
        return false;
    }
    tokio::select! {
        () = drive(controller, ctx.clone(), reconcile) => false,
        () = uninstalled(&ctx, deployment) => true,
    }
}

/// Returns once Deployment flux-system/`deployment` is gone (or being deleted).
pub async fn uninstalled(ctx: &Context, deployment: &str) {
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), FLUX_NAMESPACE);
    let gone = |d: Option<&Deployment>| d.is_none_or(|d| d.metadata.deletion_timestamp.is_some());
    loop {
        match kube::runtime::wait::await_condition(deployments.clone(), deployment, gone).await {
            Ok(_) => return,
            Err(_) => tokio::time::sleep(ctx.opts.install_poll).await,
        }
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

fn has_finalizer<K: Resource>(object: &K, finalizer: &str) -> bool {
    object
        .meta()
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == finalizer))
}

/// Adds or removes `finalizer`, guarded by the resourceVersion that was read, under the
/// controller's own field manager (as the real controllers write it).
async fn set_finalizer<K>(
    api: &Api<K>,
    object: &K,
    (manager, finalizer): (&str, &str),
    present: bool,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut finalizers: Vec<String> = object.meta().finalizers.clone().unwrap_or_default();
    finalizers.retain(|f| f != finalizer);
    if present {
        finalizers.push(finalizer.to_owned());
    }
    let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": object.meta().resource_version } });
    api.patch(
        &object.name_any(),
        &PatchParams {
            field_manager: Some(manager.to_owned()),
            ..PatchParams::default()
        },
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

/// Deletion and Flux's finalizer. An object being deleted gets `cleanup` and loses the
/// finalizer; one without it gets it. Either way `Some(action)` ends this reconcile.
pub async fn handle_finalizer<K, F, Fut>(
    api: &Api<K>,
    object: &K,
    manager: &str,
    cleanup: F,
) -> Result<Option<Action>, ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), ReconcileError>>,
{
    handle_named_finalizer(api, object, (manager, FINALIZER), cleanup).await
}

/// [`handle_finalizer`] with another controller's finalizer (the operator has its own).
pub async fn handle_named_finalizer<K, F, Fut>(
    api: &Api<K>,
    object: &K,
    (manager, finalizer): (&str, &str),
    cleanup: F,
) -> Result<Option<Action>, ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), ReconcileError>>,
{
    if is_deleting(object) {
        if has_finalizer(object, finalizer) {
            cleanup().await?;
            set_finalizer(api, object, (manager, finalizer), false).await?;
        }
        return Ok(Some(Action::await_change()));
    }
    if !has_finalizer(object, finalizer) {
        set_finalizer(api, object, (manager, finalizer), true).await?;
        return Ok(Some(Action::await_change()));
    }
    Ok(None)
}

pub fn is_deleting<K: Resource>(object: &K) -> bool {
    object.meta().deletion_timestamp.is_some()
}

pub fn is_suspended(flag: Option<bool>) -> bool {
    flag.unwrap_or(false)
}
