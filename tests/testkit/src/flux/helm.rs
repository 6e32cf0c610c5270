//! source-controller's HelmRepository and helm-controller's HelmRelease, backed by the chart
//! catalogue: install applies the catalogue's objects, remediation retries then stalls,
//! uninstall runs from the finalizer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::build::{Failure, failure};
use super::conditions::{
    self, format_duration, mark_failed, mark_progressing, mark_ready, mark_stalled, parse_duration,
    remove_condition, set_condition,
};
use super::objects::{self, ObjectId};
use super::runtime::{self, Context, ReconcileResult};
use super::types::{
    Artifact, FluxStatus, HelmRelease, HelmReleaseStatus, HelmRepository, Snapshot,
};
use crate::charts::{Chart, Charts, Release};

const SOURCE_MANAGER: &str = "source-controller";
const MANAGER: &str = "helm-controller";
const RELEASED: &str = "Released";
const FETCH_FAILED: &str = "FetchFailed";

pub async fn run_repositories(ctx: Arc<Context>) {
    runtime::run(
        ctx,
        "helmrepositories.source.toolkit.fluxcd.io",
        SOURCE_MANAGER,
        reconcile_repository,
    )
    .await;
}

async fn reconcile_repository(repo: Arc<HelmRepository>, ctx: Arc<Context>) -> ReconcileResult {
    if runtime::is_deleting(&*repo) || runtime::is_suspended(repo.spec.suspend) {
        return Ok(Action::await_change());
    }
    let api: Api<HelmRepository> =
        Api::namespaced(ctx.client.clone(), &repo.namespace().unwrap_or_default());
    let generation = repo.metadata.generation;
    let mut status = repo.status.clone().unwrap_or_default();
    status.record_handled(generation, runtime::requested_at(&*repo));
    let url = repo.spec.url.clone();
    let next = if ctx.opts.charts.has_index(&url) {
        let revision = format!(
            "sha256:{:x}",
            url.bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        );
        let path = format!(
            "helmrepository/{}/{}/index-{revision}.yaml",
            repo.namespace().unwrap_or_default(),
            repo.name_any()
        );
        if status
            .artifact
            .as_ref()
            .is_none_or(|a| a.revision != revision)
        {
            status.artifact = Some(Artifact {
                url: format!("http://source-controller.flux-system.svc.cluster.local./{path}"),
                path,
                revision: revision.clone(),
                digest: Some(revision.clone()),
                last_update_time: jiff::Timestamp::now().to_string(),
            });
        }
        status.url = Some(url);
        remove_condition(&mut status.conditions, FETCH_FAILED);
        mark_ready(
            &mut status.conditions,
            generation,
            "Succeeded",
            &format!("stored artifact: revision '{revision}'"),
        );
        ctx.interval(repo.spec.interval.as_deref())
    } else {
        let message = format!(
            "failed to fetch Helm repository index: failed to cache index to temporary file: failed to fetch {}/index.yaml : 404 Not Found",
            url.trim_end_matches('/')
        );
        // source-controller's reason for a failed index download, on FetchFailed and Ready.
        set_condition(
            &mut status.conditions,
            FETCH_FAILED,
            "True",
            "Failed",
            &message,
            generation,
        );
        mark_failed(&mut status.conditions, generation, "Failed", &message);
        ctx.opts.retry_interval
    };
    runtime::write_status(&api, &repo, SOURCE_MANAGER, repo.status.as_ref(), &status).await?;
    Ok(Action::requeue(next))
}

pub async fn run_releases(ctx: Arc<Context>) {
    runtime::run(
        ctx,
        "helmreleases.helm.toolkit.fluxcd.io",
        MANAGER,
        reconcile_release,
    )
    .await;
}

/// Helm's release name and namespace for this HelmRelease.
fn release_identity(hr: &HelmRelease) -> (String, String) {
    let namespace = hr.namespace().unwrap_or_default();
    let name = hr
        .spec
        .release_name
        .clone()
        .unwrap_or_else(|| match &hr.spec.target_namespace {
            Some(target) => format!("{target}-{}", hr.name_any()),
            None => hr.name_any(),
        });
    (name, hr.spec.target_namespace.clone().unwrap_or(namespace))
}

