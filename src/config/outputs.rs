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
    ClusterExec,
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
            ContractField::ClusterExec => "cluster_exec",
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
/// In TOML either `field = "output_name"` (or `"output_name.0.data"`: an output name never holds
/// a dot) or `field = { output = "output_name", path = "0.data" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "OutputRefSpec")]
pub struct OutputRef {
    pub output: String,
    /// The path segments (empty: the output's whole value).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

/// The TOML spellings of a field's source, for the JSON schema only: deserializing by hand
/// keeps serde's precise messages (an untagged enum would only say "did not match").
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // read by the schema derive only
enum OutputRefSpec {
    /// The module output's name, optionally followed by a dotted path (`vpc.id`).
    Name(String),
    Detailed {
        /// The module output's name.
        output: String,
        /// A dotted path inside the output's value, e.g. `0.data`.
        #[serde(default)]
        path: Option<String>,
    },
}

/// A field's source in TOML, for the JSON schema only: `cluster_config` may also be assembled
/// from several outputs, `{ region = "region", vpc = "network.vpc_id" }`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // read by the schema derive only
enum FieldSourceSpec {
    Output(OutputRefSpec),
    /// cluster_config only: ConfigMap key → output name (and dotted path); numbers and bools
    /// become strings.
    Assembled(BTreeMap<String, String>),
}

impl OutputRef {
    pub fn new(output: impl Into<String>, path: &str) -> Self {
        OutputRef {
            output: output.into(),
            path: split_path(path),
        }
    }

    /// `output` or `output.path.inside` as written in the config.
    pub fn parse(dotted: &str) -> Self {
        let (output, path) = dotted.split_once('.').unwrap_or((dotted, ""));
        OutputRef::new(output, path)
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

/// One value of the `[outputs]` table as read.
enum FieldSource {
    Output(OutputRef),
    Assembled(BTreeMap<String, OutputRef>),
}

impl<'de> Deserialize<'de> for FieldSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldSourceVisitor)
    }
}

struct FieldSourceVisitor;

impl<'de> de::Visitor<'de> for FieldSourceVisitor {
    type Value = FieldSource;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "an output name, a table { output = \"...\", path = \"...\" }, or (cluster_config) \
             a table of key = \"output\"",
        )
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<FieldSource, E> {
        Ok(FieldSource::Output(OutputRef::parse(name)))
    }

    /// A table naming `output` is one output; any other table assembles several.
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<FieldSource, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: String = map.next_value()?;
            entries.insert(key, value);
        }
        if let Some(output) = entries.remove("output") {
            let path = entries.remove("path").unwrap_or_default();
            if let Some(other) = entries.keys().next() {
                return Err(de::Error::unknown_field(other, &["output", "path"]));
            }
            return Ok(FieldSource::Output(OutputRef::new(output, &path)));
        }
        if entries.is_empty() {
            return Err(de::Error::missing_field("output"));
        }
        Ok(FieldSource::Assembled(
            entries
                .into_iter()
                .map(|(key, dotted)| (key, OutputRef::parse(&dotted)))
                .collect(),
        ))
    }
}

/// The output mapping of one env: contract field → module output. Fields not listed are read
/// from the output of the same name; `cluster_config` may instead be assembled key by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "BTreeMap<ContractField, FieldSourceSpec>")]
pub struct OutputMapping {
    fields: BTreeMap<ContractField, OutputRef>,
    /// `cluster_config` built from these outputs: ConfigMap key → output (and path).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    cluster_config: BTreeMap<String, OutputRef>,
    /// The env this mapping belongs to, for hints (`[envs.<env>.outputs]`); set by the loader.
    #[serde(skip)]
    env: Option<String>,
}

impl<'de> Deserialize<'de> for OutputMapping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<ContractField, FieldSource>::deserialize(deserializer)?;
        let mut mapping = OutputMapping::default();
        for (field, source) in raw {
            match source {
                FieldSource::Output(source) => {
                    mapping.fields.insert(field, source);
                }
                FieldSource::Assembled(keys) if field == ContractField::ClusterConfig => {
                    mapping.cluster_config = keys;
                }
                FieldSource::Assembled(_) => {
                    return Err(de::Error::custom(format!(
                        "{field}: only cluster_config can be assembled from several outputs; \
                         write {field} = \"output\" or {{ output = \"...\", path = \"...\" }}"
                    )));
                }
            }
        }
        Ok(mapping)
    }
}

