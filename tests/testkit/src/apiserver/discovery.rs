//! Discovery documents: /version, /api, /api/v1, /apis, /apis/<group>/<version> (the OpenAPI
//! documents are in `openapi`).

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::registry::{Registry, ResourceType};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-testkit",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    })
}

pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .map(|(name, versions)| group(&name, &versions))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

fn group(name: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{name}/{v}"), "version": v }))
        .collect();
    json!({ "name": name, "versions": entries, "preferredVersion": entries[0] })
}

pub fn group_document(registry: &Registry, name: &str) -> ApiResult<Value> {
    let (_, versions) = registry
        .groups()
        .into_iter()
        .find(|(group, _)| group == name)
        .ok_or_else(|| {
            ApiError::not_found_path(format!(
                "the server could not find the requested resource (group {name})"
            ))
        })?;
    let mut document = group(name, &versions);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Ok(document)
}

pub fn resource_list(registry: &Registry, group: &str, version: &str) -> ApiResult<Value> {
    let types: Vec<&ResourceType> = registry
        .types()
        .iter()
        .filter(|t| t.group == group && t.serves(version))
        .collect();
    if types.is_empty() {
        return Err(ApiError::not_found_path(format!(
            "the server could not find the requested resource ({group}/{version})"
        )));
    }
    let mut resources = Vec::new();
    for t in types {
        let mut resource = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
        });
        if !t.short_names.is_empty() {
            resource["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            resource["categories"] = json!(t.categories);
        }
        resources.push(resource);
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_v1_lists_deployments_with_their_status_subresource() {
        let registry = Registry::with_builtins();
        let list = resource_list(&registry, "apps", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments") && names.contains(&"deployments/status"));
        assert_eq!(
            resource_list(&registry, "nope.io", "v1").unwrap_err().code,
            404
        );
        let groups = group_list(&registry);
        assert!(
            groups["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "apiextensions.k8s.io")
        );
    }
}
