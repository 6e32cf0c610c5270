//! What a local state file holds, without its values: whether it exists, how many resources
//! it tracks, and which outputs are sensitive (`doctor` warns when CI keeps such state).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::error::TerraformError;
use super::plan::json_error_position;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StateInfo {
    pub exists: bool,
    pub resources: usize,
    /// Names of outputs Terraform stored as sensitive (their values are in the file in clear).
    pub sensitive_outputs: Vec<String>,
}

impl StateInfo {
    /// Reads a local state file; a missing file is a normal "no state yet".
    pub fn read(path: &Path) -> Result<StateInfo, TerraformError> {
        let read_error = |reason: String| TerraformError::ReadState {
            path: path.to_path_buf(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => secrecy::SecretString::from(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StateInfo::default());
            }
            Err(err) => return Err(read_error(err.to_string())),
        };
        let state: RawState = serde_json::from_str(secrecy::ExposeSecret::expose_secret(&text))
            .map_err(|err| read_error(json_error_position(&err)))?;
        Ok(StateInfo {
            exists: true,
            resources: state.resources.len(),
            sensitive_outputs: state
                .outputs
                .into_iter()
                .filter(|(_, output)| output.sensitive)
                .map(|(name, _)| name)
                .collect(),
        })
    }
}

#[derive(Deserialize)]
struct RawState {
    #[serde(default)]
    outputs: BTreeMap<String, RawOutput>,
    #[serde(default)]
    resources: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawOutput {
    #[serde(default)]
    sensitive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_outputs_are_named_and_values_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("terraform.tfstate");
        assert_eq!(StateInfo::read(&path).unwrap(), StateInfo::default());

        std::fs::write(
            &path,
            r#"{"version":4,"outputs":{
                "kubeconfig":{"value":"canary","type":"string","sensitive":true},
                "cluster_name":{"value":"dev","type":"string"}},
              "resources":[{"mode":"managed","type":"terraform_data","name":"x"}]}"#,
        )
        .unwrap();
        let info = StateInfo::read(&path).unwrap();
        assert!(info.exists);
        assert_eq!(info.resources, 1);
        assert_eq!(info.sensitive_outputs, ["kubeconfig"]);

        std::fs::write(&path, r#"{"outputs": {"kubeconfig": "canary"}}"#).unwrap();
        let err = StateInfo::read(&path).unwrap_err().to_string();
        assert!(!err.contains("canary"), "{err}");
    }
}
