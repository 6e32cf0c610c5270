//! The testkit's API server, through kube-rs (CRUD, watcher, server-side apply, status,
//! CRDs, finalizers, namespaces, garbage collection, 401/410, faults) and through the real
//! kubectl (get, apply client-side and --server-side with validation on, wait, get --watch,
//! delete).

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::json;
use testkit::apiserver::{ApiServer, FaultOptions};

use crate::support::cluster::{self, Cluster, WIDGET_CRD, kubectl, kubectl_ok, kubectl_with_input};

fn configmap(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
    )
    .unwrap()
}

fn api_status(error: kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls `check` every 50 ms for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A plain HTTPS client that trusts `server` (and sends no token by itself).
fn raw_client(server: &ApiServer) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(server.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// A JSON merge patch by the default field manager.
async fn merge_patch<K>(api: &Api<K>, name: &str, patch: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap()
}

/// `kubectl apply --server-side` of stdin, with `extra` flags (validation stays on: the
/// server's OpenAPI v3 documents let kubectl validate on the server).
fn apply_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [&["apply", "--server-side"][..], extra, &["-f", "-"]].concat()
}

async fn kubectl_apply(cluster: &Cluster, extra: &[&str], manifest: &str) -> String {
    kubectl_ok(cluster, &apply_args(extra), Some(manifest)).await
}

async fn create_namespace(cluster: &Cluster, name: &str) {
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

#[tokio::test]
async fn requests_without_the_token_get_a_401_status() {
    let cluster = cluster::start_in_process().await;
    let server = cluster.server().unwrap();
    let http = raw_client(server);
    let response = http
        .get(format!("{}/api/v1/namespaces", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let status: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("Unauthorized"))
    );
    let authorized = http
        .get(format!("{}/api/v1/namespaces", server.url()))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap();
    assert_eq!(authorized.status().as_u16(), 200);
}

#[tokio::test]
async fn kube_crud_reports_real_statuses() {
    let cluster = cluster::start().await;
    let cms: Api<ConfigMap> = cluster::api(&cluster, cluster.namespace());
    let mut labelled = configmap("crud-a", json!({"k": "v"}));
    labelled.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    let created = cms.create(&PostParams::default(), &labelled).await.unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    cms.create(&PostParams::default(), &configmap("crud-b", json!({})))
        .await
        .unwrap();
    assert_eq!(
        api_status(
            cms.create(&PostParams::default(), &labelled)
                .await
                .unwrap_err()
        ),
        409
    );

    let mut stale = created.clone();
    let mut fresh = cms.get("crud-a").await.unwrap();
    fresh.data = Some([("k".to_string(), "2".to_string())].into());
    cms.replace("crud-a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    stale.data = Some([("k".to_string(), "3".to_string())].into());
    assert_eq!(
        api_status(
            cms.replace("crud-a", &PostParams::default(), &stale)
                .await
                .unwrap_err()
        ),
        409
    );

    let selected = cms
        .list(&ListParams::default().labels("app in (web,db)"))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 1);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=crud-b"))
        .await
        .unwrap();
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("crud-b"));
    assert!(by_name.metadata.resource_version.is_some());
    let everywhere: Api<ConfigMap> = Api::all(cluster.client());
    assert!(
        everywhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
            >= 2
    );

    cms.delete("crud-a", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_status(cms.get("crud-a").await.unwrap_err()), 404);
}

#[tokio::test]
async fn the_watcher_sees_additions_changes_and_deletions() {
    let cluster = cluster::start().await;
    create_namespace(&cluster, "watched").await;
    let cms: Api<ConfigMap> = cluster::api(&cluster, "watched");
    let mut events = watcher(cms.clone(), watcher::Config::default()).boxed();
    // The initial list completes before changes are made.
    loop {
        if let watcher::Event::InitDone = events.try_next().await.unwrap().unwrap() {
            break;
        }
    }
    cms.create(&PostParams::default(), &configmap("w", json!({"a": "1"})))
        .await
        .unwrap();
    merge_patch(&cms, "w", json!({"data": {"a": "2"}})).await;
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match event {
            watcher::Event::Apply(cm) => seen.push(format!("apply {}", cm.data.unwrap()["a"])),
            watcher::Event::Delete(_) => seen.push("delete".to_string()),
            _ => {}
        }
    }
    assert_eq!(seen, ["apply 1", "apply 2", "delete"]);
}

