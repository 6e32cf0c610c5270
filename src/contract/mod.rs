//! The output contract between an env's Terraform module and the tool.
//!
//! The tool takes the module's outputs as [`crate::terraform`] parsed them (name →
//! sensitive, type, secret value), applies the env's output mapping
//! (`[envs.<env>.outputs]`: contract field → module output, optionally a dotted path inside
//! it), and reads these outputs:
//!
//! | output | type | |
//! |---|---|---|
//! | `cluster_name` | string | required |
//! | `kubeconfig` | string, **sensitive** | access, either this … |
//! | `cluster_endpoint` | string (`https://` URL) | … or these three |
//! | `cluster_ca_certificate` | string: PEM, or base64 of PEM | |
//! | `cluster_token` | string, **sensitive** | … and this, or: |
//! | `cluster_exec` | object `{command, args, env}` | a credential plugin (`aws eks get-token …`) run whenever a token is needed; wins over `cluster_token` |
//! | `network` | object of strings, numbers, bools, lists of those, nested objects | optional |
//! | `cluster_config` | map(string) | optional |
//! | `cluster_secrets` | map(string), **sensitive** | optional |
//! | `contract_version` | number, `1` | optional |
//!
//! - `network` is flattened to `network_<key>` (nested objects join their keys with `_`, lists
//!   join their items with `,`, `null` attributes are left out).
//! - `cluster_config`, `cluster_name` and the flattened network become the `cluster-config`
//!   ConfigMap ([`Contract::config_map_data`]); `cluster_secrets` the `cluster-secrets` Secret
//!   ([`Contract::secret_data`]). Flux substitutes both into the env's profile.
//! - Every key is a Flux substitution variable name, `^[_a-zA-Z][_a-zA-Z0-9]*$`, and no key
//!   appears twice across the ConfigMap and the Secret.
//! - Outputs carrying secrets (`kubeconfig`, `cluster_token`, `cluster_secrets`) must be
//!   declared `sensitive = true`; outputs written in clear (all the others) must not be
//!   sensitive (use `nonsensitive(...)` for values that are not secret).
//! - A `contract_version` above [`CONTRACT_VERSION`] asks for a newer gitops-bootstrap.
//!
//! Secret values stay in [`SecretString`]: `Debug` and `Serialize` of [`Contract`] show them
//! as redacted, and no [`ContractError`] quotes the value of any output.

mod declared;
mod error;
mod flatten;
mod outputs;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use base64::Engine;
use secrecy::SecretString;
use serde::{Serialize, Serializer};

pub use declared::{DeclaredAccess, check_declared};
pub use error::ContractError;

use crate::config::{ContractField, OutputMapping, OutputRef};
use crate::terraform;
use outputs::{Found, Outputs, Sensitivity};

/// The newest contract version this build understands.
pub const CONTRACT_VERSION: u32 = 1;

/// The most data a Kubernetes ConfigMap or Secret may hold (keys and values, 1 MiB).
pub const MAX_OBJECT_DATA_BYTES: usize = 1024 * 1024;

const CONFIG_MAP: Sensitivity = Sensitivity::Clear("the cluster-config ConfigMap");
const CONNECTION: Sensitivity = Sensitivity::Clear("the connection details the tool reports");

/// A module's outputs, read and checked against the contract.
#[derive(Debug, Clone, Serialize)]
pub struct Contract {
    pub contract_version: u32,
    pub cluster_name: String,
    pub access: ClusterAccess,
    /// The `network` output flattened: `network_vpc_id`, `network_subnets`, ….
    pub network: BTreeMap<String, String>,
    pub cluster_config: BTreeMap<String, String>,
    #[serde(serialize_with = "redacted_map")]
    pub cluster_secrets: BTreeMap<String, SecretString>,
    /// The `cluster_ca_certificate` output gave base64 of the PEM (a kubectl hint decodes it).
    #[serde(skip)]
    pub ca_certificate_base64: bool,
}

