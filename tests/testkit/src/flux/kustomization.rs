//! kustomize-controller's Kustomization: dependsOn, build, server-side apply with field
//! manager `kustomize-controller`, prune by inventory, wait/healthChecks, finalizer. Applied
//! again on its `interval`, a change of spec or source revision, a reconcile request, or (from
//! Flux 2.7 on) a change of a labelled ConfigMap or Secret it reads (`config_watch`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::DynamicObject;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::build::{self, Failure, failure};
use super::conditions::{
    self, IN_PROGRESS, format_duration, mark_failed, mark_progressing, mark_ready, parse_duration,
};
use super::config_watch;
use super::decrypt;
use super::objects::{self, ObjectId};
use super::runtime::{self, Context, ReconcileResult};
use super::substitution;
use super::types::{
    FluxStatus, GitRepository, Kustomization, KustomizationStatus, ResourceInventory,
};

const MANAGER: &str = "kustomize-controller";
const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
const NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
const PRUNE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/prune";

pub async fn run(ctx: Arc<Context>) {
    loop {
        let controller = configured(&ctx).await;
        if !runtime::drive_while_installed(controller, ctx.clone(), MANAGER, reconcile).await {
            return;
        }
    }
}

/// The controller, once installed, with the watches that trigger dependants and readers of
/// watched config.
async fn configured(ctx: &Arc<Context>) -> Controller<Kustomization> {
    let controller = runtime::installed_controller::<Kustomization>(
        ctx,
        "kustomizations.kustomize.toolkit.fluxcd.io",
        MANAGER,
    )
    .await;
    // A new source revision, or a dependency turning Ready, triggers the dependants at once.
    let by_source = controller.store();
    let by_dependency = controller.store();
    let (by_config_map, by_secret) = (controller.store(), controller.store());
    let labelled = || watcher::Config::default().labels(&config_watch::selector());
    controller
        .watches(
            Api::<GitRepository>::all(ctx.client.clone()),
            watcher::Config::default(),
            move |repo| {
                let (ns, name) = (repo.namespace().unwrap_or_default(), repo.name_any());
                by_source
                    .state()
                    .into_iter()
                    .filter(|ks| ks.spec.source_ref.name == name && source_namespace(ks) == ns)
                    .map(|ks| ObjectRef::from_obj(&*ks))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            Api::<Kustomization>::all(ctx.client.clone()),
            watcher::Config::default(),
            move |dependency| {
                let (ns, name) = (
                    dependency.namespace().unwrap_or_default(),
                    dependency.name_any(),
                );
                by_dependency
                    .state()
                    .into_iter()
                    .filter(|ks| {
                        let own_ns = ks.namespace().unwrap_or_default();
                        ks.spec.depends_on.iter().any(|d| {
                            d.name == name && d.namespace.as_deref().unwrap_or(&own_ns) == ns
                        })
                    })
                    .map(|ks| ObjectRef::from_obj(&*ks))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            Api::<ConfigMap>::all(ctx.client.clone()),
            labelled(),
            move |cm| config_watch::readers(&by_config_map, &cm),
        )
        .watches(
            Api::<Secret>::all(ctx.client.clone()),
            labelled(),
            move |secret| config_watch::readers(&by_secret, &secret),
        )
}

fn source_namespace(ks: &Kustomization) -> String {
    ks.spec
        .source_ref
        .namespace
        .clone()
        .or_else(|| ks.namespace())
        .unwrap_or_default()
}

async fn reconcile(ks: Arc<Kustomization>, ctx: Arc<Context>) -> ReconcileResult {
    let namespace = ks.namespace().unwrap_or_default();
    let api: Api<Kustomization> = Api::namespaced(ctx.client.clone(), &namespace);
    let prune_all = || async {
        if ks.spec.prune && !runtime::is_suspended(ks.spec.suspend) {
            // The watched copy can predate the last pass's inventory write (a Kustomization
            // deleted just after its first apply): what that pass applied must go too.
            let fresh = api.get_opt(&ks.name_any()).await?;
            let inventory = fresh
                .as_ref()
                .unwrap_or(&ks)
                .status
                .as_ref()
                .and_then(|s| s.inventory.clone())
                .unwrap_or_default();
            prune(&ctx.client, &ks, &inventory, &BTreeSet::new())
                .await
                .map_err(|f| anyhow::anyhow!(f.message))?;
        }
        Ok(())
    };
    if let Some(done) = runtime::handle_finalizer(&api, &ks, MANAGER, prune_all).await? {
        return Ok(done);
    }
    if runtime::is_suspended(ks.spec.suspend) {
        return Ok(Action::await_change());
    }
    let artifact = ctx
        .artifacts
        .get(&source_namespace(&ks), &ks.spec.source_ref.name);
    let revision = artifact.as_ref().map(|a| a.revision.clone());
    // A watched config change makes an attempt due as a new revision does.
    let watched = config_watch::watched_versions(&ctx.client, &ks).await;
    let due_on = format!("{}{watched}", revision.as_deref().unwrap_or_default());
    let attempt = match ctx.begin(&*ks, Some(&due_on)) {
        Ok(attempt) => attempt,
        Err(not_due) => return Ok(not_due),
    };
    let interval = ctx.interval(Some(&ks.spec.interval));

    let generation = ks.metadata.generation;
    let mut status = ks.status.clone().unwrap_or_default();
    status.record_handled(generation, attempt.requested_at.clone());
    // kustomize-controller shows a pass under way (Ready Unknown, Progressing) before it
    // applies anything: a reader can tell a suspended Kustomization's last pass has ended.
    // Only a pass after a success (or the first) is marked: the stand-in retries a waiting or
    // failed pass every few hundred milliseconds where Flux waits within one pass or retries
    // on its retryInterval, so marking those would hide Flux's message most of the time.
    let fresh_pass = conditions::find(&status.conditions, conditions::READY)
        .is_none_or(|ready| ready.status == "True");
    let written = if fresh_pass {
        mark_progressing(&mut status.conditions, generation, IN_PROGRESS);
        runtime::write_status(&api, &ks, MANAGER, ks.status.as_ref(), &status).await?;
        Some(status.clone())
    } else {
        ks.status.clone()
    };
    let outcome = one_pass(
        &ctx,
        &ks,
        &namespace,
        artifact.as_ref(),
        &mut status,
        &attempt.fingerprint,
    )
    .await;
    let (next, pace) = match outcome {
        Outcome::Ready(message) => {
            status.last_applied_revision = revision;
            mark_ready(
                &mut status.conditions,
                generation,
                "ReconciliationSucceeded",
                &message,
            );
            ctx.stop_waiting(&attempt.key);
            (interval, true)
        }
        Outcome::Progressing(message) => {
            mark_progressing(&mut status.conditions, generation, &message);
            (ctx.opts.retry_interval, false)
        }
        Outcome::Failed(Failure { reason, message }) => {
            mark_failed(&mut status.conditions, generation, reason, &message);
            (ctx.opts.retry_interval, true)
        }
    };
    ctx.end(attempt, next, pace);
    runtime::write_status(&api, &ks, MANAGER, written.as_ref(), &status).await?;
    Ok(Action::requeue(next))
}

enum Outcome {
    Ready(String),
    Progressing(String),
    Failed(Failure),
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Self {
        Outcome::Failed(f)
    }
}

/// One pass: dependencies, build, apply, prune, health. Records inventory and attempted
/// revision in `status` as soon as they are known.
async fn one_pass(
    ctx: &Context,
    ks: &Kustomization,
    namespace: &str,
    artifact: Option<&super::StoredArtifact>,
    status: &mut KustomizationStatus,
    fingerprint: &str,
) -> Outcome {
    if let Err(f) = dependencies_ready(&ctx.client, ks, namespace).await {
        return f.into();
    }
    if ks.spec.source_ref.kind != "GitRepository" {
        return failure(
            "ArtifactFailed",
            format!(
                "source kind '{}' is not supported by the testkit",
                ks.spec.source_ref.kind
            ),
        )
        .into();
    }
    let Some(artifact) = artifact else {
        let source = format!("{}/{}", source_namespace(ks), ks.spec.source_ref.name);
        return failure(
            "ArtifactFailed",
            format!("Source artifact not found for GitRepository '{source}', retrying"),
        )
        .into();
    };
    status.last_attempted_revision = Some(artifact.revision.clone());
    let applied = match build_and_apply(ctx, ks, namespace, artifact).await {
        Ok(applied) => applied,
        Err(f) => return f.into(),
    };
    let keep: BTreeSet<String> = applied.iter().map(ObjectId::inventory_id).collect();
    let previous = status.inventory.clone().unwrap_or_default();
    let mut entries: Vec<_> = applied.iter().map(ObjectId::to_ref).collect();
    entries.sort();
    status.inventory = Some(ResourceInventory { entries });
    if ks.spec.prune
        && let Err(f) = prune(&ctx.client, ks, &previous, &keep).await
    {
        return f.into();
    }
    health(
        ctx,
        ks,
        namespace,
        &applied,
        &artifact.revision,
        fingerprint,
    )
    .await
}

async fn dependencies_ready(
    client: &Client,
    ks: &Kustomization,
    namespace: &str,
) -> Result<(), Failure> {
    for dependency in &ks.spec.depends_on {
        let dep_ns = dependency.namespace.as_deref().unwrap_or(namespace);
        let api: Api<Kustomization> = Api::namespaced(client.clone(), dep_ns);
        let found = api
            .get_opt(&dependency.name)
            .await
            .map_err(|e| failure("DependencyNotReady", e.to_string()))?;
        let ready = found
            .as_ref()
            .is_some_and(|d| conditions::is_ready(d.status.as_ref(), d.metadata.generation));
        if !ready {
            return Err(failure(
                "DependencyNotReady",
                format!("dependency '{dep_ns}/{}' is not ready", dependency.name),
            ));
        }
    }
    Ok(())
}

async fn build_and_apply(
    ctx: &Context,
    ks: &Kustomization,
    namespace: &str,
    artifact: &super::StoredArtifact,
) -> Result<Vec<ObjectId>, Failure> {
    let identities = match &ks.spec.decryption {
        Some(decryption) => Some(decrypt::identities(&ctx.client, namespace, decryption).await?),
        None => None,
    };
    let vars = match &ks.spec.post_build {
        Some(post_build) => Some(
            substitution::variables(&ctx.client, namespace, post_build)
                .await
                .map_err(|m| failure("BuildFailed", m))?,
        ),
        None => None,
    };
    let path = ks.spec.path.as_deref().unwrap_or("./");
    let mut objects = build::build(
        artifact.dir(),
        path,
        &ks.spec.components,
        &ks.spec.patches,
        vars.as_ref(),
        identities.as_ref(),
    )
    .await?;
    objects.sort_by_key(objects::apply_order);
    let mut applied = Vec::with_capacity(objects.len());
    for mut object in objects {
        label(&mut object, &ks.name_any(), namespace);
        let id = objects::apply_unless_ignored(
            &ctx.client,
            MANAGER,
            object,
            ks.spec.target_namespace.as_deref(),
        )
        .await
        .map_err(|e| failure("ReconciliationFailed", format!("{e:#}")))?;
        applied.push(id);
    }
    Ok(applied)
}

fn label(object: &mut DynamicObject, name: &str, namespace: &str) {
    let labels = object.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(NAME_LABEL.to_owned(), name.to_owned());
    labels.insert(NAMESPACE_LABEL.to_owned(), namespace.to_owned());
}

/// Deletes inventory entries not in `keep`, namespaced objects before cluster-scoped ones,
/// as Flux does: only objects that still carry this Kustomization's labels (another owner,
/// e.g. the Flux Operator after a migration, may have taken them) and not
/// `kustomize.toolkit.fluxcd.io/prune: disabled`.
async fn prune(
    client: &Client,
    ks: &Kustomization,
    inventory: &ResourceInventory,
    keep: &BTreeSet<String>,
) -> Result<(), Failure> {
    let (name, namespace) = (ks.name_any(), ks.namespace().unwrap_or_default());
    let owner = [
        (NAME_LABEL, name.as_str()),
        (NAMESPACE_LABEL, namespace.as_str()),
    ];
    let mut stale: Vec<ObjectId> = inventory
        .entries
        .iter()
        .filter(|e| !keep.contains(&e.id))
        .filter_map(ObjectId::from_ref)
        .collect();
    stale.sort_by_key(|id| {
        (
            id.namespace.is_empty(),
            id.kind == "CustomResourceDefinition",
        )
    });
    for id in &stale {
        objects::delete_owned(client, id, &owner, PRUNE_ANNOTATION)
            .await
            .map_err(|e| failure("PruneFailed", format!("{e:#}")))?;
    }
    Ok(())
}

async fn health(
    ctx: &Context,
    ks: &Kustomization,
    namespace: &str,
    applied: &[ObjectId],
    revision: &str,
    fingerprint: &str,
) -> Outcome {
    let ready = Outcome::Ready(format!("Applied revision: {revision}"));
    let mut checked: Vec<ObjectId> = if ks.spec.wait.unwrap_or(false) {
        applied.to_vec()
    } else {
        Vec::new()
    };
    for reference in &ks.spec.health_checks {
        let api_version = reference.api_version.as_deref().unwrap_or("v1");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        checked.push(ObjectId {
            namespace: reference
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.to_owned()),
            name: reference.name.clone(),
            group: group.to_owned(),
            kind: reference.kind.clone(),
            version: version.to_owned(),
        });
    }
    if checked.is_empty() {
        return ready;
    }
    let timeout = ks
        .spec
        .timeout
        .as_deref()
        .or(Some(&ks.spec.interval))
        .and_then(parse_duration)
        .unwrap_or(Duration::from_secs(300));
    let report = match objects::check_health(&ctx.client, &checked).await {
        Ok(report) => report,
        Err(e) => return failure("HealthCheckFailed", format!("{e:#}")).into(),
    };
    if report.is_healthy() {
        return ready;
    }
    let waited = ctx.waited(&runtime::key_of(ks), fingerprint);
    if !report.failed.is_empty() {
        let message = format!(
            "health check failed after {}: failed early due to stalled resources: {}",
            format_duration(waited),
            report.describe()
        );
        return failure("HealthCheckFailed", message).into();
    }
    if waited >= timeout {
        let message = format!(
            "health check failed after {}: timeout waiting for: {}",
            format_duration(waited),
            report.describe()
        );
        return failure("HealthCheckFailed", message).into();
    }
    Outcome::Progressing(format!(
        "Running health checks for revision {revision} with a timeout of {}",
        format_duration(timeout)
    ))
}