#[tokio::test]
async fn server_side_apply_tracks_owners_conflicts_and_removals() {
    let cluster = cluster::start().await;
    let cms: Api<ConfigMap> = cluster::api(&cluster, cluster.namespace());
    let apply = |manager: &str, force: bool| {
        let mut params = PatchParams::apply(manager);
        params.force = force;
        params
    };
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1", "b": "2"}});
    let created = cms
        .patch("ssa", &apply("alice", false), &Patch::Apply(&first))
        .await
        .unwrap();
    let managed = created.metadata.managed_fields.unwrap();
    assert_eq!(
        (
            managed[0].manager.as_deref(),
            managed[0].operation.as_deref()
        ),
        (Some("alice"), Some("Apply"))
    );
    assert!(managed[0].fields_v1.as_ref().unwrap().0["f:data"]["f:a"].is_object());

    let rival = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "9"}});
    let conflict = cms
        .patch("ssa", &apply("bob", false), &Patch::Apply(&rival))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = conflict else {
        panic!("expected a conflict")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains("alice") && status.message.contains(".data.a"),
        "{}",
        status.message
    );

    let forced = cms
        .patch("ssa", &apply("bob", true), &Patch::Apply(&rival))
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "9");

    // alice stops applying b (she alone owns it): the server removes it.
    let shrunk = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"c": "3"}});
    let after = cms
        .patch("ssa", &apply("alice", false), &Patch::Apply(&shrunk))
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(
        (
            data.get("a").map(String::as_str),
            data.get("b"),
            data.get("c").map(String::as_str)
        ),
        (Some("9"), None, Some("3"))
    );
    assert_eq!(
        api_status(
            cms.patch("ssa", &PatchParams::default(), &Patch::Apply(&shrunk))
                .await
                .unwrap_err()
        ),
        422,
        "an apply without fieldManager is an invalid PatchOptions"
    );
}

#[tokio::test]
async fn status_is_a_subresource_and_generation_counts_spec_changes() {
    let cluster = cluster::start().await;
    let deployments: Api<Deployment> = cluster::api(&cluster, cluster.namespace());
    let mut deployment = web_deployment(1);
    deployment["status"] = json!({"replicas": 5});
    let created = deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let empty = Some(Default::default());
    assert_eq!(created.status, empty, "status is emptied on create");

    let status = json!({"status": {"readyReplicas": 1, "replicas": 1}});
    let main = merge_patch(&deployments, "web", status.clone()).await;
    assert_eq!(main.status, empty, "the main endpoint ignores status");
    let patched = deployments
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().ready_replicas, Some(1));
    assert_eq!(patched.metadata.generation, Some(1));

    let labels = json!({"metadata": {"labels": {"x": "y"}}});
    let relabelled = merge_patch(&deployments, "web", labels).await;
    assert_eq!(relabelled.metadata.generation, Some(1));
    let scaled = merge_patch(&deployments, "web", json!({"spec": {"replicas": 3}})).await;
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(
        scaled.status.unwrap().ready_replicas,
        Some(1),
        "spec writes keep status"
    );
}