/// How the tool reaches the cluster's API server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterAccess {
    Kubeconfig(#[serde(serialize_with = "redacted")] SecretString),
    Endpoint {
        endpoint: String,
        /// PEM, also when the output gave base64 of it.
        ca_certificate_pem: String,
        #[serde(serialize_with = "redacted")]
        token: SecretString,
    },
    /// The endpoint with a credential plugin, which is run again when its token expires: a
    /// long wait outlives a cloud's 15-minute tokens.
    EndpointExec {
        endpoint: String,
        ca_certificate_pem: String,
        exec: ExecCredential,
    },
}

/// A kubectl-style credential plugin (`command args…` printing an ExecCredential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecCredential {
    pub command: String,
    pub args: Vec<String>,
    /// Extra environment of the plugin; values are not shown, they may select an account.
    #[serde(serialize_with = "keys_only")]
    pub env: BTreeMap<String, String>,
}

impl ExecCredential {
    /// `command args…`, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(self.command.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn keys_only<S: Serializer>(
    env: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(env.keys().map(|key| (key, REDACTED)))
}

const REDACTED: &str = "[redacted]";

fn redacted<S: Serializer>(_: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(REDACTED)
}

fn redacted_map<S: Serializer>(
    secrets: &BTreeMap<String, SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(secrets.keys().map(|key| (key, REDACTED)))
}

impl Contract {
    /// Reads the module's outputs through the env's output mapping.
    pub fn from_outputs(
        outputs: &terraform::Outputs,
        mapping: &OutputMapping,
    ) -> Result<Contract, ContractError> {
        let outputs = Outputs::new(outputs);
        outputs.check_mapping(mapping)?;
        let reader = Reader {
            outputs: &outputs,
            mapping,
        };
        // First, so a module written for a newer contract fails with "upgrade", not a puzzle.
        let contract_version = reader.contract_version()?;
        let cluster_name = reader.required_string(ContractField::ClusterName, CONFIG_MAP)?;
        let access = reader.access()?;
        let ca_certificate_base64 = match access {
            ClusterAccess::Kubeconfig(_) => false,
            ClusterAccess::Endpoint { .. } | ClusterAccess::EndpointExec { .. } => !reader
                .required_string(ContractField::ClusterCaCertificate, CONNECTION)?
                .trim()
                .starts_with(PEM_CERTIFICATE),
        };
        let network = match reader.find(ContractField::Network, CONFIG_MAP)? {
            Some(found) => flatten::flatten_network(&found, mapping)?,
            None => BTreeMap::new(),
        };
        let cluster_config = match mapping.assembled_cluster_config() {
            Some(keys) => reader.assembled(keys)?,
            None => reader.string_map::<String>(ContractField::ClusterConfig, CONFIG_MAP)?,
        };
        let cluster_secrets = reader
            .string_map::<SecretString>(ContractField::ClusterSecrets, Sensitivity::Secret)?;
        let contract = Contract {
            contract_version,
            cluster_name: cluster_name.to_owned(),
            access,
            network,
            cluster_config,
            cluster_secrets,
            ca_certificate_base64,
        };
        crate::config::check_cluster_name(&contract.cluster_name).map_err(|reason| {
            ContractError::InvalidClusterName {
                source_path: mapping.source(ContractField::ClusterName).to_string(),
                reason,
            }
        })?;
        contract.check_collisions()?;
        contract.check_sizes()?;
        Ok(contract)
    }

    /// The data of the `cluster-config` ConfigMap: `cluster_config`, `cluster_name` and the
    /// flattened network.
    pub fn config_map_data(&self) -> BTreeMap<String, String> {
        let mut data = self.cluster_config.clone();
        data.insert("cluster_name".to_owned(), self.cluster_name.clone());
        data.extend(self.network.clone());
        data
    }

    /// The data of the `cluster-secrets` Secret.
    pub fn secret_data(&self) -> &BTreeMap<String, SecretString> {
        &self.cluster_secrets
    }