async fn reconcile_release(hr: Arc<HelmRelease>, ctx: Arc<Context>) -> ReconcileResult {
    let namespace = hr.namespace().unwrap_or_default();
    let api: Api<HelmRelease> = Api::namespaced(ctx.client.clone(), &namespace);
    let uninstall_release = || async {
        if !runtime::is_suspended(hr.spec.suspend)
            && let Some(installed) = hr.status.as_ref().and_then(|s| s.history.first())
        {
            uninstall(&ctx, installed, hr.spec.values.as_ref()).await?;
        }
        Ok(())
    };
    if let Some(done) = runtime::handle_finalizer(&api, &hr, MANAGER, uninstall_release).await? {
        return Ok(done);
    }
    let generation = hr.metadata.generation;
    let mut status = hr.status.clone().unwrap_or_default();
    let same_generation = status.last_attempted_generation == generation;
    if runtime::is_suspended(hr.spec.suspend)
        || (same_generation && conditions::is_stalled(Some(&status)))
    {
        return Ok(Action::await_change());
    }
    let attempt = match ctx.begin(&*hr, None) {
        Ok(attempt) => attempt,
        Err(not_due) => return Ok(not_due),
    };
    let interval = ctx.interval(Some(&hr.spec.interval));
    if !same_generation {
        status.install_failures = None;
        status.failures = None;
    }
    status.record_handled(generation, attempt.requested_at.clone());
    status.last_attempted_generation = generation;
    status.storage_namespace = Some(namespace.clone());
    let (next, pace) = match release(&ctx, &hr, &namespace, &mut status, &attempt.fingerprint).await
    {
        Step::Ready(message) => {
            let reason = ready_reason(&status);
            set_condition(
                &mut status.conditions,
                RELEASED,
                "True",
                reason,
                &message,
                generation,
            );
            mark_ready(&mut status.conditions, generation, reason, &message);
            ctx.stop_waiting(&attempt.key);
            (interval, true)
        }
        Step::Progressing(message) => {
            mark_progressing(&mut status.conditions, generation, &message);
            (ctx.opts.retry_interval, false)
        }
        Step::Waiting(Failure { reason, message }) => {
            mark_failed(&mut status.conditions, generation, reason, &message);
            (ctx.opts.retry_interval, true)
        }
        Step::InstallFailed(message) => {
            record_install_failure(&hr, &mut status, &message);
            ctx.stop_waiting(&attempt.key);
            (ctx.opts.helm_retry_interval, true)
        }
    };
    ctx.end(attempt, next, pace);
    runtime::write_status(&api, &hr, MANAGER, hr.status.as_ref(), &status).await?;
    Ok(Action::requeue(next))
}

fn ready_reason(status: &HelmReleaseStatus) -> &'static str {
    if status.history.first().is_some_and(|s| s.version > 1) {
        "UpgradeSucceeded"
    } else {
        "InstallSucceeded"
    }
}

/// Counts the failure; past `install.remediation.retries` the release stalls.
fn record_install_failure(hr: &HelmRelease, status: &mut HelmReleaseStatus, message: &str) {
    let generation = hr.metadata.generation;
    let failures = status.install_failures.unwrap_or(0) + 1;
    status.install_failures = Some(failures);
    status.failures = Some(status.failures.unwrap_or(0) + 1);
    set_condition(
        &mut status.conditions,
        RELEASED,
        "False",
        "InstallFailed",
        message,
        generation,
    );
    let retries = hr
        .spec
        .install
        .as_ref()
        .and_then(|i| i.remediation.as_ref())
        .map_or(0, |r| r.retries);
    if retries >= 0 && failures > retries {
        let stalled = format!("Failed to install after {failures} attempt(s)");
        mark_stalled(
            &mut status.conditions,
            generation,
            "RetriesExceeded",
            &stalled,
            "InstallFailed",
            message,
        );
    } else {
        mark_failed(&mut status.conditions, generation, "InstallFailed", message);
    }
}

enum Step {
    Ready(String),
    Progressing(String),
    /// Not attempted yet (dependency or source not ready): no failure is counted.
    Waiting(Failure),
    InstallFailed(String),
}