#[tokio::test]
async fn a_compacted_resource_version_is_gone() {
    let cluster = cluster::start_in_process().await;
    let cms: Api<ConfigMap> = cluster::api(&cluster, cluster.namespace());
    let created = cms
        .create(&PostParams::default(), &configmap("old", json!({})))
        .await
        .unwrap();
    merge_patch(&cms, "old", json!({"data": {"x": "1"}})).await;
    cluster.admin().unwrap().compact_history();
    let rv = created.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(error)) => {
            assert_eq!((error.code, error.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn finalizers_keep_objects_and_namespaces_terminate() {
    let cluster = cluster::start().await;
    create_namespace(&cluster, "doomed").await;
    let cms: Api<ConfigMap> = cluster::api(&cluster, "doomed");
    let mut held = configmap("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let kept = cms.get("held").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_some());

    let namespaces: Api<Namespace> = Api::all(cluster.client());
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get("doomed").await.unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert_eq!(
        api_status(
            cms.create(&PostParams::default(), &configmap("late", json!({})))
                .await
                .unwrap_err()
        ),
        403
    );

    merge_patch(&cms, "held", json!({"metadata": {"finalizers": null}})).await;
    eventually("the namespace to disappear", || async {
        namespaces.get_opt("doomed").await.unwrap().is_none()
    })
    .await;
    assert!(cms.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn dependents_are_garbage_collected_with_their_owner() {
    let cluster = cluster::start().await;
    let cms: Api<ConfigMap> = cluster::api(&cluster, cluster.namespace());
    let secrets: Api<Secret> = cluster::api(&cluster, cluster.namespace());
    let owner = cms
        .create(&PostParams::default(), &configmap("owner", json!({})))
        .await
        .unwrap();
    let dependent = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "dependent", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.unwrap()
        }]}
    });
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(dependent).unwrap(),
        )
        .await
        .unwrap();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    eventually("the dependent to be collected", || async {
        secrets.get_opt("dependent").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn crds_register_resources_and_take_them_along_when_deleted() {
    let cluster = cluster::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(WIDGET_CRD).unwrap();
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    let established = kube::runtime::wait::await_condition(
        crds.clone(),
        "widgets.example.com",
        kube::runtime::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(10), established)
        .await
        .unwrap()
        .unwrap();

    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let (resource, _) = kube::discovery::pinned_kind(&cluster.client(), &gvk)
        .await
        .unwrap();
    assert_eq!(resource.plural, "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(
        cluster.client(),
        cluster.namespace(),
        &ApiResource::from_gvk(&gvk),
    );
    let widget: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}})).unwrap();
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the CRD to go", || async {
        crds.get_opt("widgets.example.com").await.unwrap().is_none()
    })
    .await;
    assert_eq!(api_status(widgets.get("w1").await.unwrap_err()), 404);
}

#[tokio::test]
async fn injected_faults_fail_requests_and_counters_count_them() {
    let cluster = cluster::start_in_process().await;
    let admin = cluster.admin().unwrap();
    let server = cluster.server().unwrap();
    // A raw client, because kube-rs retries 429s by itself.
    let http = raw_client(server);
    let get = || {
        http.get(format!(
            "{}/api/v1/namespaces/default/configmaps/x",
            server.url()
        ))
        .bearer_auth(server.token())
        .send()
    };
    let cms: Api<ConfigMap> = cluster::api(&cluster, cluster.namespace());
    cms.list(&ListParams::default()).await.unwrap();
    admin.set_faults(FaultOptions {
        error_rate: 1.0,
        ..FaultOptions::default()
    });
    assert_eq!(get().await.unwrap().status().as_u16(), 500);
    admin.set_faults(FaultOptions {
        throttle_rate: 1.0,
        ..FaultOptions::default()
    });
    let throttled = get().await.unwrap();
    assert_eq!(throttled.status().as_u16(), 429);
    assert_eq!(throttled.headers()["retry-after"], "1");
    admin.set_faults(FaultOptions::default());
    assert_eq!(get().await.unwrap().status().as_u16(), 404);
    assert_eq!(admin.request_count("list", "configmaps"), 1);
    assert_eq!(admin.request_count("get", "configmaps"), 3);
    admin.reset_counters();
    assert!(admin.request_counts().is_empty());
}

const KUBECTL_CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: by-kubectl\ndata:\n  key: one\n";

#[tokio::test]
async fn kubectl_gets_applies_and_resolves_conflicts() {
    let cluster = cluster::start().await;
    let namespaces = kubectl_ok(&cluster, &["get", "namespaces"], None).await;
    assert!(
        namespaces.contains("default") && namespaces.contains("kube-system"),
        "{namespaces}"
    );

    let applied = kubectl_apply(&cluster, &["--field-manager", "first"], KUBECTL_CM).await;
    assert!(
        applied.contains("configmap/by-kubectl serverside-applied"),
        "{applied}"
    );
    let changed = KUBECTL_CM.replace("one", "two");
    let conflict = kubectl_with_input(
        &cluster,
        &apply_args(&["--field-manager", "second"]),
        Some(&changed),
        Duration::from_secs(30),
    )
    .await;
    assert!(!conflict.status.success());
    let stderr = String::from_utf8_lossy(&conflict.stderr);
    assert!(
        stderr.contains("conflict") && stderr.contains("first"),
        "{stderr}"
    );
    kubectl_apply(
        &cluster,
        &["--field-manager", "second", "--force-conflicts"],
        &changed,
    )
    .await;
    let value = kubectl_ok(
        &cluster,
        &[
            "get",
            "configmap",
            "by-kubectl",
            "-o",
            "jsonpath={.data.key}",
        ],
        None,
    )
    .await;
    assert_eq!(value, "two");
}

