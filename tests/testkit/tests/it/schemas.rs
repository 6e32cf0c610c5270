//! Custom resources are admitted as apiextensions-apiserver admits them: validated against
//! their CRD version's `openAPIV3Schema` (422 `Invalid` with field causes), unknown fields
//! pruned, schema defaults filled in on writes and reads, and `fieldValidation` deciding
//! between an error (`Strict`, kubectl's default: 400 on create and update, 422 on a patch,
//! 500 on a server-side apply), `Warning` headers (`Warn`, the server's default) and silence
//! (`Ignore`). Written from the Kubernetes documentation so the tests pass
//! unchanged against a real API server; each works in its own namespace and CRD group.

use http::Request;
use serde_json::{Value, json};

use crate::fidelity::{Scratch, create_crd_with, delete_crd, gadget_crd, send, send_json};
use crate::support::cluster::{self, Cluster};

fn gadget_spec_schema() -> Value {
    json!({
        "type": "object",
        "required": ["size"],
        "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
            "interval": {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"},
            "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        },
    })
}

fn gadget(group: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget", "metadata": {"name": name}, "spec": spec})
}

/// The `Warning` headers of a create of `body` (sent as is) under `fieldValidation=Warn`.
async fn warnings_of_create(cluster: &Cluster, path: &str, body: &Value) -> Vec<String> {
    let request = Request::builder()
        .method("POST")
        .uri(format!("{path}?fieldValidation=Warn"))
        .header("Content-Type", "application/json")
        .body(kube::client::Body::from(body.to_string().into_bytes()))
        .expect("a request");
    let response = cluster.client().send(request).await.expect("an answer");
    assert_eq!(response.status(), 201);
    response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().expect("an ASCII header").to_string())
        .collect()
}

