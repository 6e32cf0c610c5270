//! The `[envs.<env>.outputs]` table: which output of the env's Terraform module feeds each
//! field of the output contract, so existing modules (the public EKS module, say) are used
//! unchanged.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, de};

/// A top-level field of the output contract (see `crate::contract`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ContractField {
    ClusterName,
    Kubeconfig,
    ClusterEndpoint,
    ClusterCaCertificate,
    ClusterToken,
    Network,
    ClusterConfig,
    ClusterSecrets,
    ContractVersion,
}

impl ContractField {
    /// The output name the contract expects when the config maps nothing.
    pub fn name(self) -> &'static str {
        match self {
            ContractField::ClusterName => "cluster_name",
            ContractField::Kubeconfig => "kubeconfig",
            ContractField::ClusterEndpoint => "cluster_endpoint",
            ContractField::ClusterCaCertificate => "cluster_ca_certificate",
            ContractField::ClusterToken => "cluster_token",
            ContractField::Network => "network",
            ContractField::ClusterConfig => "cluster_config",
            ContractField::ClusterSecrets => "cluster_secrets",
            ContractField::ContractVersion => "contract_version",
        }
    }
}

impl fmt::Display for ContractField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a contract field's value comes from: a module output, and optionally a dotted path
/// inside its value (`0.data` = first element, then its `data` attribute).
///
/// In TOML either `field = "output_name"` or `field = { output = "output_name", path = "0.data" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "OutputRefSpec")]
pub struct OutputRef {
    pub output: String,
    /// The path segments (empty: the output's whole value).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

/// The two TOML spellings of an [`OutputRef`], for the JSON schema only: deserializing by hand
/// keeps serde's precise messages (an untagged enum would only say "did not match").
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // read by the schema derive only
enum OutputRefSpec {
    /// The module output's name.
    Name(String),
    Detailed {
        /// The module output's name.
        output: String,
        /// A dotted path inside the output's value, e.g. `0.data`.
        #[serde(default)]
        path: Option<String>,
    },
}

impl OutputRef {
    pub fn new(output: impl Into<String>, path: &str) -> Self {
        OutputRef {
            output: output.into(),
            path: split_path(path),
        }
    }

    /// The path as written in the config (`0.data`), empty when there is none.
    pub fn dotted_path(&self) -> String {
        self.path.join(".")
    }
}

fn split_path(path: &str) -> Vec<String> {
    path.split('.')
        .filter(|segment| !segment.is_empty())
        .map(str::to_owned)
        .collect()
}

impl fmt::Display for OutputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.output)
        } else {
            write!(f, "{}.{}", self.output, self.dotted_path())
        }
    }
}

impl<'de> Deserialize<'de> for OutputRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OutputRefVisitor)
    }
}

struct OutputRefVisitor;

impl<'de> de::Visitor<'de> for OutputRefVisitor {
    type Value = OutputRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an output name or a table { output = \"...\", path = \"...\" }")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<OutputRef, E> {
        Ok(OutputRef::new(name, ""))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<OutputRef, A::Error> {
        let mut output: Option<String> = None;
        let mut path: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "output" if output.is_none() => output = Some(map.next_value()?),
                "path" if path.is_none() => path = Some(map.next_value()?),
                "output" | "path" => return Err(de::Error::duplicate_field("output or path")),
                other => return Err(de::Error::unknown_field(other, &["output", "path"])),
            }
        }
        let output = output.ok_or_else(|| de::Error::missing_field("output"))?;
        Ok(OutputRef::new(output, path.as_deref().unwrap_or_default()))
    }
}

/// The output mapping of one env: contract field → module output. Fields not listed are read
/// from the output of the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct OutputMapping {
    fields: BTreeMap<ContractField, OutputRef>,
    /// The env this mapping belongs to, for hints (`[envs.<env>.outputs]`); set by the loader.
    #[serde(skip)]
    #[schemars(skip)]
    env: Option<String>,
}

impl OutputMapping {
    pub fn new(env: impl Into<String>, fields: BTreeMap<ContractField, OutputRef>) -> Self {
        OutputMapping {
            fields,
            env: Some(env.into()),
        }
    }

    /// The output (and path) that feeds `field`: the mapped one, else the output named after it.
    pub fn source(&self, field: ContractField) -> OutputRef {
        self.fields
            .get(&field)
            .cloned()
            .unwrap_or_else(|| OutputRef::new(field.name(), ""))
    }

    /// Whether the config maps `field` explicitly.
    pub fn is_mapped(&self, field: ContractField) -> bool {
        self.fields.contains_key(&field)
    }

    /// The config table holding this mapping, for messages: `[envs.dev.outputs]`.
    pub fn table(&self) -> String {
        format!("[envs.{}.outputs]", self.env.as_deref().unwrap_or("<env>"))
    }

    pub(super) fn set_env(&mut self, env: &str) {
        self.env = Some(env.to_owned());
    }

    pub(super) fn refs(&self) -> impl Iterator<Item = (ContractField, &OutputRef)> {
        self.fields.iter().map(|(field, source)| (*field, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Table {
        outputs: OutputMapping,
    }

    #[test]
    fn both_spellings_parse_and_unmapped_fields_default_to_their_own_name() {
        let table: Table = toml::from_str(
            "[outputs]\ncluster_endpoint = \"endpoint\"\n\
             cluster_ca_certificate = { output = \"cluster_certificate_authority_data\", path = \"0.data\" }\n",
        )
        .unwrap();
        let mapping = table.outputs;
        assert_eq!(
            mapping.source(ContractField::ClusterEndpoint),
            OutputRef::new("endpoint", "")
        );
        let ca = mapping.source(ContractField::ClusterCaCertificate);
        assert_eq!(ca.path, ["0", "data"]);
        assert_eq!(ca.to_string(), "cluster_certificate_authority_data.0.data");
        assert_eq!(
            mapping.source(ContractField::ClusterName),
            OutputRef::new("cluster_name", "")
        );
        assert!(!mapping.is_mapped(ContractField::ClusterName));
        assert_eq!(mapping.table(), "[envs.<env>.outputs]");
    }

    #[test]
    fn mapping_to_a_non_contract_field_is_rejected() {
        let err = toml::from_str::<Table>("[outputs]\nendpoint = \"x\"\n").unwrap_err();
        assert!(
            err.message().contains("unknown variant `endpoint`"),
            "{err}"
        );
        assert!(err.span().is_some());
    }

    #[test]
    fn a_table_without_output_is_rejected() {
        let err =
            toml::from_str::<Table>("[outputs]\ncluster_name = { path = \"a\" }\n").unwrap_err();
        assert!(err.message().contains("missing field `output`"), "{err}");
    }
}
