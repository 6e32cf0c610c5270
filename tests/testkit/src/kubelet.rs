//! Stand-ins for the kubelet and a cloud's load-balancer controller, against any API server:
//! Deployments become Available after a delay (or fail on request), Services of type
//! LoadBalancer get an address from TEST-NET-1 (192.0.2.0/24, never contacted) and a cleanup
//! finalizer that is released only some time after deletion, as on a real cloud.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Annotation that makes a Deployment fail with its value as the message.
pub const FAIL_ANNOTATION: &str = "testkit.gitops-bootstrap.dev/fail";
/// The finalizer cloud controllers put on LoadBalancer Services.
pub const LOAD_BALANCER_FINALIZER: &str = "service.kubernetes.io/load-balancer-cleanup";
const MANAGER: &str = "testkit-kubelet";

#[derive(Clone, Debug)]
pub struct KubeletOptions {
    pub deployment_ready_delay: Duration,
    pub load_balancer_release_delay: Duration,
}

impl Default for KubeletOptions {
    fn default() -> Self {
        KubeletOptions {
            deployment_ready_delay: Duration::from_millis(300),
            load_balancer_release_delay: Duration::from_secs(1),
        }
    }
}

/// The running stand-ins; dropping this stops them.
pub struct Kubelet {
    tasks: Vec<JoinHandle<()>>,
}

struct Context {
    client: Client,
    opts: KubeletOptions,
    /// When something was first seen (a Deployment generation, a Service deletion), by uid.
    first_seen: Mutex<HashMap<String, Instant>>,
}