    /// A real API server refuses a ConfigMap or Secret whose data exceeds 1 MiB: found here,
    /// before anything is applied, rather than by the API server halfway through.
    fn check_sizes(&self) -> Result<(), ContractError> {
        let config_bytes: usize = self
            .config_map_data()
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        let secret_bytes: usize = self
            .cluster_secrets
            .iter()
            .map(|(key, value)| key.len() + secrecy::ExposeSecret::expose_secret(value).len())
            .sum();
        for (object, field, bytes) in [
            (
                "ConfigMap cluster-config",
                ContractField::ClusterConfig,
                config_bytes,
            ),
            (
                "Secret cluster-secrets",
                ContractField::ClusterSecrets,
                secret_bytes,
            ),
        ] {
            if bytes > MAX_OBJECT_DATA_BYTES {
                return Err(ContractError::TooLarge {
                    field,
                    object,
                    bytes,
                    limit: MAX_OBJECT_DATA_BYTES,
                });
            }
        }
        Ok(())
    }

    fn check_collisions(&self) -> Result<(), ContractError> {
        for key in self.cluster_config.keys() {
            let other = if key == "cluster_name" {
                Some("the `cluster_name` output")
            } else if self.network.contains_key(key) {
                Some("a flattened `network` key")
            } else {
                None
            };
            if let Some(other) = other {
                return Err(ContractError::Collision {
                    field: ContractField::ClusterConfig,
                    key: key.clone(),
                    other: other.to_owned(),
                });
            }
        }
        let config_keys = self.config_map_data();
        if let Some(key) = self
            .cluster_secrets
            .keys()
            .find(|key| config_keys.contains_key(*key))
        {
            return Err(ContractError::Collision {
                field: ContractField::ClusterSecrets,
                key: key.clone(),
                other: "a key of the cluster-config ConfigMap".to_owned(),
            });
        }
        Ok(())
    }
}

/// Reads fields out of the outputs, through the mapping.
struct Reader<'a> {
    outputs: &'a Outputs<'a>,
    mapping: &'a OutputMapping,
}

