//! The baseline: a waiter that lists the Flux objects every 2 s until they are all Ready, as
//! `flux bootstrap` and terraform-provider-flux wait (a fixed-interval poll of kstatus).

use std::time::{Duration, SystemTime};

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;
use tokio::sync::oneshot;

pub const INTERVAL: Duration = Duration::from_secs(2);

/// The kinds `flux bootstrap` checks: the sources, Kustomizations and HelmReleases.
const KINDS: [(&str, &str, &str); 4] = [
    ("source.toolkit.fluxcd.io", "v1", "GitRepository"),
    ("source.toolkit.fluxcd.io", "v1", "HelmRepository"),
    ("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"),
    ("helm.toolkit.fluxcd.io", "v2", "HelmRelease"),
];

/// When the poller first saw everything Ready.
pub struct Polled {
    pub ready_at: SystemTime,
}

/// Polls until the `expected` apps of `namespace` and everything in `flux-system` are Ready;
/// `waiting` is told after the first poll.
pub async fn wait_all_ready(
    client: Client,
    namespace: String,
    expected: usize,
    waiting: oneshot::Sender<()>,
) -> anyhow::Result<Polled> {
    let apis: Vec<Api<DynamicObject>> = KINDS
        .iter()
        .map(|(group, version, kind)| {
            let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
            Api::all_with(client.clone(), &resource)
        })
        .collect();
    let mut ticks = tokio::time::interval(INTERVAL);
    let mut waiting = Some(waiting);
    loop {
        ticks.tick().await;
        let mut apps_ready = 0;
        let mut all_ready = true;
        for (api, (_, _, kind)) in apis.iter().zip(KINDS) {
            for object in api.list(&ListParams::default()).await?.items {
                let object_namespace = object.metadata.namespace.as_deref().unwrap_or_default();
                let in_tree = object_namespace == namespace;
                if !in_tree && object_namespace != "flux-system" {
                    continue;
                }
                let ready = kstatus_ready(&object);
                all_ready &= ready;
                let app = in_tree && matches!(kind, "Kustomization" | "HelmRelease");
                apps_ready += usize::from(app && ready);
            }
        }
        if let Some(waiting) = waiting.take() {
            let _ = waiting.send(());
        }
        if all_ready && apps_ready == expected {
            return Ok(Polled {
                ready_at: SystemTime::now(),
            });
        }
    }
}

/// kstatus's "Current" for a Flux object: Ready=True at the object's generation.
fn kstatus_ready(object: &DynamicObject) -> bool {
    let status = &object.data["status"];
    let observed = status["observedGeneration"].as_i64();
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .is_some_and(|c: &Value| c["status"] == "True");
    ready && observed == object.metadata.generation
}
