//! The OpenAPI v3 documents kubectl reads before it writes: the root index of group-versions
//! and, per group-version, the write operations of every kind with their query parameters.
//!
//! kubectl (since 1.27) validates on the server when the PATCH operation of an object's kind
//! lists the `fieldValidation` parameter, and falls back to downloading schemas otherwise. The
//! documents carry operations only, no schemas: the server validates custom resources itself
//! against their CRDs' schemas (see `schema`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::registry::{Registry, ResourceType};

/// The query parameters the write operations accept, as the real server lists them.
const WRITE_PARAMETERS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];

/// `/openapi/v3`: every served group-version with the address of its document. The `hash`
/// changes with the document, so a client caching by address never keeps a stale one.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions(registry) {
        let key = document_key(&group, &version);
        let document = group_version(registry, &group, &version)
            .expect("a listed group-version has a document");
        paths.insert(
            key.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", hash(&document)) }),
        );
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/api/<v>` or `/openapi/v3/apis/<group>/<v>`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> ApiResult<Value> {
    let mut paths = Map::new();
    for t in registry
        .types()
        .iter()
        .filter(|t| t.group == group && t.serves(version))
    {
        let collection = collection_path(t, group, version);
        let gvk = json!({ "group": group, "version": version, "kind": t.kind });
        paths.insert(
            collection.clone(),
            json!({ "post": operation("post", &gvk, false) }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "put": operation("put", &gvk, false),
                "patch": operation("patch", &gvk, true),
            }),
        );
    }
    if paths.is_empty() {
        return Err(ApiError::not_found_path(format!(
            "the server could not find the requested resource (openapi {})",
            document_key(group, version)
        )));
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.32.0-testkit" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}

fn group_versions(registry: &Registry) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for t in registry.types() {
        for version in &t.versions {
            let entry = (t.group.clone(), version.clone());
            if !found.contains(&entry) {
                found.push(entry);
            }
        }
    }
    found
}

fn document_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn collection_path(t: &ResourceType, group: &str, version: &str) -> String {
    let namespace = if t.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    format!("/{}{namespace}/{}", document_key(group, version), t.plural)
}

/// One write operation. The request body is left out on purpose: kubectl then computes
/// client-side apply patches from its built-in types instead of looking for schemas.
fn operation(action: &str, gvk: &Value, with_force: bool) -> Value {
    let mut names = WRITE_PARAMETERS.to_vec();
    if with_force {
        names.push("force");
    }
    let parameters: Vec<Value> = names
        .into_iter()
        .map(|name| json!({ "name": name, "in": "query", "schema": { "type": "string" } }))
        .collect();
    json!({
        "parameters": parameters,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    })
}

fn hash(document: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    document.to_string().hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmap_patch_lists_field_validation_under_its_kind() {
        let registry = Registry::with_builtins();
        let root = root(&registry);
        let url = root["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/api/v1?hash="), "{url}");
        assert!(root["paths"]["apis/apps/v1"].is_object());
        let document = group_version(&registry, "", "v1").unwrap();
        let patch = &document["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ConfigMap"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(document["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
        assert_eq!(
            group_version(&registry, "nope.io", "v1").unwrap_err().code,
            404
        );
    }
}