async fn release(
    ctx: &Context,
    hr: &HelmRelease,
    namespace: &str,
    status: &mut HelmReleaseStatus,
    fingerprint: &str,
) -> Step {
    for dependency in &hr.spec.depends_on {
        let dep_ns = dependency.namespace.as_deref().unwrap_or(namespace);
        let found = Api::<HelmRelease>::namespaced(ctx.client.clone(), dep_ns)
            .get_opt(&dependency.name)
            .await
            .ok()
            .flatten();
        if !found
            .as_ref()
            .is_some_and(|d| conditions::is_ready(d.status.as_ref(), d.metadata.generation))
        {
            return Step::Waiting(failure(
                "DependencyNotReady",
                format!("dependency '{dep_ns}/{}' is not ready", dependency.name),
            ));
        }
    }
    let chart = &hr.spec.chart.spec;
    let source_ns = chart.source_ref.namespace.as_deref().unwrap_or(namespace);
    let source = Api::<HelmRepository>::namespaced(ctx.client.clone(), source_ns)
        .get_opt(&chart.source_ref.name)
        .await
        .ok()
        .flatten();
    let Some(source) =
        source.filter(|s| conditions::is_ready(s.status.as_ref(), s.metadata.generation))
    else {
        return Step::Waiting(failure(
            "ArtifactFailed",
            format!(
                "HelmRepository '{source_ns}/{}' is not ready",
                chart.source_ref.name
            ),
        ));
    };
    let (release_name, release_ns) = release_identity(hr);
    let version = chart.version.clone().unwrap_or_else(|| "*".to_owned());
    let entry = ctx
        .opts
        .charts
        .find(&source.spec.url, &chart.chart, chart.version.as_deref());
    let header = format!(
        "Helm install failed for release {release_ns}/{release_name} with chart {}@{version}",
        chart.chart
    );
    let Some(entry) = entry else {
        return Step::InstallFailed(format!(
            "{header}: chart \"{}\" version \"{version}\" not found in {} repository",
            chart.chart, source.spec.url
        ));
    };
    let values = hr.spec.values.clone().unwrap_or_else(|| json!({}));
    let release = Release {
        name: &release_name,
        namespace: &release_ns,
        values: &values,
    };
    let applied = match install(ctx, hr, &release, &entry, status).await {
        Ok(applied) => applied,
        Err(e) => return Step::InstallFailed(format!("{header}: {e:#}")),
    };
    let deployments: Vec<ObjectId> = applied
        .into_iter()
        .filter(|id| id.kind == "Deployment")
        .collect();
    let report = match objects::check_health(&ctx.client, &deployments).await {
        Ok(report) => report,
        Err(e) => return Step::InstallFailed(format!("{header}: {e:#}")),
    };
    let timeout = hr
        .spec
        .timeout
        .as_deref()
        .and_then(parse_duration)
        .unwrap_or(Duration::from_secs(300));
    let snapshot = status.history.first().cloned().unwrap_or_default();
    let done = format!(
        "Helm install succeeded for release {release_ns}/{release_name}.v{} with chart {}@{}",
        snapshot.version,
        entry.name(),
        entry.version()
    );
    if report.is_healthy() {
        return Step::Ready(done);
    }
    let waited = ctx.waited(&runtime::key_of(hr), fingerprint);
    if !report.failed.is_empty() || waited >= timeout {
        return Step::InstallFailed(format!(
            "{header}: resources not ready after {}: {}",
            format_duration(waited),
            report.describe()
        ));
    }
    Step::Progressing(format!(
        "Running 'install' action with timeout of {}",
        format_duration(timeout)
    ))
}

