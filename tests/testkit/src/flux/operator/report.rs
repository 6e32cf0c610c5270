//! The FluxReport `flux` the operator keeps in its namespace: the distribution (from the
//! GitRepository CRD's labels), the components (the Flux Deployments' health), per-kind
//! reconciler counts and the sync line (the sync Kustomization and its source).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use super::types::{
    FluxComponentStatus, FluxDistributionStatus, FluxInstance, FluxReconcilerStats,
    FluxReconcilerStatus, FluxReport, FluxReportSpec, FluxReportStatus, FluxSyncStatus,
    INSTANCE_NAME, OperatorInfo,
};
use super::{MANAGER, OPERATOR_VERSION};
use crate::flux::conditions::{format_duration, mark_ready};
use crate::flux::manifest::FLUX_NAMESPACE;
use crate::flux::objects::{Health, ObjectId, health_of};
use crate::flux::runtime::{Context, uninstalled, wait_installed};
use crate::flux::types::{GitRepository, HelmRelease, HelmRepository, Kustomization};

/// How often the report is refreshed between FluxInstance reconciles. The operator's own
/// default is 5 minutes (`fluxcd.controlplane.io/reconcileEvery`); the report only describes
/// what runs, so the stand-in keeps it fresh sooner.
const REFRESH: Duration = Duration::from_secs(2);

/// Refreshes the report every [`REFRESH`] while the operator is installed (and after each
/// FluxInstance reconcile).
pub async fn run(ctx: Arc<Context>) {
    loop {
        wait_installed::<FluxReport>(&ctx, "fluxreports.fluxcd.controlplane.io", MANAGER).await;
        let refresh = async {
            loop {
                if let Err(error) = refresh(&ctx.client).await {
                    tracing::debug!(%error, "FluxReport refresh failed");
                }
                tokio::time::sleep(REFRESH).await;
            }
        };
        tokio::select! {
            () = refresh => {}
            () = uninstalled(&ctx, MANAGER) => {}
        }
    }
}

pub async fn refresh(client: &Client) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let spec = FluxReportSpec {
        distribution: distribution(client).await,
        cluster: None,
        operator: Some(OperatorInfo {
            api_version: "fluxcd.controlplane.io/v1".to_owned(),
            version: OPERATOR_VERSION.to_owned(),
            platform: "linux/amd64".to_owned(),
        }),
        components: components(client).await?,
        reconcilers: reconcilers(client).await,
        sync: sync(client).await,
    };
    let reports: Api<FluxReport> = Api::namespaced(client.clone(), FLUX_NAMESPACE);
    // Created by server-side apply, then its spec replaced by merge patch, as the operator's
    // patcher does: lists are replaced whole, in the order computed here.
    let applied = match reports.get_opt(INSTANCE_NAME).await? {
        None => {
            let report = FluxReport::new(INSTANCE_NAME, spec);
            let params = PatchParams::apply(MANAGER).force();
            reports
                .patch(INSTANCE_NAME, &params, &Patch::Apply(&report))
                .await?
        }
        Some(_) => {
            let params = PatchParams {
                field_manager: Some(MANAGER.to_owned()),
                ..PatchParams::default()
            };
            let patch = Patch::Merge(serde_json::json!({ "spec": spec }));
            reports.patch(INSTANCE_NAME, &params, &patch).await?
        }
    };
    let mut status = applied.status.clone().unwrap_or_default();
    let message = format!(
        "Reporting finished in {}",
        format_duration(started.elapsed())
    );
    let settled = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !settled {
        mark_ready(
            &mut status.conditions,
            applied.metadata.generation,
            "Succeeded",
            &message,
        );
        write_status(&reports, &status).await?;
    }
    Ok(())
}

async fn write_status(reports: &Api<FluxReport>, status: &FluxReportStatus) -> anyhow::Result<()> {
    let params = PatchParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PatchParams::default()
    };
    reports
        .patch_status(
            INSTANCE_NAME,
            &params,
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await?;
    Ok(())
}

