//! The interface of a Terraform module (its variables and outputs), read from its `*.tf` files
//! with hcl-rs, and the variable names a var file sets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl::{Body, Expression};

use super::error::TerraformError;

/// A module's variables and outputs, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleInterface {
    pub variables: BTreeMap<String, VariableDecl>,
    pub outputs: BTreeMap<String, OutputDecl>,
    /// The type of the `backend` block in its `terraform` block (`s3`, `local`), if it has one.
    pub backend: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariableDecl {
    /// The `type` constraint as HCL text (`map(string)`), when declared.
    pub type_expr: Option<String>,
    pub sensitive: bool,
    /// No `default`: a value must be given.
    pub required: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputDecl {
    pub sensitive: bool,
    /// What the `value` is, as far as it can be known without running Terraform.
    pub value: OutputValue,
    /// `command = "<literal>"` in an object literal value: a credential plugin's command
    /// (`cluster_exec`), known before any apply.
    pub command: Option<String>,
}

/// The shape of an output's `value` expression, for lint's offline view of the map keys an
/// output (`cluster_config`, `network`) will hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OutputValue {
    /// An object literal with these keys.
    ObjectKeys(Vec<String>),
    /// `var.<name>`: the module passes a variable through.
    Variable(String),
    /// Anything else: known only after apply.
    #[default]
    Computed,
}

impl OutputValue {
    fn of(expr: Option<&Expression>) -> OutputValue {
        match expr {
            Some(Expression::Object(object)) => OutputValue::ObjectKeys(
                object
                    .keys()
                    .map(|key| match key {
                        hcl::ObjectKey::Identifier(name) => name.to_string(),
                        hcl::ObjectKey::Expression(expr) => {
                            expr.to_string().trim_matches('"').to_owned()
                        }
                        _ => String::new(),
                    })
                    .collect(),
            ),
            Some(Expression::Traversal(traversal)) => {
                match (&traversal.expr, traversal.operators.as_slice()) {
                    (Expression::Variable(root), [hcl::expr::TraversalOperator::GetAttr(name)])
                        if root.as_str() == "var" =>
                    {
                        OutputValue::Variable(name.to_string())
                    }
                    _ => OutputValue::Computed,
                }
            }
            _ => OutputValue::Computed,
        }
    }
}

impl ModuleInterface {
    /// Reads every `*.tf` file directly in `dir` (Terraform ignores subdirectories too).
    pub fn read(dir: &Path) -> Result<Self, TerraformError> {
        let read_error = |source| TerraformError::ReadModule {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_error)?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "tf") && path.is_file())
            .collect();
        if files.is_empty() {
            return Err(TerraformError::EmptyModule {
                path: dir.to_path_buf(),
            });
        }
        files.sort();
        let mut interface = ModuleInterface::default();
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|source| TerraformError::ReadModule {
                    path: file.clone(),
                    source,
                })?;
            let body = hcl::parse(&text).map_err(|err| TerraformError::ParseHcl {
                path: file.clone(),
                message: err.to_string(),
            })?;
            interface.add_declarations(&body);
        }
        Ok(interface)
    }

    fn add_declarations(&mut self, body: &Body) {
        for block in body
            .blocks()
            .filter(|block| block.identifier() == "terraform")
        {
            let backend = block
                .body()
                .blocks()
                .find(|inner| inner.identifier() == "backend")
                .and_then(|backend| backend.labels().first());
            if let Some(kind) = backend {
                self.backend = Some(kind.as_str().to_owned());
            }
        }
        for block in body.blocks() {
            let Some(name) = block
                .labels()
                .first()
                .map(|label| label.as_str().to_owned())
            else {
                continue;
            };
            let attribute = |key: &str| {
                block
                    .body()
                    .attributes()
                    .find(|attr| attr.key() == key)
                    .map(|attr| attr.expr())
            };
            let sensitive = matches!(attribute("sensitive"), Some(Expression::Bool(true)));
            match block.identifier() {
                "variable" => {
                    let decl = VariableDecl {
                        type_expr: attribute("type").map(ToString::to_string),
                        sensitive,
                        required: attribute("default").is_none(),
                    };
                    self.variables.insert(name, decl);
                }
                "output" => {
                    let decl = OutputDecl {
                        sensitive,
                        value: OutputValue::of(attribute("value")),
                        command: literal_command(attribute("value")),
                    };
                    self.outputs.insert(name, decl);
                }
                _ => {}
            }
        }
    }
}