impl Context {
    /// Time left until `delay` has passed since `key` was first seen.
    fn remaining(&self, key: String, delay: Duration) -> Duration {
        let mut seen = self.first_seen.lock().unwrap_or_else(|p| p.into_inner());
        let since = *seen.entry(key).or_insert_with(Instant::now);
        delay.saturating_sub(since.elapsed())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct KubeletError(#[from] kube::Error);

impl Kubelet {
    pub fn start(client: Client, opts: KubeletOptions) -> Kubelet {
        let ctx = Arc::new(Context {
            client: client.clone(),
            opts,
            first_seen: Mutex::default(),
        });
        let deployments = Controller::new(
            Api::<Deployment>::all(client.clone()),
            watcher::Config::default(),
        )
        .run(reconcile_deployment, retry, ctx.clone())
        .for_each(|_| futures::future::ready(()));
        let services = Controller::new(Api::<Service>::all(client), watcher::Config::default())
            .run(reconcile_service, retry, ctx)
            .for_each(|_| futures::future::ready(()));
        Kubelet {
            tasks: vec![tokio::spawn(deployments), tokio::spawn(services)],
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn retry<K>(_: Arc<K>, error: &KubeletError, _: Arc<Context>) -> Action {
    tracing::debug!(%error, "kubelet stand-in retries");
    Action::requeue(Duration::from_millis(200))
}

fn uid<K: Resource>(object: &K) -> String {
    object
        .meta()
        .uid
        .clone()
        .unwrap_or_else(|| object.meta().name.clone().unwrap_or_default())
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, current: &Value) -> Value {
    let previous = current["conditions"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["type"] == type_));
    let now = jiff::Timestamp::now().to_string();
    let transition = previous
        .filter(|c| c["status"] == status)
        .map_or(json!(now), |c| c["lastTransitionTime"].clone());
    json!({ "type": type_, "status": status, "reason": reason, "message": message, "lastUpdateTime": now, "lastTransitionTime": transition })
}

/// The status a Deployment should have now, or `None` while its pods are "starting".
fn desired_deployment_status(deployment: &Deployment, current: &Value, ready: bool) -> Value {
    let replicas = deployment.spec.replicas.unwrap_or(1);
    let name = deployment.name_any();
    let failure = deployment.annotations().get(FAIL_ANNOTATION).cloned();
    let available = failure.is_none() && ready;
    let ready_replicas = if available { replicas } else { 0 };
    let (available_status, available_reason, available_message) = if available {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let (progressing_status, progressing_reason, progressing_message) = match failure {
        Some(message) => ("False", "ProgressDeadlineExceeded", message),
        None if ready => (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{name}\" has successfully progressed."),
        ),
        None => (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{name}\" is progressing."),
        ),
    };
    let conditions = vec![
        condition(
            "Available",
            available_status,
            available_reason,
            available_message,
            current,
        ),
        condition(
            "Progressing",
            progressing_status,
            progressing_reason,
            &progressing_message,
            current,
        ),
    ];
    json!({
        "observedGeneration": deployment.metadata.generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready_replicas,
        "availableReplicas": ready_replicas,
        "unavailableReplicas": replicas - ready_replicas,
        "conditions": conditions,
    })
}

/// Equal apart from timestamps: no write needed.
fn same_status(current: &Value, desired: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(list) = v["conditions"].as_array_mut() {
            for c in list.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("lastUpdateTime");
                c.remove("lastTransitionTime");
            }
        }
        v
    };
    let current = strip(current);
    let desired = strip(desired);
    desired
        .as_object()
        .is_some_and(|d| d.iter().all(|(k, v)| &current[k] == v))
}

async fn reconcile_deployment(
    deployment: Arc<Deployment>,
    ctx: Arc<Context>,
) -> Result<Action, KubeletError> {
    if deployment.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let key = format!("{}/{:?}", uid(&*deployment), deployment.metadata.generation);
    let left = ctx.remaining(key, ctx.opts.deployment_ready_delay);
    let current = serde_json::to_value(&deployment.status).unwrap_or_default();
    let desired = desired_deployment_status(&deployment, &current, left.is_zero());
    if !same_status(&current, &desired) {
        let api: Api<Deployment> = Api::namespaced(
            ctx.client.clone(),
            &deployment.namespace().unwrap_or_default(),
        );
        let params = PatchParams {
            field_manager: Some(MANAGER.to_owned()),
            ..Default::default()
        };
        api.patch_status(
            &deployment.name_any(),
            &params,
            &Patch::Merge(json!({ "status": desired })),
        )
        .await?;
    }
    Ok(if left.is_zero() {
        Action::await_change()
    } else {
        Action::requeue(left)
    })
}

/// A stable address in 192.0.2.0/24 (TEST-NET-1, documentation only: nothing listens there).
pub fn load_balancer_address(uid: &str) -> String {
    let hash = uid.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    format!("192.0.2.{}", 1 + hash % 254)
}

async fn reconcile_service(
    service: Arc<Service>,
    ctx: Arc<Context>,
) -> Result<Action, KubeletError> {
    let api: Api<Service> =
        Api::namespaced(ctx.client.clone(), &service.namespace().unwrap_or_default());
    let finalizers = service.finalizers();
    let has_finalizer = finalizers.iter().any(|f| f == LOAD_BALANCER_FINALIZER);
    let is_load_balancer =
        service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    let deleting = service.metadata.deletion_timestamp.is_some();
    let set_finalizer = |present: bool| {
        let mut list: Vec<String> = finalizers
            .iter()
            .filter(|f| *f != LOAD_BALANCER_FINALIZER)
            .cloned()
            .collect();
        if present {
            list.push(LOAD_BALANCER_FINALIZER.to_owned());
        }
        json!({ "metadata": { "finalizers": list, "resourceVersion": service.metadata.resource_version } })
    };
    if deleting || !is_load_balancer {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        // The cloud takes a while to tear the load balancer down.
        let left = if deleting {
            ctx.remaining(
                format!("{}/deleted", uid(&*service)),
                ctx.opts.load_balancer_release_delay,
            )
        } else {
            Duration::ZERO
        };
        if !left.is_zero() {
            return Ok(Action::requeue(left));
        }
        api.patch(
            &service.name_any(),
            &PatchParams::default(),
            &Patch::Merge(set_finalizer(false)),
        )
        .await?;
        return Ok(Action::await_change());
    }
    if !has_finalizer {
        api.patch(
            &service.name_any(),
            &PatchParams::default(),
            &Patch::Merge(set_finalizer(true)),
        )
        .await?;
        return Ok(Action::await_change());
    }
    let address = load_balancer_address(&uid(&*service));
    let current = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .and_then(|i| i.first())
        .and_then(|i| i.ip.clone());
    if current.as_deref() != Some(address.as_str()) {
        let params = PatchParams {
            field_manager: Some(MANAGER.to_owned()),
            ..Default::default()
        };
        let status = json!({ "status": { "loadBalancer": { "ingress": [{ "ip": address, "ipMode": "VIP" }] } } });
        api.patch_status(&service.name_any(), &params, &Patch::Merge(status))
            .await?;
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_the_documentation_range() {
        for uid in ["a", "b", "0d6f-11", ""] {
            let address = load_balancer_address(uid);
            assert!(address.starts_with("192.0.2."), "{address}");
            let last: u32 = address.rsplit('.').next().unwrap().parse().unwrap();
            assert!((1..=254).contains(&last));
        }
        assert_eq!(load_balancer_address("x"), load_balancer_address("x"));
    }

    #[test]
    fn deployment_status_follows_readiness_and_failure() {
        let mut deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 3},
            "spec": {"replicas": 2, "selector": {}, "template": {}}
        }))
        .unwrap();
        let waiting = desired_deployment_status(&deployment, &Value::Null, false);
        assert_eq!(waiting["readyReplicas"], 0);
        let ready = desired_deployment_status(&deployment, &Value::Null, true);
        assert_eq!(ready["readyReplicas"], 2);
        assert_eq!(ready["observedGeneration"], 3);
        assert_eq!(ready["conditions"][0]["status"], "True");
        assert!(same_status(
            &ready,
            &desired_deployment_status(&deployment, &ready, true)
        ));
        assert!(!same_status(&waiting, &ready));
        deployment.metadata.annotations =
            Some([(FAIL_ANNOTATION.to_owned(), "image pull failed".to_owned())].into());
        let failed = desired_deployment_status(&deployment, &ready, true);
        assert_eq!(
            failed["conditions"][1]["reason"],
            "ProgressDeadlineExceeded"
        );
        assert_eq!(failed["conditions"][1]["message"], "image pull failed");
    }
}
