//! The test cluster behaves as kube-apiserver 1.32 does, stated at the HTTP level from the
//! Kubernetes API documentation, so these tests pass unchanged against a real API server
//! (`GITOPS_BOOTSTRAP_TEST_KUBECONFIG`): protobuf request bodies, defaulting of built-in kinds
//! (their empty status included), DELETE responses, server-side apply without a field manager
//! and its conflicts, the root CA ConfigMap of new namespaces, patch types of custom resources,
//! list pagination. Each test works in a namespace (and CRD group) of its own and removes it.

use http::Request;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message as _;
use serde_json::{Value, json};

use crate::support::cluster::{self, Cluster};

/// A raw request's outcome: the HTTP status (200 for any success: kube's `request_text` keeps
/// only the body of a 2xx) and the JSON body (a `Status` on failure).
pub(crate) struct Answer {
    pub code: u16,
    pub body: Value,
}

pub(crate) async fn send(
    cluster: &Cluster,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .header("Accept", "application/json")
        .body(body)
        .expect("a request");
    match cluster.client().request_text(request).await {
        Ok(text) => Answer {
            code: 200,
            body: serde_json::from_str(&text).expect("a JSON answer"),
        },
        Err(kube::Error::Api(status)) => Answer {
            code: status.code,
            body: serde_json::to_value(&*status).expect("a Status"),
        },
        Err(other) => panic!("{method} {path}: {other}"),
    }
}

pub(crate) async fn send_json(cluster: &Cluster, method: &str, path: &str, body: &Value) -> Answer {
    let content_type = match method {
        "PATCH" => "application/merge-patch+json",
        _ => "application/json",
    };
    send(
        cluster,
        method,
        path,
        content_type,
        body.to_string().into_bytes(),
    )
    .await
}

/// A namespace of the test's own, deleted when dropped is not possible in async code: call
/// [`Scratch::remove`] at the end.
pub(crate) struct Scratch {
    pub name: String,
}

impl Scratch {
    pub async fn create(cluster: &Cluster, prefix: &str) -> Scratch {
        let name = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let answer = send_json(
            cluster,
            "POST",
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .await;
        assert_eq!(answer.code, 200, "{}", answer.body);
        Scratch { name }
    }

    fn path(&self, rest: &str) -> String {
        format!("/api/v1/namespaces/{}/{rest}", self.name)
    }

    pub async fn remove(self, cluster: &Cluster) {
        let answer = send(
            cluster,
            "DELETE",
            &format!("/api/v1/namespaces/{}", self.name),
            "application/json",
            vec![],
        )
        .await;
        assert_eq!(answer.code, 200, "{}", answer.body);
    }
}

/// `k8s\0` + `runtime.Unknown` around `raw`, as kubectl's protobuf serializer writes it.
fn protobuf_body(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [b"k8s\0".as_slice(), &unknown.encode_to_vec()].concat()
}

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

#[tokio::test]
async fn protobuf_bodies_of_built_in_kinds_are_accepted_and_answered_in_json() {
    let cluster = cluster::start().await;
    let name = format!(
        "fidelity-pb-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let namespace = core::Namespace {
        metadata: Some(meta::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        }),
        spec: Some(Default::default()),
        status: Some(Default::default()),
    };
    let answer = send(
        &cluster,
        "POST",
        "/api/v1/namespaces",
        PROTOBUF,
        protobuf_body("v1", "Namespace", namespace.encode_to_vec()),
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.body["metadata"]["name"], name.as_str());
    // The name label every Namespace gets.
    assert_eq!(
        answer.body["metadata"]["labels"]["kubernetes.io/metadata.name"],
        name.as_str()
    );
    let scratch = Scratch { name };

