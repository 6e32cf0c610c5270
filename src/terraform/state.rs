//! What a state holds, without its values: whether it exists, how many resources it tracks,
//! and which outputs are sensitive. Read from `terraform state pull` (the root's own backend
//! and workspace), or from a local state file.

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
        StateInfo::parse(&text).map_err(read_error)
    }

    /// Parses a state document; empty text is "no state" (what `state pull` prints then).
    /// The error is a position, never a quote of the (secret) text.
    pub fn parse(text: &secrecy::SecretString) -> Result<StateInfo, String> {
        let text = secrecy::ExposeSecret::expose_secret(text);
        if text.trim().is_empty() {
            return Ok(StateInfo::default());
        }
        let state: RawState =
            serde_json::from_str(text).map_err(|err| json_error_position(&err))?;
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

        let pulled_nothing = secrecy::SecretString::from("\n".to_owned());
        assert_eq!(StateInfo::parse(&pulled_nothing), Ok(StateInfo::default()));
    }
}