async fn distribution(client: &Client) -> FluxDistributionStatus {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut out = FluxDistributionStatus {
        entitlement: "Unknown".to_owned(),
        status: "Not Installed".to_owned(),
        ..FluxDistributionStatus::default()
    };
    if let Ok(Some(crd)) = crds
        .get_opt("gitrepositories.source.toolkit.fluxcd.io")
        .await
    {
        let labels = crd.labels();
        out.status = "Installed".to_owned();
        out.version = labels.get("app.kubernetes.io/version").cloned();
        out.managed_by = labels
            .get("app.kubernetes.io/managed-by")
            .cloned()
            .or_else(|| {
                labels
                    .contains_key("kustomize.toolkit.fluxcd.io/name")
                    .then(|| "flux bootstrap".to_owned())
            });
    }
    out
}

async fn components(client: &Client) -> anyhow::Result<Vec<FluxComponentStatus>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), FLUX_NAMESPACE);
    let listed = deployments
        .list(&ListParams::default().labels("app.kubernetes.io/part-of=flux"))
        .await?;
    let mut out: Vec<FluxComponentStatus> = listed
        .items
        .iter()
        .map(|d| {
            let id = ObjectId {
                namespace: FLUX_NAMESPACE.to_owned(),
                name: d.name_any(),
                group: "apps".to_owned(),
                kind: "Deployment".to_owned(),
                version: "v1".to_owned(),
            };
            let data = serde_json::to_value(d).unwrap_or_default();
            let replicas = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            let (ready, status) = match health_of(&id, &data, d.metadata.generation) {
                Health::Current => (
                    true,
                    format!("Current Deployment is available. Replicas: {replicas}"),
                ),
                Health::InProgress(why) => (false, format!("InProgress {why}")),
                Health::Failed(why) => (false, format!("Failed {why}")),
            };
            let image = d
                .spec
                .template
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            FluxComponentStatus {
                name: d.name_any(),
                ready,
                status,
                image,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Running / failing / suspended counts per Flux kind the cluster serves.
async fn reconcilers(client: &Client) -> Vec<FluxReconcilerStatus> {
    let mut out = Vec::new();
    macro_rules! count {
        ($kind:ty) => {
            let api: Api<$kind> = Api::all(client.clone());
            if let Ok(list) = api.list(&ListParams::default()).await {
                let mut stats = FluxReconcilerStats::default();
                for item in &list.items {
                    if item.spec.suspend == Some(true) {
                        stats.suspended += 1;
                    } else if item.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "False")
                    }) {
                        stats.failing += 1;
                    } else {
                        stats.running += 1;
                    }
                }
                out.push(FluxReconcilerStatus {
                    api_version: <$kind as kube::Resource>::api_version(&()).into_owned(),
                    kind: <$kind as kube::Resource>::kind(&()).into_owned(),
                    stats: Some(stats),
                });
            }
        };
    }
    count!(GitRepository);
    count!(HelmRelease);
    count!(HelmRepository);
    count!(Kustomization);
    out
}

/// The sync line, as the operator reads it from the sync Kustomization (named after the
/// namespace unless the instance's `sync.name` says otherwise) and its source.
async fn sync(client: &Client) -> Option<FluxSyncStatus> {
    let instances: Api<FluxInstance> = Api::namespaced(client.clone(), FLUX_NAMESPACE);
    let name = instances
        .get_opt(INSTANCE_NAME)
        .await
        .ok()
        .flatten()
        .and_then(|i| i.spec.sync.and_then(|s| s.name))
        .unwrap_or_else(|| FLUX_NAMESPACE.to_owned());
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), FLUX_NAMESPACE);
    let ks = kustomizations.get_opt(&name).await.ok().flatten()?;
    let mut out = FluxSyncStatus {
        id: format!("kustomization/{name}"),
        path: ks.spec.path.clone(),
        ready: false,
        status: "not initialized".to_owned(),
        source: None,
    };
    if let Some(ready) = ks
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
    {
        out.ready = ready.status != "False";
        out.status = ready.message.clone();
    }
    if ks.spec.source_ref.kind == "GitRepository" {
        let sources: Api<GitRepository> = Api::namespaced(client.clone(), FLUX_NAMESPACE);
        if let Ok(Some(source)) = sources.get_opt(&ks.spec.source_ref.name).await {
            out.source = Some(source.spec.url.clone());
            if let Some(failed) = source.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == "Ready" && c.status == "False")
            }) {
                out.ready = false;
                out.status.push('\n');
                out.status.push_str(&failed.message);
            }
        }
    }
    if ks.spec.suspend == Some(true) {
        out.status = format!("Suspended {}", out.status);
    }
    Some(out)
}