    let config_map = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: Some("from-protobuf".into()),
            ..Default::default()
        }),
        data: [("key".to_string(), "value".to_string())].into(),
        binary_data: [("bytes".to_string(), vec![0, 1, 2])].into(),
        ..Default::default()
    };
    let answer = send(
        &cluster,
        "POST",
        &scratch.path("configmaps"),
        PROTOBUF,
        protobuf_body("v1", "ConfigMap", config_map.encode_to_vec()),
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.body["data"], json!({"key": "value"}));
    assert_eq!(answer.body["binaryData"], json!({"bytes": "AAEC"}));
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn built_in_kinds_get_the_servers_defaults() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "fidelity-defaults").await;
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}},
        },
    });
    let path = format!("/apis/apps/v1/namespaces/{}/deployments", scratch.name);
    let answer = send_json(&cluster, "POST", &path, &deployment).await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    // The Go status struct's zero value, as the server serializes it.
    assert_eq!(answer.body["status"], json!({}), "{}", answer.body);
    let spec = &answer.body["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(
        (
            &pod["restartPolicy"],
            &pod["dnsPolicy"],
            &pod["schedulerName"],
            &pod["terminationGracePeriodSeconds"]
        ),
        (
            &json!("Always"),
            &json!("ClusterFirst"),
            &json!("default-scheduler"),
            &json!(30)
        )
    );
    let container = &pod["containers"][0];
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(container["ports"][0]["protocol"], "TCP");

    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    });
    let answer = send_json(&cluster, "POST", &scratch.path("services"), &service).await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    let spec = &answer.body["spec"];
    assert_eq!(
        (&spec["type"], &spec["sessionAffinity"]),
        (&json!("ClusterIP"), &json!("None"))
    );
    let cluster_ip: std::net::Ipv4Addr = spec["clusterIP"]
        .as_str()
        .expect("an allocated clusterIP")
        .parse()
        .expect("an IPv4 address");
    assert_eq!(spec["clusterIPs"], json!([cluster_ip.to_string()]));
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    // An update that leaves the address out keeps it.
    let mut update = answer.body.clone();
    update["spec"].as_object_mut().unwrap().remove("clusterIP");
    update["spec"].as_object_mut().unwrap().remove("clusterIPs");
    let answer = send_json(&cluster, "PUT", &scratch.path("services/web"), &update).await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.body["spec"]["clusterIP"], cluster_ip.to_string());

    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}});
    let answer = send_json(&cluster, "POST", &scratch.path("secrets"), &secret).await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.body["type"], "Opaque");
    assert_eq!(answer.body["data"], json!({"k": "dg=="}));
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn delete_answers_a_success_status_or_the_object_its_finalizers_hold() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "fidelity-delete").await;
    for (name, finalizers) in [("gone", json!([])), ("held", json!(["example.com/hold"]))] {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "finalizers": finalizers}});
        let answer = send_json(&cluster, "POST", &scratch.path("configmaps"), &object).await;
        assert_eq!(answer.code, 200, "{}", answer.body);
    }
    let answer = send(
        &cluster,
        "DELETE",
        &scratch.path("configmaps/gone"),
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(answer.code, 200);
    assert_eq!(answer.body["kind"], "Status");
    assert_eq!(answer.body["status"], "Success");
    assert_eq!(answer.body["details"]["name"], "gone");
    assert_eq!(answer.body["details"]["kind"], "configmaps");

    let answer = send(
        &cluster,
        "DELETE",
        &scratch.path("configmaps/held"),
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(answer.code, 200);
    assert_eq!(answer.body["kind"], "ConfigMap");
    assert!(
        answer.body["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        answer.body
    );
    let release = json!({"metadata": {"finalizers": null}});
    let answer = send_json(
        &cluster,
        "PATCH",
        &scratch.path("configmaps/held"),
        &release,
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    let answer = send(
        &cluster,
        "GET",
        &scratch.path("configmaps/held"),
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(answer.code, 404, "{}", answer.body);
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn server_side_apply_without_a_field_manager_is_invalid() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "fidelity-ssa-manager").await;
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nameless"}})
        .to_string()
        .into_bytes();
    let answer = send(
        &cluster,
        "PATCH",
        &scratch.path("configmaps/nameless"),
        "application/apply-patch+yaml",
        body,
    )
    .await;
    assert_eq!(answer.code, 422, "{}", answer.body);
    assert_eq!(answer.body["reason"], "Invalid");
    assert_eq!(
        answer.body["message"],
        r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
    );
    let details = &answer.body["details"];
    assert_eq!(details["kind"], "PatchOptions");
    assert_eq!(details["causes"][0]["reason"], "FieldValueRequired");
    assert_eq!(details["causes"][0]["field"], "fieldManager");
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn every_new_namespace_gets_the_root_ca_config_map() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "fidelity-root-ca").await;
    // kube-controller-manager publishes it a moment after the namespace appears.
    let mut answer = None;
    for _ in 0..100 {
        let got = send(
            &cluster,
            "GET",
            &scratch.path("configmaps/kube-root-ca.crt"),
            "application/json",
            vec![],
        )
        .await;
        if got.code == 200 {
            answer = Some(got);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let answer = answer.expect("kube-root-ca.crt was never published");
    let ca = answer.body["data"]["ca.crt"].as_str().unwrap_or_default();
    assert!(
        ca.starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        answer.body
    );
    if let Some(server) = cluster.server() {
        assert_eq!(ca, server.ca_pem());
    }
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn server_side_apply_conflicts_name_the_field_and_its_manager() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "fidelity-ssa").await;
    let apply = |value: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"key": value}})
            .to_string()
            .into_bytes()
    };
    let path = |manager: &str| scratch.path(&format!("configmaps/shared?fieldManager={manager}"));
    let answer = send(
        &cluster,
        "PATCH",
        &path("first-owner"),
        "application/apply-patch+yaml",
        apply("one"),
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    let answer = send(
        &cluster,
        "PATCH",
        &path("second"),
        "application/apply-patch+yaml",
        apply("two"),
    )
    .await;
    assert_eq!(answer.code, 409, "{}", answer.body);
    assert_eq!(answer.body["reason"], "Conflict");
    let cause = &answer.body["details"]["causes"][0];
    assert_eq!(cause["reason"], "FieldManagerConflict", "{}", answer.body);
    assert_eq!(cause["field"], ".data.key");
    assert!(
        cause["message"]
            .as_str()
            .unwrap()
            .contains("\"first-owner\""),
        "{cause}"
    );
    scratch.remove(&cluster).await;
}