/// Applies the chart's objects, removes those a previous chart version had and this one has
/// not, and records the release in `status.history`.
async fn install(
    ctx: &Context,
    hr: &HelmRelease,
    release: &Release<'_>,
    entry: &Chart,
    status: &mut HelmReleaseStatus,
) -> anyhow::Result<Vec<ObjectId>> {
    let mut rendered = entry.render(release)?;
    if hr
        .spec
        .install
        .as_ref()
        .and_then(|i| i.create_namespace)
        .unwrap_or(false)
    {
        rendered.insert(0, serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": release.namespace}}))?);
    }
    rendered.sort_by_key(objects::apply_order);
    let mut applied = Vec::with_capacity(rendered.len());
    for mut object in rendered {
        annotate(&mut object, hr, release);
        applied.push(objects::apply(&ctx.client, MANAGER, object, None).await?);
    }
    let previous = status.history.first().cloned();
    let same = previous.as_ref().is_some_and(|p| {
        p.chart_name == entry.name()
            && p.chart_version == entry.version()
            && p.name == release.name
            && p.namespace == release.namespace
    });
    if same {
        return Ok(applied);
    }
    if let Some(previous) = &previous {
        let keep: BTreeSet<String> = applied.iter().map(ObjectId::inventory_id).collect();
        for id in installed_objects(ctx.opts.charts, previous, hr.spec.values.as_ref())? {
            if !keep.contains(&id.inventory_id()) && id.kind != "CustomResourceDefinition" {
                objects::delete(&ctx.client, &id).await?;
            }
        }
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut snapshot = Snapshot {
        config_digest: sha256_digest(&hr.spec.values.clone().unwrap_or(json!({})).to_string()),
        name: release.name.to_owned(),
        namespace: release.namespace.to_owned(),
        version: previous.as_ref().map_or(1, |p| p.version + 1),
        status: "deployed".to_owned(),
        chart_name: entry.name().to_owned(),
        chart_version: entry.version().to_owned(),
        first_deployed: previous
            .as_ref()
            .map_or(now.clone(), |p| p.first_deployed.clone()),
        last_deployed: now,
        ..Snapshot::default()
    };
    // Helm's digest is over the stored release; here over what the snapshot records of it.
    snapshot.digest = sha256_digest(&serde_json::to_string(&snapshot)?);
    status.history.insert(0, snapshot);
    status.history.truncate(5);
    Ok(applied)
}

/// `sha256:<hex>`, the `<algo>:<checksum>` form of Flux's digests.
fn sha256_digest(text: &str) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// Helm's ownership metadata plus helm-controller's labels.
fn annotate(object: &mut DynamicObject, hr: &HelmRelease, release: &Release) {
    let labels = object.metadata.labels.get_or_insert_with(Default::default);
    labels.insert("app.kubernetes.io/managed-by".to_owned(), "Helm".to_owned());
    labels.insert("helm.toolkit.fluxcd.io/name".to_owned(), hr.name_any());
    labels.insert(
        "helm.toolkit.fluxcd.io/namespace".to_owned(),
        hr.namespace().unwrap_or_default(),
    );
    let annotations = object
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(
        "meta.helm.sh/release-name".to_owned(),
        release.name.to_owned(),
    );
    annotations.insert(
        "meta.helm.sh/release-namespace".to_owned(),
        release.namespace.to_owned(),
    );
}

/// The objects a recorded release installed, re-rendered from its chart.
fn installed_objects(
    charts: Charts,
    snapshot: &Snapshot,
    values: Option<&Value>,
) -> anyhow::Result<Vec<ObjectId>> {
    let Some(entry) = charts.installed(&snapshot.chart_name, &snapshot.chart_version) else {
        return Ok(Vec::new());
    };
    let empty = json!({});
    let release = Release {
        name: &snapshot.name,
        namespace: &snapshot.namespace,
        values: values.unwrap_or(&empty),
    };
    Ok(entry
        .render(&release)?
        .into_iter()
        .filter_map(|o| {
            let types = o.types?;
            let (group, version) = types
                .api_version
                .rsplit_once('/')
                .map_or((String::new(), types.api_version.clone()), |(g, v)| {
                    (g.to_owned(), v.to_owned())
                });
            let namespaced = types.kind != "CustomResourceDefinition";
            Some(ObjectId {
                namespace: if namespaced {
                    snapshot.namespace.clone()
                } else {
                    String::new()
                },
                name: o.metadata.name?,
                group,
                kind: types.kind,
                version,
            })
        })
        .collect())
}

/// `helm uninstall`: deletes what the release installed; CRDs stay, as Helm keeps them.
async fn uninstall(
    ctx: &Context,
    snapshot: &Snapshot,
    values: Option<&Value>,
) -> anyhow::Result<()> {
    for id in installed_objects(ctx.opts.charts, snapshot, values)? {
        if id.kind != "CustomResourceDefinition" {
            objects::delete(&ctx.client, &id).await?;
        }
    }
    Ok(())
}
