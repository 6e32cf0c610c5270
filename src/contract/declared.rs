//! The contract checked against a module's declared outputs before anything is applied: every
//! mapped output exists, `cluster_name` and one kind of access are declared, and each output is
//! marked sensitive exactly when the contract needs it. Types and values can only be checked
//! after apply ([`super::Contract::parse`]); this part fails in seconds instead of after one.

use std::collections::BTreeMap;

use super::error::{ContractError, closest};
use super::outputs::Sensitivity;
use super::{CONFIG_MAP, CONNECTION};
use crate::config::{ContractField, OutputMapping};

/// The access the declared outputs give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredAccess {
    Kubeconfig,
    Endpoint,
}

impl DeclaredAccess {
    pub fn name(self) -> &'static str {
        match self {
            DeclaredAccess::Kubeconfig => "kubeconfig",
            DeclaredAccess::Endpoint => "endpoint",
        }
    }
}

/// What each contract field must be.
const FIELDS: [(ContractField, Sensitivity); 10] = [
    (ContractField::ClusterName, CONFIG_MAP),
    (ContractField::Kubeconfig, Sensitivity::Secret),
    (ContractField::ClusterEndpoint, CONNECTION),
    (ContractField::ClusterCaCertificate, CONNECTION),
    (ContractField::ClusterToken, Sensitivity::Secret),
    (ContractField::ClusterExec, CONNECTION),
    (ContractField::Network, CONFIG_MAP),
    (ContractField::ClusterConfig, CONFIG_MAP),
    (ContractField::ClusterSecrets, Sensitivity::Secret),
    (ContractField::ContractVersion, CONNECTION),
];

/// Endpoint access: both of these, and a token or a credential plugin.
const ENDPOINT_FIELDS: [ContractField; 2] = [
    ContractField::ClusterEndpoint,
    ContractField::ClusterCaCertificate,
];
const CREDENTIAL_FIELDS: [ContractField; 2] =
    [ContractField::ClusterToken, ContractField::ClusterExec];

/// Checks the module's outputs (name → declared `sensitive`) against the contract and the
/// env's mapping.
pub fn check_declared(
    declared: &BTreeMap<String, bool>,
    mapping: &OutputMapping,
) -> Result<DeclaredAccess, ContractError> {
    let listing = describe(declared);
    let suggest = |output: &str| closest(output, declared.keys().map(String::as_str));
    for (_, field, source) in mapping.refs() {
        if !declared.contains_key(&source.output) {
            return Err(ContractError::MappedOutputMissing {
                field,
                output: source.output.clone(),
                declared: listing,
                table: mapping.table(),
                closest: suggest(&source.output),
            });
        }
    }
    let is_declared = |field: ContractField| declared.contains_key(&mapping.source(field).output);
    let missing = |field: ContractField| {
        let output = mapping.source(field).output;
        ContractError::Missing {
            field,
            closest: suggest(&output),
            output,
            expected: match field {
                ContractField::ClusterToken => "a sensitive string",
                _ => "a string",
            },
            declared: listing.clone(),
            table: mapping.table(),
        }
    };
    if !is_declared(ContractField::ClusterName) {
        return Err(missing(ContractField::ClusterName));
    }
    let access = if is_declared(ContractField::Kubeconfig) {
        DeclaredAccess::Kubeconfig
    } else if ENDPOINT_FIELDS
        .into_iter()
        .chain(CREDENTIAL_FIELDS)
        .any(is_declared)
    {
        if let Some(absent) = ENDPOINT_FIELDS.into_iter().find(|f| !is_declared(*f)) {
            return Err(missing(absent));
        }
        if !CREDENTIAL_FIELDS.into_iter().any(is_declared) {
            return Err(missing(ContractField::ClusterToken));
        }
        DeclaredAccess::Endpoint
    } else {
        return Err(ContractError::MissingAccess {
            declared: listing,
            table: mapping.table(),
        });
    };
    check_sensitivity(declared, mapping)?;
    Ok(access)
}

