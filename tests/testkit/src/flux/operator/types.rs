//! The Flux Operator's custom resources (`fluxcd.controlplane.io/v1`) as our own Rust types:
//! the fields of the operator's documented API that the product and the tests use, with its
//! required fields, enums, patterns and the rule that both objects are named `flux`.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, ValidationRule,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::flux::types::{FluxObject, FluxStatus, ResourceInventory, conditions};

/// The one name the operator accepts for its objects.
pub const INSTANCE_NAME: &str = "flux";

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "fluxcd.controlplane.io",
    version = "v1",
    kind = "FluxInstance",
    namespaced,
    status = "FluxInstanceStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct FluxInstanceSpec {
    pub distribution: Distribution,
    /// Controllers to install; empty means the operator's default four.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "components")]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeSpec>,
    /// Wait for every applied object to be healthy (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub wait: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub migrate_resources: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<Sync>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    /// A semver range (`2.x`, `2.4.x`) or an exact version.
    pub version: String,
    pub registry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^oci://.*$"))]
    pub artifact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_pull_secret: Option<String>,
}

/// The controllers a distribution ships.
pub const COMPONENTS: [&str; 7] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "source-watcher",
];

fn components(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "string", "enum": COMPONENTS}
    })
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct CommonMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "cluster.local"))]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub multitenant: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub network_policy: Option<bool>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "enum" = ["kubernetes", "openshift", "aws", "azure", "gcp"],
        "default" = "kubernetes"
    ))]
    pub cluster_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["small", "medium", "large"]))]
    pub size: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct KustomizeSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<KustomizePatch>,
}

/// A strategic merge or JSON6902 patch (inline YAML) and the objects it targets.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct KustomizePatch {
    #[schemars(length(min = 1))]
    pub patch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<PatchSelector>,
}

/// Kustomize's selector: `name` and `namespace` are regular expressions matched whole.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PatchSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

/// The cluster sync: a source and a Kustomization, both named after the namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Sync {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), extend("default" = "1m"))]
    pub interval: Option<String>,
    #[schemars(extend("enum" = ["OCIRepository", "GitRepository", "Bucket"]))]
    pub kind: String,
    pub url: String,
    #[serde(rename = "ref")]
    pub reference: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["generic", "aws", "azure", "gcp", "github"]))]
    pub provider: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FluxInstanceStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// `<version>@sha256:<digest of the built objects>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct ComponentImage {
    pub name: String,
    pub repository: String,
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "fluxcd.controlplane.io",
    version = "v1",
    kind = "FluxReport",
    namespaced,
    status = "FluxReportStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct FluxReportSpec {
    pub distribution: FluxDistributionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<FluxComponentStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconcilers: Vec<FluxReconcilerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<FluxSyncStatus>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FluxDistributionStatus {
    pub entitlement: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub server_version: String,
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<i64>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperatorInfo {
    pub api_version: String,
    pub version: String,
    pub platform: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct FluxComponentStatus {
    pub name: String,
    pub ready: bool,
    pub status: String,
    pub image: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FluxReconcilerStatus {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<FluxReconcilerStats>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct FluxReconcilerStats {
    pub running: i64,
    pub failing: i64,
    pub suspended: i64,
}

/// The sync line: `id` is `kustomization/<name>`, `source` the repository URL.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct FluxSyncStatus {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub ready: bool,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FluxReportStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl FluxStatus for FluxInstanceStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn observed_generation(&self) -> Option<i64> {
        // The operator records the generation on each condition, not at the top.
        self.conditions.first().and_then(|c| c.observed_generation)
    }
    fn record_handled(&mut self, _generation: Option<i64>, requested_at: Option<String>) {
        if requested_at.is_some() {
            self.last_handled_reconcile_at = requested_at;
        }
    }
}

impl FluxObject for FluxInstance {
    type Status = FluxInstanceStatus;
    fn flux_status(&self) -> Option<&FluxInstanceStatus> {
        self.status.as_ref()
    }
    fn generation(&self) -> Option<i64> {
        self.metadata.generation
    }
}

/// A CRD derived from the types, with the operator's rule that the object is named `flux`
/// on the whole object (kube's derive has no attribute for root-level rules).
fn with_name_rule(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let kind = crd.spec.names.kind.clone();
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema.x_kubernetes_validations = Some(vec![ValidationRule {
                rule: format!("self.metadata.name == '{INSTANCE_NAME}'"),
                message: Some(format!(
                    "the only accepted name for a {kind} is '{INSTANCE_NAME}'"
                )),
                ..ValidationRule::default()
            }]);
        }
    }
    crd
}

pub fn instance_crd() -> CustomResourceDefinition {
    with_name_rule(FluxInstance::crd())
}

pub fn report_crd() -> CustomResourceDefinition {
    with_name_rule(FluxReport::crd())
}