/// A namespaced CRD of a group of its own; returns (group, plural).
async fn create_crd(cluster: &Cluster) -> (String, String) {
    let spec = json!({"type": "object", "properties": {"size": {"type": "integer"}}});
    create_crd_with(cluster, &spec).await
}

/// The CRD of kind `Gadget` in a group of its own (`f<hex>.fidelity.example.com`) whose v1
/// `spec` has the schema `spec`.
pub(crate) fn gadget_crd(group: &str, spec: &Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": spec},
            }}}],
        },
    })
}

/// Creates [`gadget_crd`] in a new group and waits until it is served; returns (group, plural).
pub(crate) async fn create_crd_with(cluster: &Cluster, spec: &Value) -> (String, String) {
    let group = format!(
        "f{}.fidelity.example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let crd = gadget_crd(&group, spec);
    let answer = send_json(
        cluster,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    // A real server serves the new resource a moment after Established.
    for _ in 0..100 {
        let answer = send(
            cluster,
            "GET",
            &format!("/apis/{group}/v1/gadgets"),
            "application/json",
            vec![],
        )
        .await;
        if answer.code == 200 {
            return (group, "gadgets".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("gadgets.{group} never served");
}

pub(crate) async fn delete_crd(cluster: &Cluster, group: &str) {
    let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.{group}");
    let answer = send(cluster, "DELETE", &path, "application/json", vec![]).await;
    assert_eq!(answer.code, 200, "{}", answer.body);
}

#[tokio::test]
async fn strategic_merge_patch_of_a_custom_resource_is_unsupported_media_type() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "fidelity-smp").await;
    let (group, plural) = create_crd(&cluster).await;
    let path = format!("/apis/{group}/v1/namespaces/{}/{plural}", scratch.name);
    let gadget = json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": 1}});
    let answer = send_json(&cluster, "POST", &path, &gadget).await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    let patch = json!({"spec": {"size": 2}}).to_string().into_bytes();
    let answer = send(
        &cluster,
        "PATCH",
        &format!("{path}/g"),
        "application/strategic-merge-patch+json",
        patch.clone(),
    )
    .await;
    assert_eq!(answer.code, 415, "{}", answer.body);
    assert_eq!(answer.body["reason"], "UnsupportedMediaType");
    let answer = send(
        &cluster,
        "PATCH",
        &format!("{path}/g"),
        "application/merge-patch+json",
        patch,
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.body["spec"]["size"], 2);
    delete_crd(&cluster, &group).await;
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn lists_are_paginated_with_limit_and_continue() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "fidelity-pages").await;
    for index in 0..5 {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("page-{index}")}});
        let answer = send_json(&cluster, "POST", &scratch.path("configmaps"), &object).await;
        assert_eq!(answer.code, 200, "{}", answer.body);
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let path = scratch.path(&format!("configmaps?limit=2&continue={token}"));
        let answer = send(&cluster, "GET", &path, "application/json", vec![]).await;
        assert_eq!(answer.code, 200, "{}", answer.body);
        pages += 1;
        let items = answer.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        names.extend(
            items
                .iter()
                .map(|item| item["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match answer.body["metadata"]["continue"].as_str() {
            Some(next) if !next.is_empty() => {
                assert!(
                    answer.body["metadata"]["remainingItemCount"]
                        .as_u64()
                        .unwrap()
                        > 0
                );
                token = next.to_string();
            }
            _ => break,
        }
    }
    // kube-root-ca.crt lives in every namespace of a real cluster; the test's own come in order.
    names.retain(|name| name.starts_with("page-"));
    assert_eq!(names, ["page-0", "page-1", "page-2", "page-3", "page-4"]);
    assert!(pages >= 3);
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn a_continue_token_older_than_the_history_is_expired() {
    // Expiry needs a compaction this test can trigger: only the in-process server offers it.
    let cluster = cluster::start_in_process().await;
    let admin = cluster.admin().expect("in-process");
    let scratch = Scratch::create(&cluster, "fidelity-expired").await;
    for index in 0..3 {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{index}")}});
        send_json(&cluster, "POST", &scratch.path("configmaps"), &object).await;
    }
    let answer = send(
        &cluster,
        "GET",
        &scratch.path("configmaps?limit=1"),
        "application/json",
        vec![],
    )
    .await;
    let token = answer.body["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    // One more write, then a compaction up to it: the token's resourceVersion is history.
    let later = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}});
    send_json(&cluster, "POST", &scratch.path("configmaps"), &later).await;
    admin.compact_history();
    let path = scratch.path(&format!("configmaps?limit=1&continue={token}"));
    let answer = send(&cluster, "GET", &path, "application/json", vec![]).await;
    assert_eq!(answer.code, 410, "{}", answer.body);
    assert_eq!(answer.body["reason"], "Expired");
    scratch.remove(&cluster).await;
}