#[tokio::test]
async fn kubectl_applies_client_and_server_side_with_validation_on() {
    let cluster = cluster::start().await;
    let configmap = KUBECTL_CM.replace("by-kubectl", "validated");
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: validated\nspec:\n  size: one\n";
    kubectl_ok(&cluster, &["apply", "-f", "-"], Some(WIDGET_CRD)).await;
    for (manifest, name) in [
        (configmap.as_str(), "configmap/validated"),
        (widget, "widget.example.com/validated"),
    ] {
        let created = kubectl_ok(&cluster, &["apply", "-f", "-"], Some(manifest)).await;
        assert!(created.contains(&format!("{name} created")), "{created}");
        let changed = manifest.replace("one", "two");
        let configured = kubectl_ok(&cluster, &["apply", "-f", "-"], Some(&changed)).await;
        assert!(
            configured.contains(&format!("{name} configured")),
            "{configured}"
        );
        let applied = kubectl_apply(&cluster, &["--field-manager", "ssa"], &changed).await;
        assert!(
            applied.contains(&format!("{name} serverside-applied")),
            "{applied}"
        );
    }
    let size = kubectl_ok(
        &cluster,
        &["get", "wd", "validated", "-o", "jsonpath={.spec.size}"],
        None,
    )
    .await;
    assert_eq!(size, "two");
}

#[tokio::test]
async fn kubectl_waits_for_an_established_crd_and_watches() {
    let cluster = cluster::start().await;
    kubectl_apply(&cluster, &[], WIDGET_CRD).await;
    kubectl_ok(
        &cluster,
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
        None,
    )
    .await;
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec: {}\n";
    kubectl_apply(&cluster, &[], widget).await;
    let listed = kubectl_ok(&cluster, &["get", "wd", "-o", "name"], None).await;
    assert_eq!(listed.trim(), "widget.example.com/w");

    let watch = kubectl(
        &cluster,
        &[
            "get",
            "configmaps",
            "--watch",
            "--request-timeout=3s",
            "-o",
            "name",
        ],
    );
    let (watched, _) = tokio::join!(watch, async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let cms: Api<ConfigMap> = cluster::api(&cluster, cluster.namespace());
        cms.create(
            &PostParams::default(),
            &configmap("seen-by-watch", json!({})),
        )
        .await
        .unwrap();
    });
    let stdout = String::from_utf8_lossy(&watched.stdout);
    assert!(
        stdout.contains("configmap/seen-by-watch"),
        "{stdout}{}",
        String::from_utf8_lossy(&watched.stderr)
    );
}

#[tokio::test]
async fn kubectl_delete_waits_on_finalizers_and_namespaces() {
    let cluster = cluster::start().await;
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kd\n";
    kubectl_apply(&cluster, &[], namespace).await;
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: kd\n  finalizers: [example.com/hold]\n";
    kubectl_apply(&cluster, &[], held).await;
    kubectl_ok(
        &cluster,
        &["delete", "configmap", "held", "-n", "kd", "--wait=false"],
        None,
    )
    .await;
    let still = kubectl_ok(
        &cluster,
        &[
            "get",
            "configmap",
            "held",
            "-n",
            "kd",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ],
        None,
    )
    .await;
    assert!(!still.is_empty());
    kubectl_ok(
        &cluster,
        &["delete", "namespace", "kd", "--wait=false"],
        None,
    )
    .await;
    let phase = kubectl_ok(
        &cluster,
        &["get", "namespace", "kd", "-o", "jsonpath={.status.phase}"],
        None,
    )
    .await;
    assert_eq!(phase, "Terminating");
    kubectl_ok(
        &cluster,
        &[
            "patch",
            "configmap",
            "held",
            "-n",
            "kd",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
        None,
    )
    .await;
    kubectl_ok(
        &cluster,
        &["wait", "--for=delete", "namespace/kd", "--timeout=10s"],
        None,
    )
    .await;
}

/// The events a watch from `resource_version` delivers within a second (bookmarks aside).
async fn events_since<K>(api: &Api<K>, resource_version: &str) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let stream = api
        .watch(&WatchParams::default().timeout(1), resource_version)
        .await
        .unwrap();
    stream
        .try_filter_map(|event| async move {
            Ok(match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                    Some(format!("{o:?}"))
                }
                WatchEvent::Bookmark(_) | WatchEvent::Error(_) => None,
            })
        })
        .try_collect()
        .await
        .unwrap()
}

fn web_deployment(replicas: u32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    })
}

