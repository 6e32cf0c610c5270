//! The operator's FluxInstance reconciler: build (BuildFailed stalls), server-side apply
//! under the manager `flux-operator` taking over objects a classic install applied, prune
//! what the previous revision had and this one dropped, wait for health within the
//! instance's timeout, and on deletion uninstall what the inventory lists.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DynamicObject, Patch};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use super::build::{Build, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, PRUNE_ANNOTATION, build};
use super::types::{FluxInstance, FluxInstanceStatus};
use super::{FINALIZER, MANAGER};
use crate::flux::conditions::{
    IN_PROGRESS, format_duration, mark_failed, mark_progressing, mark_ready, mark_stalled,
    parse_duration,
};
use crate::flux::objects::{self, Health, ObjectId};
use crate::flux::runtime::{self, Context, ReconcileResult};
use crate::flux::types::ResourceInventory;

const RECONCILE_ANNOTATION: &str = "fluxcd.controlplane.io/reconcile";
const EVERY_ANNOTATION: &str = "fluxcd.controlplane.io/reconcileEvery";
const TIMEOUT_ANNOTATION: &str = "fluxcd.controlplane.io/reconcileTimeout";
/// The labels a classic install (`flux bootstrap`, kustomize-controller) put on what the
/// operator takes over; without them kustomize-controller's prune leaves those objects alone.
const BOOTSTRAP_LABELS: [&str; 2] = [
    "kustomize.toolkit.fluxcd.io/name",
    "kustomize.toolkit.fluxcd.io/namespace",
];

pub async fn run(ctx: Arc<Context>) {
    runtime::run(
        ctx,
        "fluxinstances.fluxcd.controlplane.io",
        MANAGER,
        reconcile,
    )
    .await;
}

fn annotation<'a>(instance: &'a FluxInstance, key: &str) -> Option<&'a str> {
    instance.annotations().get(key).map(String::as_str)
}

async fn reconcile(instance: Arc<FluxInstance>, ctx: Arc<Context>) -> ReconcileResult {
    let namespace = instance.namespace().unwrap_or_default();
    let api: Api<FluxInstance> = Api::namespaced(ctx.client.clone(), &namespace);
    let remove = || uninstall(&ctx, &instance);
    if let Some(done) =
        runtime::handle_named_finalizer(&api, &*instance, (MANAGER, FINALIZER), remove).await?
    {
        return Ok(done);
    }
    if annotation(&instance, RECONCILE_ANNOTATION) == Some("disabled") {
        return Ok(Action::await_change());
    }
    let attempt = match ctx.begin(&*instance, None) {
        Ok(attempt) => attempt,
        Err(not_due) => return Ok(not_due),
    };
    let generation = instance.metadata.generation;
    let mut status = instance.status.clone().unwrap_or_default();
    if attempt.requested_at.is_some() {
        status.last_handled_reconcile_at = attempt.requested_at.clone();
    }
    let built = match build(&instance, status.last_applied_revision.as_deref()) {
        Ok(built) => built,
        Err(message) => {
            let message = format!("build failed: {message}");
            mark_stalled(
                &mut status.conditions,
                generation,
                "BuildFailed",
                &message,
                "BuildFailed",
                &message,
            );
            // Terminal: nothing changes until the spec does.
            ctx.end(attempt, Duration::ZERO, false);
            runtime::write_status(&api, &*instance, MANAGER, instance.status.as_ref(), &status)
                .await?;
            return Ok(Action::await_change());
        }
    };
    let (next, pace) = match apply_and_wait(&ctx, &instance, &built, &mut status).await {
        Ok(Some(elapsed)) => {
            status.last_applied_revision = Some(built.revision.clone());
            let message = format!("Reconciliation finished in {}", format_duration(elapsed));
            mark_ready(
                &mut status.conditions,
                generation,
                "ReconciliationSucceeded",
                &message,
            );
            ctx.stop_waiting(&attempt.key);
            let every = annotation(&instance, EVERY_ANNOTATION).or(Some("1h"));
            (ctx.interval(every), true)
        }
        Ok(None) => {
            mark_progressing(&mut status.conditions, generation, IN_PROGRESS);
            (ctx.opts.retry_interval, false)
        }
        Err(message) => {
            let message = format!("reconciliation failed: {message}");
            mark_failed(
                &mut status.conditions,
                generation,
                "ReconciliationFailed",
                &message,
            );
            ctx.stop_waiting(&attempt.key);
            (ctx.opts.retry_interval, true)
        }
    };
    ctx.end(attempt, next, pace);
    runtime::write_status(&api, &*instance, MANAGER, instance.status.as_ref(), &status).await?;
    // The operator asks for a fresh report after each reconcile.
    if let Err(error) = super::report::refresh(&ctx.client).await {
        tracing::debug!(%error, "FluxReport refresh failed");
    }
    Ok(Action::requeue(next))
}