fn literal_command(value: Option<&Expression>) -> Option<String> {
    let Some(Expression::Object(object)) = value else {
        return None;
    };
    object.iter().find_map(|(key, value)| match (key, value) {
        (hcl::ObjectKey::Identifier(key), Expression::String(command))
            if key.as_str() == "command" =>
        {
            Some(command.clone())
        }
        _ => None,
    })
}

/// The variable names a `-var-file` sets (`.tfvars` is HCL, `.tfvars.json` is JSON). Only the
/// names are read: the values may be secret and stay in the file.
pub fn var_file_names(path: &Path) -> Result<Vec<String>, TerraformError> {
    let text = std::fs::read_to_string(path).map_err(|source| TerraformError::ReadVarFile {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_error = |message: String| TerraformError::ParseHcl {
        path: path.to_path_buf(),
        message,
    };
    if path.to_string_lossy().ends_with(".json") {
        let names: BTreeMap<String, serde::de::IgnoredAny> = serde_json::from_str(&text)
            .map_err(|err| parse_error(super::plan::json_error_position(&err)))?;
        Ok(names.into_keys().collect())
    } else {
        let body = hcl::parse(&text).map_err(|err| parse_error(hcl_error_position(&err)))?;
        Ok(body
            .attributes()
            .map(|attr| attr.key().to_owned())
            .collect())
    }
}

/// hcl-rs parse errors show the offending line; for var files that line may hold a secret.
fn hcl_error_position(err: &hcl::Error) -> String {
    match err {
        hcl::Error::Parse(parse) => format!(
            "syntax error at line {} column {}",
            parse.location().line(),
            parse.location().column()
        ),
        _ => "not valid HCL".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"
variable "cluster_name" {
  type = string
}
variable "cluster_secrets" {
  type      = map(string)
  default   = {}
  sensitive = true
}
variable "network" {
  type = object({ vpc_id = string, subnets = list(string) })
  default = null
}
output "kubeconfig" {
  value     = "x"
  sensitive = true
}
output "cluster_name" {
  value = var.cluster_name
}
resource "terraform_data" "x" {}
terraform {
  backend "s3" {
    key = "prod.tfstate"
  }
}
"#;

    #[test]
    fn variables_and_outputs_are_read_with_types_and_sensitivity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tf"), MODULE).unwrap();
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        std::fs::write(dir.path().join("nested/x.tf"), "output \"ignored\" {}").unwrap();
        let module = ModuleInterface::read(dir.path()).unwrap();

        let name = &module.variables["cluster_name"];
        assert_eq!(name.type_expr.as_deref(), Some("string"));
        assert!(name.required && !name.sensitive);
        let secrets = &module.variables["cluster_secrets"];
        assert_eq!(secrets.type_expr.as_deref(), Some("map(string)"));
        assert!(secrets.sensitive && !secrets.required);
        let network_type = module.variables["network"].type_expr.clone().unwrap();
        assert!(network_type.starts_with("object("), "{network_type}");
        assert!(network_type.contains("list(string)"), "{network_type}");

        assert!(module.outputs["kubeconfig"].sensitive);
        assert!(!module.outputs["cluster_name"].sensitive);
        assert_eq!(module.outputs.len(), 2);
        assert_eq!(module.backend.as_deref(), Some("s3"));
    }

    #[test]
    fn a_directory_without_tf_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = ModuleInterface::read(dir.path()).unwrap_err();
        assert!(matches!(err, TerraformError::EmptyModule { .. }), "{err}");
    }

    #[test]
    fn var_files_give_names_never_values() {
        let dir = tempfile::tempdir().unwrap();
        let hcl_file = dir.path().join("env.tfvars");
        std::fs::write(&hcl_file, "region = \"eu\"\nsizes = { a = 1 }\n").unwrap();
        assert_eq!(var_file_names(&hcl_file).unwrap(), ["region", "sizes"]);
        let json_file = dir.path().join("env.tfvars.json");
        std::fs::write(&json_file, r#"{"token": "canary", "zone": "b"}"#).unwrap();
        assert_eq!(var_file_names(&json_file).unwrap(), ["token", "zone"]);

        let broken = dir.path().join("broken.tfvars");
        std::fs::write(&broken, "token = \"canary-secret\n").unwrap();
        let err = var_file_names(&broken).unwrap_err().to_string();
        assert!(!err.contains("canary"), "{err}");
    }
}