/// Server-side applies `deployment` as the manager `owner`.
async fn apply_as_owner(
    deployments: &Api<Deployment>,
    deployment: serde_json::Value,
) -> Deployment {
    deployments
        .patch(
            "web",
            &PatchParams::apply("owner"),
            &Patch::Apply(deployment),
        )
        .await
        .unwrap()
}

/// Merges `status` into the status of `web` as the manager `controller`.
async fn report_status(deployments: &Api<Deployment>, status: &serde_json::Value) -> Deployment {
    let controller = PatchParams {
        field_manager: Some("controller".into()),
        ..PatchParams::default()
    };
    deployments
        .patch_status("web", &controller, &Patch::Merge(status))
        .await
        .unwrap()
}

/// Waits past the one-second resolution of managed-field times, so a rewrite would show.
async fn let_the_clock_tick() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

#[tokio::test]
async fn a_no_op_apply_writes_nothing_even_after_a_status_write() {
    let cluster = cluster::start().await;
    create_namespace(&cluster, "noop-apply").await;
    let deployments: Api<Deployment> = cluster::api(&cluster, "noop-apply");
    let created = apply_as_owner(&deployments, web_deployment(1)).await;
    let_the_clock_tick().await;
    let again = apply_as_owner(&deployments, web_deployment(1)).await;
    assert_eq!(
        again.metadata, created.metadata,
        "a no-op apply keeps metadata"
    );
    let rv = created.metadata.resource_version.clone().unwrap();
    assert_eq!(events_since(&deployments, &rv).await, Vec::<String>::new());

    let status = json!({"status": {"replicas": 1, "readyReplicas": 1}});
    let reported = report_status(&deployments, &status).await;
    let_the_clock_tick().await;
    let reapplied = apply_as_owner(&deployments, web_deployment(1)).await;
    assert_eq!(reapplied.metadata, reported.metadata);
    let rv = reported.metadata.resource_version.clone().unwrap();
    assert_eq!(events_since(&deployments, &rv).await, Vec::<String>::new());
    let restated = report_status(&deployments, &status).await;
    assert_eq!(restated.metadata, reported.metadata, "a no-op status write");

    let scaled = apply_as_owner(&deployments, web_deployment(3)).await;
    assert_ne!(
        scaled.metadata.resource_version,
        reported.metadata.resource_version
    );
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(scaled.status.unwrap().ready_replicas, Some(1));
    assert_eq!(events_since(&deployments, &rv).await.len(), 1);
    let mut labelled = web_deployment(3);
    labelled["metadata"]["labels"] = json!({"tier": "front"});
    let relabelled = apply_as_owner(&deployments, labelled).await;
    assert_ne!(
        relabelled.metadata.resource_version,
        scaled.metadata.resource_version
    );
    assert_eq!(relabelled.metadata.generation, Some(2), "metadata only");
}

#[tokio::test]
async fn no_op_updates_and_merge_patches_write_nothing() {
    let cluster = cluster::start().await;
    create_namespace(&cluster, "noop-update").await;
    let cms: Api<ConfigMap> = cluster::api(&cluster, "noop-update");
    let created = cms
        .create(
            &PostParams::default(),
            &configmap("same", json!({"a": "1"})),
        )
        .await
        .unwrap();
    let_the_clock_tick().await;
    let patched = merge_patch(&cms, "same", json!({"data": {"a": "1"}})).await;
    assert_eq!(patched.metadata, created.metadata);
    let replaced = cms
        .replace("same", &PostParams::default(), &created)
        .await
        .unwrap();
    assert_eq!(replaced.metadata, created.metadata);
    let rv = created.metadata.resource_version.clone().unwrap();
    assert_eq!(events_since(&cms, &rv).await, Vec::<String>::new());

    let changed = merge_patch(&cms, "same", json!({"data": {"a": "2"}})).await;
    assert_ne!(
        changed.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(events_since(&cms, &rv).await.len(), 1);
}

#[tokio::test]
async fn secret_string_data_is_stored_as_data() {
    let cluster = cluster::start().await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), cluster.namespace());
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "plain"},
        "data": {"kept": "a2VwdA==", "token": "b2xk"},
        "stringData": {"token": "new"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let stored = secrets.get("plain").await.unwrap();
    assert!(stored.string_data.is_none(), "stringData is write-only");
    let data = stored.data.unwrap();
    assert_eq!(data["kept"].0, b"kept");
    assert_eq!(data["token"].0, b"new", "stringData wins over data");
}