/// Applies the build, records inventory and components, prunes, and checks health:
/// `Some(elapsed)` once every object is healthy, `None` while waiting within the timeout.
async fn apply_and_wait(
    ctx: &Context,
    instance: &FluxInstance,
    built: &Build,
    status: &mut FluxInstanceStatus,
) -> Result<Option<Duration>, String> {
    status.last_attempted_revision = Some(built.revision.clone());
    let applied = apply_all(&ctx.client, built).await?;
    let keep: BTreeSet<String> = applied.iter().map(ObjectId::inventory_id).collect();
    let previous = status.inventory.clone().unwrap_or_default();
    let mut entries: Vec<_> = applied.iter().map(ObjectId::to_ref).collect();
    entries.sort();
    status.inventory = Some(ResourceInventory { entries });
    status.components = built.images.clone();
    let stale: Vec<ObjectId> = previous
        .entries
        .iter()
        .filter(|e| !keep.contains(&e.id))
        .filter_map(ObjectId::from_ref)
        .collect();
    delete_owned(&ctx.client, instance, &stale).await?;
    if instance.spec.wait == Some(false) {
        return Ok(Some(Duration::ZERO));
    }
    let key = runtime::key_of(instance);
    let waited = ctx.waited(&key, &built.revision);
    let report = objects::check_health(&ctx.client, &applied)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if report.is_healthy() {
        return Ok(Some(waited));
    }
    let timeout = annotation(instance, TIMEOUT_ANNOTATION)
        .and_then(parse_duration)
        .unwrap_or(Duration::from_secs(300));
    if waited < timeout {
        return Ok(None);
    }
    // As the operator words it: the wait's timeout, then why each Flux object is not Ready.
    let mut message = format!("timeout waiting for: {}", report.describe());
    for id in applied.iter().filter(|id| id.group.ends_with(".fluxcd.io")) {
        if let Ok(Health::InProgress(why) | Health::Failed(why)) =
            objects::health(&ctx.client, id).await
        {
            message.push_str(&format!("\n{} status: {why}", id.display()));
        }
    }
    Err(message)
}

/// Server-side applies every object, CRDs and Namespaces first, then takes objects over
/// from a classic install: its ownership labels go, so its Kustomization no longer prunes
/// them.
async fn apply_all(client: &Client, built: &Build) -> Result<Vec<ObjectId>, String> {
    let mut documents: Vec<DynamicObject> = built
        .objects
        .iter()
        .map(|o| serde_json::from_value(o.clone()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    documents.sort_by_key(objects::apply_order);
    let mut applied = Vec::with_capacity(documents.len());
    for object in documents {
        let id = objects::apply(client, MANAGER, object, None)
            .await
            .map_err(|e| format!("{e:#}"))?;
        drop_bootstrap_labels(client, &id).await?;
        applied.push(id);
    }
    Ok(applied)
}

async fn drop_bootstrap_labels(client: &Client, id: &ObjectId) -> Result<(), String> {
    let Some(live) = objects::get(client, id)
        .await
        .map_err(|e| format!("{e:#}"))?
    else {
        return Ok(());
    };
    let labels = live.labels();
    let present: serde_json::Map<String, Value> = BOOTSTRAP_LABELS
        .iter()
        .filter(|l| labels.contains_key(**l))
        .map(|l| ((*l).to_owned(), Value::Null))
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let patch = json!({"metadata": {"labels": present}});
    objects::patch(client, id, MANAGER, &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Deletes those of `ids` that still carry this instance's owner labels and are not marked
/// `fluxcd.controlplane.io/prune: disabled`; CRDs last.
async fn delete_owned(
    client: &Client,
    instance: &FluxInstance,
    ids: &[ObjectId],
) -> Result<(), String> {
    let (name, namespace) = (
        instance.name_any(),
        instance.namespace().unwrap_or_default(),
    );
    let owner = [
        (OWNER_NAME_LABEL, name.as_str()),
        (OWNER_NAMESPACE_LABEL, namespace.as_str()),
    ];
    let mut ids = ids.to_vec();
    ids.sort_by_key(|id| {
        (
            id.kind == "CustomResourceDefinition",
            id.namespace.is_empty(),
        )
    });
    for id in &ids {
        objects::delete_owned(client, id, &owner, PRUNE_ANNOTATION)
            .await
            .map_err(|e| format!("{e:#}"))?;
    }
    Ok(())
}

/// What the operator does when its FluxInstance is deleted: the controllers' Deployments
/// first (they stop), then everything else the inventory lists, then the finalizers of the
/// Flux objects left behind, since no controller is left to honour them;
/// a FluxInstance whose reconciliation is disabled is let go with Flux left installed, as the
/// operator does (how Flux is handed back to a classic install).
async fn uninstall(ctx: &Context, instance: &FluxInstance) -> Result<(), runtime::ReconcileError> {
    if annotation(instance, RECONCILE_ANNOTATION) == Some("disabled") {
        return Ok(());
    }
    let Some(inventory) = instance.status.as_ref().and_then(|s| s.inventory.clone()) else {
        return Ok(());
    };
    if annotation(instance, RECONCILE_ANNOTATION) == Some("disabled") {
        return Ok(());
    }
    let ids: Vec<ObjectId> = inventory
        .entries
        .iter()
        .filter_map(ObjectId::from_ref)
        .collect();
    let (deployments, rest): (Vec<ObjectId>, Vec<ObjectId>) =
        ids.into_iter().partition(|id| id.kind == "Deployment");
    delete_owned(&ctx.client, instance, &deployments)
        .await
        .map_err(anyhow::Error::msg)?;
    // Give the stand-in controllers the moment real pods take to terminate.
    tokio::time::sleep(ctx.opts.install_poll).await;
    delete_owned(&ctx.client, instance, &rest)
        .await
        .map_err(anyhow::Error::msg)?;
    super::strip_flux_finalizers(&ctx.client).await?;
    Ok(())
}