#[tokio::test]
async fn invalid_custom_resources_are_rejected_with_the_fields_named() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "schema-invalid").await;
    let (group, plural) = create_crd_with(&cluster, &gadget_spec_schema()).await;
    let path = format!("/apis/{group}/v1/namespaces/{}/{plural}", scratch.name);
    let cases = [
        (
            json!({"size": "big"}),
            "FieldValueTypeInvalid",
            r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#,
        ),
        (json!({}), "FieldValueRequired", "spec.size: Required value"),
        (
            json!({"size": 1, "color": "green"}),
            "FieldValueNotSupported",
            r#"spec.color: Unsupported value: "green": supported values: "red", "blue""#,
        ),
        (
            json!({"size": 11}),
            "FieldValueInvalid",
            "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        ),
        (
            json!({"size": 1, "interval": "5 minutes"}),
            "FieldValueInvalid",
            r#"spec.interval: Invalid value: "5 minutes": spec.interval in body should match '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'"#,
        ),
    ];
    for (spec, reason, line) in cases {
        let answer = send_json(&cluster, "POST", &path, &gadget(&group, "g", spec)).await;
        assert_eq!(answer.code, 422, "{}", answer.body);
        assert_eq!(answer.body["reason"], "Invalid");
        assert_eq!(
            answer.body["message"],
            format!("Gadget.{group} \"g\" is invalid: {line}")
        );
        let cause = &answer.body["details"]["causes"][0];
        assert_eq!(cause["reason"], reason, "{}", answer.body);
        let (field, message) = line.split_once(": ").expect("field: message");
        assert_eq!(
            (cause["field"].as_str(), cause["message"].as_str()),
            (Some(field), Some(message))
        );
    }
    // An update is validated too.
    let answer = send_json(
        &cluster,
        "POST",
        &path,
        &gadget(&group, "g", json!({"size": 1})),
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    let patch = json!({"spec": {"size": 0}});
    let answer = send_json(&cluster, "PATCH", &format!("{path}/g"), &patch).await;
    assert_eq!(answer.code, 422, "{}", answer.body);
    assert_eq!(answer.body["details"]["causes"][0]["field"], "spec.size");
    delete_crd(&cluster, &group).await;
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_schema_defaults_filled_in() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "schema-prune").await;
    let (group, plural) = create_crd_with(&cluster, &gadget_spec_schema()).await;
    let path = format!("/apis/{group}/v1/namespaces/{}/{plural}", scratch.name);
    let spec = json!({"size": 2, "colour": "blue", "values": {"free": {"form": true}}});
    let answer = send_json(
        &cluster,
        "POST",
        &format!("{path}?fieldValidation=Ignore"),
        &gadget(&group, "g", spec),
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(
        answer.body["spec"],
        json!({"size": 2, "color": "red", "values": {"free": {"form": true}}})
    );
    // A default added to the schema later shows on objects already stored, as they are read.
    let mut schema = gadget_spec_schema();
    schema["properties"]["mode"] = json!({"type": "string", "default": "auto"});
    let crd_path =
        format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.{group}");
    let live = send(&cluster, "GET", &crd_path, "application/json", vec![]).await;
    let mut crd = gadget_crd(&group, &schema);
    crd["metadata"]["resourceVersion"] = live.body["metadata"]["resourceVersion"].clone();
    let answer = send_json(&cluster, "PUT", &crd_path, &crd).await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    let mut mode = Value::Null;
    for _ in 0..50 {
        let answer = send(
            &cluster,
            "GET",
            &format!("{path}/g"),
            "application/json",
            vec![],
        )
        .await;
        mode = answer.body["spec"]["mode"].clone();
        if mode == "auto" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(mode, "auto");
    delete_crd(&cluster, &group).await;
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn field_validation_decides_between_an_error_a_warning_and_silence() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "schema-strict").await;
    let (group, plural) = create_crd_with(&cluster, &gadget_spec_schema()).await;
    let path = format!("/apis/{group}/v1/namespaces/{}/{plural}", scratch.name);
    let typo = gadget(&group, "g", json!({"size": 1, "colour": "blue"}));
    let answer = send_json(
        &cluster,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        &typo,
    )
    .await;
    assert_eq!(answer.code, 400, "{}", answer.body);
    assert_eq!(answer.body["reason"], "BadRequest");
    assert_eq!(
        answer.body["message"],
        r#"Gadget in version "v1" cannot be handled as a Gadget: strict decoding error: unknown field "spec.colour""#
    );
    let repeated = format!(
        r#"{{"apiVersion": "{group}/v1", "kind": "Gadget", "metadata": {{"name": "g"}}, "spec": {{"size": 1, "size": 2}}}}"#
    );
    let answer = send(
        &cluster,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        "application/json",
        repeated.into_bytes(),
    )
    .await;
    assert_eq!(answer.code, 400, "{}", answer.body);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap_or_default()
            .ends_with(r#"strict decoding error: duplicate field "spec.size""#),
        "{}",
        answer.body
    );
    let warnings = warnings_of_create(&cluster, &path, &typo).await;
    assert_eq!(warnings, vec![r#"299 - "unknown field \"spec.colour\"""#]);
    // The same typo in a patch and in a server-side apply.
    let patch = json!({"spec": {"colour": "blue"}});
    let answer = send_json(
        &cluster,
        "PATCH",
        &format!("{path}/g?fieldValidation=Strict"),
        &patch,
    )
    .await;
    // kube-apiserver 1.32: the patched object is the invalid value of `patch` (422).
    assert_eq!(answer.code, 422, "{}", answer.body);
    assert_eq!(answer.body["reason"], "Invalid");
    let message = answer.body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(r#" "" is invalid: patch: Invalid value: "{"#)
            && message.ends_with(r#": strict decoding error: unknown field "spec.colour""#),
        "{message}"
    );
    assert_eq!(answer.body["details"]["causes"][0]["field"], "patch");
    assert_eq!(
        answer.body["details"]["causes"][0]["reason"],
        "FieldValueInvalid"
    );
    let apply = format!("{path}/g?fieldManager=schemas&fieldValidation=Strict");
    let body = gadget(&group, "g", json!({"size": 3, "colour": "blue"}))
        .to_string()
        .into_bytes();
    let answer = send(
        &cluster,
        "PATCH",
        &apply,
        "application/apply-patch+yaml",
        body.clone(),
    )
    .await;
    // The field manager cannot type the configuration: a 500 with no reason.
    assert_eq!(answer.code, 500, "{}", answer.body);
    assert_eq!(
        answer.body["message"],
        format!(
            "failed to create typed patch object ({group}/v1, Kind=Gadget): .spec.colour: field not declared in schema"
        )
    );
    assert!(
        answer.body.get("reason").is_none_or(|r| r == ""),
        "{}",
        answer.body
    );
    let apply = format!("{path}/g?fieldManager=schemas&force=true&fieldValidation=Ignore");
    let answer = send(
        &cluster,
        "PATCH",
        &apply,
        "application/apply-patch+yaml",
        body,
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.body["spec"], json!({"size": 3, "color": "red"}));
    delete_crd(&cluster, &group).await;
    scratch.remove(&cluster).await;
}

#[tokio::test]
async fn kubectl_rejects_a_typo_in_a_custom_resource() {
    let cluster = cluster::start().await;
    let scratch = Scratch::create(&cluster, "schema-kubectl").await;
    let (group, _) = create_crd_with(&cluster, &gadget_spec_schema()).await;
    let manifest = gadget(&group, "g", json!({"size": 1, "colour": "blue"})).to_string();
    let output = cluster::kubectl_with_input(
        &cluster,
        &["apply", "-n", &scratch.name, "-f", "-"],
        Some(&manifest),
        std::time::Duration::from_secs(30),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"strict decoding error: unknown field "spec.colour""#),
        "{stderr}"
    );
    let manifest = gadget(&group, "g", json!({"size": 1, "color": "blue"})).to_string();
    cluster::kubectl_ok(
        &cluster,
        &["apply", "-n", &scratch.name, "-f", "-"],
        Some(&manifest),
    )
    .await;
    delete_crd(&cluster, &group).await;
    scratch.remove(&cluster).await;
}
