//! The kinds the server knows: the built-in ones a Flux install and chart-like manifests
//! contain, plus those registered by CustomResourceDefinitions.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};

/// One served resource (all of its versions share one storage, as with conversion `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub group: String,
    /// Served versions, the preferred one first.
    pub versions: Vec<String>,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub status_subresource: bool,
    /// Whether objects carry `metadata.generation` (core/v1 kinds mostly do not).
    pub tracks_generation: bool,
    /// A CRD's `openAPIV3Schema` per served version (built-in kinds have none here).
    pub schemas: BTreeMap<String, Value>,
}

impl ResourceType {
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|served| served == version)
    }

    /// The structural schema objects of this type are admitted with at `version`.
    pub fn schema(&self, version: &str) -> Option<&Value> {
        self.schemas.get(version)
    }

    /// A stored object as served at `version`: its apiVersion, and the schema's defaults the
    /// server also applies when it reads a stored object.
    pub fn present(&self, version: &str, mut object: Value) -> Value {
        object["apiVersion"] = json!(self.api_version(version));
        if let Some(schema) = self.schema(version) {
            super::schema::default(schema, &mut object);
        }
        object
    }
}

/// (group, version, kind, plural, short names, namespaced, status subresource)
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    bool,
);

const BUILTINS: &[Builtin] = &[
    ("", "v1", "Namespace", "namespaces", &["ns"], false, true),
    ("", "v1", "ConfigMap", "configmaps", &["cm"], true, false),
    ("", "v1", "Secret", "secrets", &[], true, false),
    ("", "v1", "Service", "services", &["svc"], true, true),
    (
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        &["sa"],
        true,
        false,
    ),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        &["pvc"],
        true,
        true,
    ),
    (
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        &["quota"],
        true,
        true,
    ),
    (
        "",
        "v1",
        "LimitRange",
        "limitranges",
        &["limits"],
        true,
        false,
    ),
    ("", "v1", "Event", "events", &["ev"], true, false),
    ("", "v1", "Pod", "pods", &["po"], true, true),
    ("", "v1", "Endpoints", "endpoints", &["ep"], true, false),
    (
        "apps",
        "v1",
        "Deployment",
        "deployments",
        &["deploy"],
        true,
        true,
    ),
    (
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        &["rs"],
        true,
        true,
    ),
    (
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        &["sts"],
        true,
        true,
    ),
    ("apps", "v1", "DaemonSet", "daemonsets", &["ds"], true, true),
    ("batch", "v1", "Job", "jobs", &[], true, true),
    ("batch", "v1", "CronJob", "cronjobs", &["cj"], true, true),
    (
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        &["ev"],
        true,
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        &["netpol"],
        true,
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        &["ing"],
        true,
        true,
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        &[],
        false,
        false,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        &["pdb"],
        true,
        true,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        &[],
        true,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        &[],
        true,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        &[],
        true,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        &[],
        false,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        &[],
        false,
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        &[],
        false,
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        &[],
        false,
        false,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        &["crd", "crds"],
        false,
        true,
    ),
];

/// All served resources, built-ins first, then CRD-defined ones in creation order.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    pub fn with_builtins() -> Registry {
        let types = BUILTINS
            .iter()
            .map(
                |&(group, version, kind, plural, short, namespaced, status)| ResourceType {
                    group: group.to_string(),
                    versions: vec![version.to_string()],
                    kind: kind.to_string(),
                    list_kind: format!("{kind}List"),
                    plural: plural.to_string(),
                    singular: kind.to_lowercase(),
                    short_names: short.iter().map(|s| s.to_string()).collect(),
                    categories: Vec::new(),
                    namespaced,
                    status_subresource: status,
                    tracks_generation: !group.is_empty(),
                    schemas: BTreeMap::new(),
                },
            )
            .collect();
        Registry { types }
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type served at `/…/<group>/<version>/<plural>`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> ApiResult<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural && t.serves(version))
            .ok_or_else(|| {
                ApiError::not_found_path(format!(
                    "the server could not find the requested resource ({group}/{version} {plural})"
                ))
            })
    }

    pub fn by_group_resource(&self, group: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
    }

    /// Registers or replaces the resource a CRD defines (keyed by group and plural).
    pub fn register(&mut self, resource: ResourceType) {
        self.unregister(&resource.group, &resource.plural);
        self.types.push(resource);
    }

    pub fn unregister(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|t| !(t.group == group && t.plural == plural));
    }

    /// Groups in order of first appearance, each with its served versions highest priority
    /// first, as kube-apiserver lists them: the first is the group's preferred version (v1
    /// before v1beta2 whichever CRD came first, or was updated last).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            match groups.iter_mut().find(|(name, _)| *name == t.group) {
                Some((_, versions)) => {
                    for version in &t.versions {
                        if !versions.contains(version) {
                            versions.push(version.clone());
                        }
                    }
                }
                None => groups.push((t.group.clone(), t.versions.clone())),
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by_cached_key(|v| {
                std::cmp::Reverse(kube::core::Version::parse(v).priority())
            });
        }
        groups
    }
}