impl<'a> Reader<'a> {
    fn find(
        &self,
        field: ContractField,
        sensitivity: Sensitivity,
    ) -> Result<Option<Found<'a>>, ContractError> {
        self.outputs.find(field, self.mapping, sensitivity)
    }

    fn missing(&self, field: ContractField, expected: &'static str) -> ContractError {
        let output = self.mapping.source(field);
        ContractError::Missing {
            field,
            closest: self.outputs.closest(&output.output),
            output: output.to_string(),
            expected,
            declared: self.outputs.declared(),
            table: self.mapping.table(),
        }
    }

    fn string(&self, found: &Found<'a>, expected: &'static str) -> Result<&'a str, ContractError> {
        found
            .value
            .as_str()
            .ok_or_else(|| found.wrong_type("", None, expected, self.mapping))
    }

    fn required_string(
        &self,
        field: ContractField,
        sensitivity: Sensitivity,
    ) -> Result<&'a str, ContractError> {
        let expected = match sensitivity {
            Sensitivity::Secret => "a sensitive string",
            Sensitivity::Clear(_) => "a string",
        };
        let found = self
            .find(field, sensitivity)?
            .ok_or_else(|| self.missing(field, expected))?;
        self.string(&found, expected)
    }

    fn string_map<T: From<String>>(
        &self,
        field: ContractField,
        sensitivity: Sensitivity,
    ) -> Result<BTreeMap<String, T>, ContractError> {
        let Some(found) = self.find(field, sensitivity)? else {
            return Ok(BTreeMap::new());
        };
        Ok(flatten::string_map(&found, self.mapping)?
            .into_iter()
            .map(|(key, value)| (key, T::from(value)))
            .collect())
    }

    /// `cluster_config` assembled key by key from several outputs; a `null` value (an unset
    /// optional attribute) leaves its key out.
    fn assembled(
        &self,
        keys: &BTreeMap<String, OutputRef>,
    ) -> Result<BTreeMap<String, String>, ContractError> {
        let field = ContractField::ClusterConfig;
        let mut config = BTreeMap::new();
        for (key, source) in keys {
            flatten::check_key(field, key)?;
            let found = self
                .outputs
                .find_source(field, source, self.mapping, CONFIG_MAP)?;
            if let Some(found) = found {
                config.insert(key.clone(), flatten::scalar(&found, self.mapping)?);
            }
        }
        Ok(config)
    }

    fn contract_version(&self) -> Result<u32, ContractError> {
        let field = ContractField::ContractVersion;
        let Some(found) = self.find(field, CONNECTION)? else {
            return Ok(CONTRACT_VERSION);
        };
        if !found.value.is_number() {
            return Err(found.wrong_type("", None, "a number", self.mapping));
        }
        let version = found.value.as_u64().filter(|version| *version >= 1);
        let Some(version) = version else {
            return Err(ContractError::InvalidVersion {
                output: found.source_path,
            });
        };
        match u32::try_from(version) {
            Ok(version) if version <= CONTRACT_VERSION => Ok(version),
            _ => Err(ContractError::FutureVersion {
                found: version,
                supported: CONTRACT_VERSION,
            }),
        }
    }

    fn access(&self) -> Result<ClusterAccess, ContractError> {
        let kubeconfig = self.find(ContractField::Kubeconfig, Sensitivity::Secret)?;
        let endpoint_fields = [
            ContractField::ClusterEndpoint,
            ContractField::ClusterCaCertificate,
            ContractField::ClusterToken,
            ContractField::ClusterExec,
        ];
        let endpoint_given = endpoint_fields
            .into_iter()
            .find(|field| self.outputs.has_value(*field, self.mapping));
        match (kubeconfig, endpoint_given) {
            (Some(_), Some(endpoint_field)) => Err(ContractError::AmbiguousAccess {
                endpoint_field,
                table: self.mapping.table(),
            }),
            (Some(found), None) => {
                let kubeconfig = self.string(&found, "a sensitive string")?;
                Ok(ClusterAccess::Kubeconfig(SecretString::from(kubeconfig)))
            }
            (None, Some(_)) => self.endpoint_access(),
            (None, None) => Err(ContractError::MissingAccess {
                declared: self.outputs.declared(),
                table: self.mapping.table(),
            }),
        }
    }

    fn endpoint_access(&self) -> Result<ClusterAccess, ContractError> {
        let endpoint_field = ContractField::ClusterEndpoint;
        let endpoint = self.required_string(endpoint_field, CONNECTION)?;
        let is_https = url::Url::parse(endpoint).is_ok_and(|url| url.scheme() == "https");
        if !is_https {
            return Err(ContractError::InvalidEndpoint {
                source_path: self.mapping.source(endpoint_field).to_string(),
            });
        }
        let ca_field = ContractField::ClusterCaCertificate;
        let ca = self.required_string(ca_field, CONNECTION)?;
        let ca_certificate_pem =
            pem_certificate(ca).ok_or_else(|| ContractError::InvalidCaCertificate {
                source_path: self.mapping.source(ca_field).to_string(),
            })?;
        if let Some(found) = self.find(ContractField::ClusterExec, CONNECTION)? {
            return Ok(ClusterAccess::EndpointExec {
                endpoint: endpoint.to_owned(),
                ca_certificate_pem,
                exec: flatten::exec_credential(&found, self.mapping)?,
            });
        }
        let token = self.required_string(ContractField::ClusterToken, Sensitivity::Secret)?;
        Ok(ClusterAccess::Endpoint {
            endpoint: endpoint.to_owned(),
            ca_certificate_pem,
            token: SecretString::from(token),
        })
    }
}

const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

/// The CA as PEM: given as PEM, or as base64 of PEM (what EKS and AKS output).
fn pem_certificate(text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with(PEM_CERTIFICATE) {
        return Some(format!("{text}\n"));
    }
    let compact: String = text.split_whitespace().collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    let pem = String::from_utf8(decoded).ok()?;
    let pem = pem.trim();
    pem.starts_with(PEM_CERTIFICATE).then(|| format!("{pem}\n"))
}