/// Secrets must be declared sensitive; what is written in clear must not be.
fn check_sensitivity(
    declared: &BTreeMap<String, bool>,
    mapping: &OutputMapping,
) -> Result<(), ContractError> {
    for (field, sensitivity) in FIELDS {
        let sources = match (field, mapping.assembled_cluster_config()) {
            (ContractField::ClusterConfig, Some(keys)) => keys.values().cloned().collect(),
            _ => vec![mapping.source(field)],
        };
        for source in sources {
            let Some(&sensitive) = declared.get(&source.output) else {
                continue;
            };
            match sensitivity {
                Sensitivity::Secret if !sensitive => {
                    return Err(ContractError::NotSensitive {
                        field,
                        output: source.output,
                    });
                }
                Sensitivity::Clear(destination) if sensitive => {
                    return Err(ContractError::SensitiveInClear {
                        field,
                        output: source.output,
                        destination,
                    });
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn describe(declared: &BTreeMap<String, bool>) -> String {
    if declared.is_empty() {
        return "no outputs".to_owned();
    }
    let listed: Vec<String> = declared
        .iter()
        .map(|(name, sensitive)| {
            if *sensitive {
                format!("`{name}` (sensitive)")
            } else {
                format!("`{name}`")
            }
        })
        .collect();
    listed.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputRef;
    use crate::error::Diagnose as _;

    fn declared(outputs: &[(&str, bool)]) -> BTreeMap<String, bool> {
        outputs
            .iter()
            .map(|(name, sensitive)| ((*name).to_owned(), *sensitive))
            .collect()
    }

    /// Output names of the public EKS module, mapped.
    fn eks_mapping() -> OutputMapping {
        let fields = [
            (ContractField::ClusterEndpoint, "cluster_endpoint"),
            (
                ContractField::ClusterCaCertificate,
                "cluster_certificate_authority_data",
            ),
        ]
        .into_iter()
        .map(|(field, output)| (field, OutputRef::new(output, "")))
        .collect();
        OutputMapping::new("prod", fields)
    }

    fn eks() -> BTreeMap<String, bool> {
        declared(&[
            ("cluster_name", false),
            ("cluster_endpoint", false),
            ("cluster_certificate_authority_data", false),
            ("cluster_token", true),
            ("vpc_id", false),
        ])
    }

    #[test]
    fn a_module_that_declares_the_contract_passes() {
        let access = check_declared(&eks(), &eks_mapping()).unwrap();
        assert_eq!(access, DeclaredAccess::Endpoint);
        let kubeconfig = declared(&[("cluster_name", false), ("kubeconfig", true)]);
        let access = check_declared(&kubeconfig, &OutputMapping::default()).unwrap();
        assert_eq!(access, DeclaredAccess::Kubeconfig);
    }

    #[test]
    fn a_module_with_no_outputs_fails_naming_what_is_missing() {
        let err = check_declared(&BTreeMap::new(), &OutputMapping::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`cluster_name` is missing"), "{text}");
        assert!(text.contains("declares no outputs"), "{text}");
    }

    #[test]
    fn a_missing_output_suggests_the_closest_declared_name() {
        let mut outputs = eks();
        outputs.remove("cluster_name");
        outputs.insert("cluster_nam".to_owned(), false);
        let err = check_declared(&outputs, &eks_mapping()).unwrap_err();
        assert!(
            err.hint().unwrap().contains("`cluster_nam`"),
            "{:?}",
            err.hint()
        );

        let mut typo = eks_mapping().with_assembled_cluster_config(
            [("vpc".to_owned(), OutputRef::new("vpcid", ""))].into(),
        );
        let err = check_declared(&eks(), &typo).unwrap_err();
        assert!(err.to_string().contains("output `vpcid`"), "{err}");
        assert!(
            err.hint().unwrap().contains("did you mean `vpc_id`"),
            "{:?}",
            err.hint()
        );
        typo = eks_mapping()
            .with_assembled_cluster_config([("vpc".to_owned(), OutputRef::new("zzz", ""))].into());
        let err = check_declared(&eks(), &typo).unwrap_err();
        assert!(
            !err.hint().unwrap().contains("did you mean"),
            "{:?}",
            err.hint()
        );
    }

    #[test]
    fn half_of_the_endpoint_access_is_missing_access() {
        let mut outputs = eks();
        outputs.remove("cluster_token");
        let err = check_declared(&outputs, &eks_mapping()).unwrap_err();
        assert!(
            err.to_string()
                .contains("output `cluster_token` is missing"),
            "{err}"
        );
    }

    #[test]
    fn a_credential_plugin_stands_in_for_the_token() {
        let mut outputs = eks();
        outputs.remove("cluster_token");
        outputs.insert("cluster_exec".to_owned(), false);
        assert_eq!(
            check_declared(&outputs, &eks_mapping()).unwrap(),
            DeclaredAccess::Endpoint
        );
    }

    #[test]
    fn sensitivity_is_checked_from_the_declarations() {
        let mut outputs = eks();
        outputs.insert("cluster_token".to_owned(), false);
        let err = check_declared(&outputs, &eks_mapping()).unwrap_err();
        assert!(matches!(err, ContractError::NotSensitive { .. }), "{err}");
        let mut outputs = eks();
        outputs.insert("vpc_id".to_owned(), true);
        let assembled = eks_mapping().with_assembled_cluster_config(
            [("vpc".to_owned(), OutputRef::new("vpc_id", ""))].into(),
        );
        let err = check_declared(&outputs, &assembled).unwrap_err();
        assert!(
            matches!(err, ContractError::SensitiveInClear { .. }),
            "{err}"
        );
    }
}