/// The resource a CRD object describes, or why it cannot be served.
pub fn resource_from_crd(crd: &Value) -> ApiResult<ResourceType> {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let invalid = |message: &str| ApiError::invalid("CustomResourceDefinition", name, message);
    let spec = &crd["spec"];
    let group = spec["group"]
        .as_str()
        .filter(|g| !g.is_empty())
        .ok_or_else(|| invalid("spec.group: Required value"))?;
    let names = &spec["names"];
    let plural = names["plural"]
        .as_str()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("spec.names.plural: Required value"))?;
    let kind = names["kind"]
        .as_str()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| invalid("spec.names.kind: Required value"))?;
    if name != format!("{plural}.{group}") {
        return Err(invalid(&format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        )));
    }
    let served: Vec<&Value> = spec["versions"]
        .as_array()
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v["served"].as_bool().unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    if served.is_empty() {
        return Err(invalid(
            "spec.versions: Invalid value: must have at least one served version",
        ));
    }
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The storage version is preferred, as kubectl and kube-rs pick the preferred one.
    let mut versions: Vec<String> = Vec::new();
    let mut ordered = served.clone();
    ordered.sort_by_key(|v| !v["storage"].as_bool().unwrap_or(false));
    for version in &ordered {
        if let Some(v) = version["name"].as_str() {
            versions.push(v.to_string());
        }
    }
    let status_subresource = served
        .iter()
        .any(|v| v["subresources"]["status"].is_object());
    let schemas = served
        .iter()
        .filter(|v| v["schema"]["openAPIV3Schema"].is_object())
        .filter_map(|v| {
            let schema = v["schema"]["openAPIV3Schema"].clone();
            Some((v["name"].as_str()?.to_string(), schema))
        })
        .collect();
    Ok(ResourceType {
        group: group.to_string(),
        versions,
        kind: kind.to_string(),
        list_kind: names["listKind"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{kind}List")),
        plural: plural.to_string(),
        singular: names["singular"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| kind.to_lowercase()),
        short_names: strings(&names["shortNames"]),
        categories: strings(&names["categories"]),
        namespaced: spec["scope"].as_str() != Some("Cluster"),
        status_subresource,
        tracks_generation: true,
        schemas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_crd_becomes_a_namespaced_resource_preferring_its_storage_version() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                    {"name": "v0", "served": false, "storage": false}
                ]
            }
        });
        let resource = resource_from_crd(&crd).unwrap();
        assert_eq!(resource.versions, vec!["v1", "v1alpha1"]);
        assert_eq!(resource.singular, "widget");
        assert_eq!(resource.list_kind, "WidgetList");
        assert!(resource.namespaced && resource.status_subresource);
        assert_eq!(resource.short_names, vec!["wd"]);
    }

    fn crd(plural: &str, kind: &str, versions: &[&str]) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"name": v, "served": true, "storage": i == 0}))
            .collect();
        json!({
            "metadata": {"name": format!("{plural}.example.com")},
            "spec": {"group": "example.com", "names": {"plural": plural, "kind": kind},
                     "versions": versions}
        })
    }

    #[test]
    fn a_group_prefers_its_highest_priority_version_whatever_order_its_crds_came_in() {
        let mut registry = Registry::with_builtins();
        let gadgets = resource_from_crd(&crd("gadgets", "Gadget", &["v1beta2"])).unwrap();
        let widgets = resource_from_crd(&crd("widgets", "Widget", &["v1", "v1beta1"])).unwrap();
        registry.register(gadgets);
        registry.register(widgets.clone());
        // Updating a CRD must not change the group's preferred version either.
        registry.register(widgets);
        let (_, versions) = registry
            .groups()
            .into_iter()
            .find(|(group, _)| group == "example.com")
            .unwrap();
        assert_eq!(versions, vec!["v1", "v1beta2", "v1beta1"]);
    }

    #[test]
    fn a_crd_whose_name_does_not_match_is_invalid() {
        let crd = json!({
            "metadata": {"name": "wrong.example.com"},
            "spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]}
        });
        assert_eq!(resource_from_crd(&crd).unwrap_err().code, 422);
    }
}
