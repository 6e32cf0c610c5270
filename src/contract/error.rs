//! Errors of reading the output contract. They name the output, the contract field, the type
//! expected and the type the module declared, never a value: outputs may be sensitive.

use crate::config::ContractField;
use crate::error::{Diagnose, ExitStatus};

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error(
        "Terraform output `{output}` is missing: the contract's `{field}` needs {expected}; \
         the module declares {declared}"
    )]
    Missing {
        field: ContractField,
        output: String,
        expected: &'static str,
        declared: String,
        table: String,
        /// The declared output whose name is closest, when one is close.
        closest: Option<String>,
    },

    #[error(
        "the Terraform outputs give no cluster access: the contract needs `kubeconfig` \
         (sensitive string) or `cluster_endpoint` + `cluster_ca_certificate` + \
         `cluster_token`; the module declares {declared}"
    )]
    MissingAccess { declared: String, table: String },

    #[error(
        "the Terraform outputs give both `kubeconfig` and `{endpoint_field}`: the contract \
         takes one kind of cluster access"
    )]
    AmbiguousAccess {
        endpoint_field: ContractField,
        table: String,
    },

    #[error(
        "{table} maps `{field}` to output `{output}`, which the module does not declare \
         (it declares {declared})"
    )]
    MappedOutputMissing {
        field: ContractField,
        output: String,
        declared: String,
        table: String,
        /// The declared output whose name is closest, when one is close.
        closest: Option<String>,
    },

    #[error(
        "{table} maps `{field}` to `{source_path}`, but there is no `{segment}` in {found} \
         at that path"
    )]
    MappedPathMissing {
        field: ContractField,
        source_path: String,
        segment: String,
        found: String,
        table: String,
    },

    #[error(
        "Terraform output `{source_path}` has type {found}; the contract's `{field}` needs \
         {expected}"
    )]
    WrongType {
        field: ContractField,
        source_path: String,
        expected: &'static str,
        found: String,
        table: String,
    },

    #[error(
        "Terraform output `{output}` (the contract's `{field}`) holds a secret but is not \
         marked sensitive"
    )]
    NotSensitive {
        field: ContractField,
        output: String,
    },

    #[error(
        "Terraform output `{output}` (the contract's `{field}`) is sensitive, but `{field}` \
         is written in clear ({destination})"
    )]
    SensitiveInClear {
        field: ContractField,
        output: String,
        destination: &'static str,
    },

    #[error(
        "invalid key `{key}` in the contract's `{field}`: keys must be Flux substitution \
         variable names (^[_a-zA-Z][_a-zA-Z0-9]*$)"
    )]
    InvalidKey { field: ContractField, key: String },

    #[error("key `{key}` of the contract's `{field}` collides with {other}")]
    Collision {
        field: ContractField,
        key: String,
        other: String,
    },

    #[error(
        "the module's contract_version {found} is newer than this gitops-bootstrap knows \
         (up to {supported}): upgrade gitops-bootstrap"
    )]
    FutureVersion { found: u64, supported: u32 },

    #[error(
        "the contract's `contract_version` must be a whole number from 1, in output `{output}`"
    )]
    InvalidVersion { output: String },

    #[error(
        "Terraform output `{source_path}` (the contract's `cluster_ca_certificate`) is neither \
         a PEM certificate nor base64 of one"
    )]
    InvalidCaCertificate { source_path: String },

    #[error(
        "Terraform output `{source_path}` (the contract's `cluster_endpoint`) is not an \
         https:// URL"
    )]
    InvalidEndpoint { source_path: String },

    #[error("Terraform output `{source_path}` (the contract's `cluster_name`) {reason}")]
    InvalidClusterName { source_path: String, reason: String },

    #[error(
        "the contract's `{field}` makes {object} {bytes} bytes, over Kubernetes' limit of \
         {limit} bytes per object"
    )]
    TooLarge {
        field: ContractField,
        object: &'static str,
        bytes: usize,
        limit: usize,
    },
}

/// The name among `candidates` closest to `wanted`, when it is close enough to be a typo or a
/// naming variant (`vpcid` → `vpc_id`, `cluster_nam` → `cluster_name`).
pub(super) fn closest<'a>(
    wanted: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<String> {
    // Edits over length, not a prefix score: `cluster_token` is not `cluster_endpoint`.
    const CLOSE_ENOUGH: f64 = 0.75;
    candidates
        .map(|name| (strsim::normalized_damerau_levenshtein(wanted, name), name))
        .filter(|(score, _)| *score >= CLOSE_ENOUGH)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name.to_owned())
}

impl Diagnose for ContractError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::BadInput
    }

    fn hint(&self) -> Option<String> {
        let map_or_add = |output: &str, table: &str| {
            format!(
                "add `output \"{output}\"` to the Terraform module, or map one of its outputs \
                 under {table}"
            )
        };
        Some(match self {
            ContractError::Missing {
                field,
                table,
                closest: Some(closest),
                ..
            } => format!(
                "the module declares `{closest}`: map it with `{field} = \"{closest}\"` under \
                 {table}, or add the output to the Terraform module"
            ),
            ContractError::Missing { output, table, .. } => map_or_add(output, table),
            ContractError::MissingAccess { table, .. } => map_or_add("kubeconfig", table),
            ContractError::AmbiguousAccess { table, .. } => format!(
                "remove one kind of access from the module's outputs, or map the fields you \
                 mean under {table}"
            ),
            ContractError::MappedOutputMissing {
                table,
                closest: Some(closest),
                ..
            } => format!(
                "did you mean `{closest}`? fix the mapping under {table}, or add the output to \
                 the Terraform module"
            ),
            ContractError::MappedOutputMissing { table, .. }
            | ContractError::MappedPathMissing { table, .. } => {
                format!("fix the mapping under {table}, or add the output to the Terraform module")
            }
            ContractError::WrongType { table, .. } => format!(
                "change the output's value in the Terraform module, or map another output \
                 under {table}"
            ),
            ContractError::NotSensitive { output, .. } => {
                format!("add `sensitive = true` to `output \"{output}\"` in the Terraform module")
            }
            ContractError::SensitiveInClear { output, .. } => format!(
                "if `{output}` is not secret, output it with nonsensitive(...); secret settings \
                 belong in the `cluster_secrets` output"
            ),
            ContractError::InvalidKey { .. } => {
                "rename the key: letters, digits and '_', not starting with a digit".to_owned()
            }
            ContractError::Collision { .. } => {
                "rename one of the two keys in the Terraform module's outputs".to_owned()
            }
            ContractError::FutureVersion { .. } => {
                "install a newer gitops-bootstrap release".to_owned()
            }
            ContractError::InvalidVersion { .. } => {
                "output `contract_version = 1`, or leave it out".to_owned()
            }
            ContractError::InvalidCaCertificate { .. } => {
                "output the cluster CA as PEM text or as its base64 encoding".to_owned()
            }
            ContractError::InvalidEndpoint { .. } => {
                "output the API server URL, e.g. https://203.0.113.10:6443".to_owned()
            }
            ContractError::InvalidClusterName { .. } => {
                "change the cluster's name in the Terraform module or its variables".to_owned()
            }
            ContractError::TooLarge { .. } => "keep large data out of the contract: put files \
                and certificates in Git (SOPS-encrypted when secret) and only short settings \
                in cluster_config/cluster_secrets"
                .to_owned(),
        })
    }
}