impl OutputMapping {
    pub fn new(env: impl Into<String>, fields: BTreeMap<ContractField, OutputRef>) -> Self {
        OutputMapping {
            fields,
            cluster_config: BTreeMap::new(),
            env: Some(env.into()),
        }
    }

    /// The same mapping with `cluster_config` assembled from `keys` (ConfigMap key → output).
    pub fn with_assembled_cluster_config(mut self, keys: BTreeMap<String, OutputRef>) -> Self {
        self.cluster_config = keys;
        self
    }

    /// The output (and path) that feeds `field`: the mapped one, else the output named after it.
    pub fn source(&self, field: ContractField) -> OutputRef {
        self.fields
            .get(&field)
            .cloned()
            .unwrap_or_else(|| OutputRef::new(field.name(), ""))
    }

    /// Whether the config maps `field` explicitly (for `cluster_config`, also key by key).
    pub fn is_mapped(&self, field: ContractField) -> bool {
        self.fields.contains_key(&field)
            || (field == ContractField::ClusterConfig && !self.cluster_config.is_empty())
    }

    /// `cluster_config` assembled from several outputs, when the config says so: ConfigMap
    /// key → output.
    pub fn assembled_cluster_config(&self) -> Option<&BTreeMap<String, OutputRef>> {
        (!self.cluster_config.is_empty()).then_some(&self.cluster_config)
    }

    /// The config table holding this mapping, for messages: `[envs.dev.outputs]`.
    pub fn table(&self) -> String {
        format!("[envs.{}.outputs]", self.env.as_deref().unwrap_or("<env>"))
    }

    pub(super) fn set_env(&mut self, env: &str) {
        self.env = Some(env.to_owned());
    }

    /// Every output the config names, with the config key naming it (`cluster_endpoint`,
    /// `cluster_config.region`).
    pub fn refs(&self) -> impl Iterator<Item = (String, ContractField, &OutputRef)> {
        let single = self
            .fields
            .iter()
            .map(|(field, source)| (field.name().to_owned(), *field, source));
        let assembled = self.cluster_config.iter().map(|(key, source)| {
            (
                format!("{}.{key}", ContractField::ClusterConfig),
                ContractField::ClusterConfig,
                source,
            )
        });
        single.chain(assembled)
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
    fn only_cluster_config_is_assembled_from_several_outputs() {
        let err =
            toml::from_str::<Table>("[outputs]\ncluster_name = { path = \"a\" }\n").unwrap_err();
        assert!(
            err.message()
                .contains("only cluster_config can be assembled"),
            "{err}"
        );
        let err = toml::from_str::<Table>("[outputs]\ncluster_name = {}\n").unwrap_err();
        assert!(err.message().contains("missing field `output`"), "{err}");
        let table: Table = toml::from_str(
            "[outputs]\ncluster_config = { region = \"region\", vpc = \"network.vpc_id\" }\n",
        )
        .unwrap();
        let assembled = table.outputs.assembled_cluster_config().unwrap();
        assert_eq!(assembled["region"], OutputRef::new("region", ""));
        assert_eq!(assembled["vpc"], OutputRef::new("network", "vpc_id"));
        assert!(table.outputs.is_mapped(ContractField::ClusterConfig));
        let keys: Vec<String> = table.outputs.refs().map(|(key, ..)| key).collect();
        assert_eq!(keys, ["cluster_config.region", "cluster_config.vpc"]);
    }

    #[test]
    fn a_dotted_name_is_an_output_and_a_path() {
        let table: Table =
            toml::from_str("[outputs]\ncluster_ca_certificate = \"ca.0.data\"\n").unwrap();
        assert_eq!(
            table.outputs.source(ContractField::ClusterCaCertificate),
            OutputRef::new("ca", "0.data")
        );
    }
}
