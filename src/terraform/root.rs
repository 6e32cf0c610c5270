//! The per-environment root module: a small generated directory (in the env's state dir) that
//! calls the configured module, declares the backend, passes the variables and re-exports the
//! module's outputs. Terraform runs there, so state, `.terraform/` and the lock file live with
//! the environment and never in the module's source directory.
//!
//! An existing root (`root =` in the config) runs in place instead: its own backend, selected
//! workspace and resource addresses, no wrapper. Only the variables file and plan files go to
//! the env's state dir.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::error::TerraformError;
use super::module::{ModuleInterface, var_file_names};

/// The generated configuration, in Terraform's JSON syntax (no quoting rules to get wrong).
pub const ROOT_FILE: &str = "main.tf.json";
/// The non-secret variable values. Secret ones never touch the disk here.
pub const TFVARS_FILE: &str = "gitops-bootstrap.auto.tfvars.json";
/// Where the local backend keeps state, relative to the root directory.
pub const LOCAL_STATE_FILE: &str = "terraform.tfstate";
/// The name of the module call; resources show as `module.cluster.<address>`.
pub const MODULE_NAME: &str = "cluster";

/// Where the state of an environment is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The backend type: `local`, `s3`, `azurerm`, `gcs`, ...
    pub kind: String,
    /// Non-secret settings, passed as `-backend-config=key=value`.
    pub config: BTreeMap<String, String>,
}

impl Default for Backend {
    fn default() -> Self {
        Backend {
            kind: "local".to_owned(),
            config: BTreeMap::new(),
        }
    }
}

/// What the root module of an environment is made of.
#[derive(Debug, Clone, Default)]
pub struct RootSpec {
    pub module_dir: PathBuf,
    /// `module_dir` is a root module run where it is, with its own backend.
    pub in_place: bool,
    /// Non-secret variable values, written to the generated `*.auto.tfvars.json`.
    pub variables: BTreeMap<String, Value>,
    /// Secret variable values, given to Terraform only as `TF_VAR_<name>` in its environment.
    /// Terraform reads them as it reads any `TF_VAR_`: a plain string for `string` variables,
    /// an HCL/JSON literal (`{"a" = "b"}`) for complex types.
    pub secret_variables: BTreeMap<String, SecretString>,
    /// Forwarded as `-var-file`; only their variable names are read here.
    pub var_files: Vec<PathBuf>,
    pub backend: Backend,
}

/// A generated root module, ready for `init`.
#[derive(Debug)]
pub struct EnvRoot {
    /// Where Terraform runs: the generated root, or the existing root in place.
    dir: PathBuf,
    /// The env's own directory, for plan files and the variables of an in-place root.
    work_dir: PathBuf,
    module: ModuleInterface,
    var_files: Vec<PathBuf>,
    backend: Backend,
    secret_env: Vec<(String, SecretString)>,
}

impl EnvRoot {
    /// Writes (or rewrites) the root module into `dir`, creating it with mode 0700 since the
    /// local state kept there holds secrets. Validates the variables against the module first.
    pub fn prepare(dir: &Path, spec: &RootSpec) -> Result<EnvRoot, TerraformError> {
        let write_error = |source| TerraformError::WriteRoot {
            path: dir.to_path_buf(),
            source,
        };
        let module_dir = std::path::absolute(&spec.module_dir)
            .and_then(|path| path.canonicalize())
            .map_err(|source| TerraformError::ReadModule {
                path: spec.module_dir.clone(),
                source,
            })?;
        let module = ModuleInterface::read(&module_dir)?;
        let var_files = absolute_var_files(&spec.var_files)?;
        let declared = declared_variables(&module_dir, &module, spec, &var_files)?;

        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(write_error)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(write_error)?;
        let work_dir = dir.canonicalize().map_err(write_error)?;
        let tfvars_path = work_dir.join(TFVARS_FILE);
        let (dir, backend, var_files) = if spec.in_place {
            let backend = Backend {
                kind: module.backend.clone().unwrap_or_else(|| "local".to_owned()),
                config: BTreeMap::new(),
            };
            // First, so the config's own var files can override what it sets.
            let generated = (!spec.variables.is_empty()).then(|| tfvars_path.clone());
            let var_files = generated.into_iter().chain(var_files).collect();
            (module_dir.clone(), backend, var_files)
        } else {
            if let Some(kind) = &module.backend {
                return Err(TerraformError::BackendInModule {
                    module: module_dir,
                    kind: kind.clone(),
                });
            }
            tighten_state_files(&work_dir, &spec.backend).map_err(write_error)?;
            let source = module_source(&work_dir, &module_dir);
            let root = root_config(&source, &module, &declared, spec);
            write_json(&work_dir.join(ROOT_FILE), &root).map_err(write_error)?;
            (work_dir.clone(), spec.backend.clone(), var_files)
        };
        if spec.variables.is_empty() {
            match std::fs::remove_file(&tfvars_path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(write_error(err));
                }
                _ => {}
            }
        } else {
            write_json(&tfvars_path, &json!(spec.variables)).map_err(write_error)?;
        }

        let secret_env = spec
            .secret_variables
            .iter()
            .map(|(name, value)| (format!("TF_VAR_{name}"), value.clone()))
            .collect();
        Ok(EnvRoot {
            dir,
            work_dir,
            module,
            var_files,
            backend,
            secret_env,
        })
    }

    /// The directory Terraform runs in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The env's own directory in the state dir: plan files go there, never into a root that
    /// runs in place.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The configured module's variables and outputs.
    pub fn module(&self) -> &ModuleInterface {
        &self.module
    }

    /// The local state file, when the backend is `local`.
    pub fn local_state_file(&self) -> Option<PathBuf> {
        local_state_file(&self.dir, &self.backend)
    }

    pub(crate) fn var_files(&self) -> &[PathBuf] {
        &self.var_files
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    pub(crate) fn secret_env(&self) -> &[(String, SecretString)] {
        &self.secret_env
    }
}

/// Where a root directory keeps its state when the backend is `local` (`path` may move it).
/// Local state written before Terraform ran under our umask (or by hand) may be readable by
/// others: it holds sensitive outputs in clear, so it becomes 0600 with its backup.
fn tighten_state_files(dir: &Path, backend: &Backend) -> std::io::Result<()> {
    let Some(state) = local_state_file(dir, backend) else {
        return Ok(());
    };
    let mut backup = state.clone().into_os_string();
    backup.push(".backup");
    for file in [state, PathBuf::from(backup)] {
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

pub fn local_state_file(dir: &Path, backend: &Backend) -> Option<PathBuf> {
    (backend.kind == "local").then(|| {
        let path = backend
            .config
            .get("path")
            .map_or(Path::new(LOCAL_STATE_FILE), Path::new);
        dir.join(path)
    })
}

fn absolute_var_files(files: &[PathBuf]) -> Result<Vec<PathBuf>, TerraformError> {
    files
        .iter()
        .map(|file| {
            std::path::absolute(file).map_err(|source| TerraformError::ReadVarFile {
                path: file.clone(),
                source,
            })
        })
        .collect()
}

/// The variables the root declares: every one the config sets, checked against the module.
fn declared_variables(
    module_dir: &Path,
    module: &ModuleInterface,
    spec: &RootSpec,
    var_files: &[PathBuf],
) -> Result<BTreeSet<String>, TerraformError> {
    if let Some(name) = spec
        .variables
        .keys()
        .find(|name| spec.secret_variables.contains_key(*name))
    {
        return Err(TerraformError::VariableSetTwice { name: name.clone() });
    }
    let mut declared: BTreeSet<String> = spec
        .variables
        .keys()
        .chain(spec.secret_variables.keys())
        .cloned()
        .collect();
    for file in var_files {
        declared.extend(var_file_names(file)?);
    }
    let unknown: Vec<String> = declared
        .iter()
        .filter(|name| !module.variables.contains_key(*name))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(TerraformError::UnknownVariables {
            module: module_dir.to_path_buf(),
            names: unknown,
        });
    }
    let missing: Vec<String> = module
        .variables
        .iter()
        .filter(|(name, decl)| decl.required && !declared.contains(*name))
        .map(|(name, _)| name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(TerraformError::MissingVariables {
            module: module_dir.to_path_buf(),
            names: missing,
        });
    }
    Ok(declared)
}

/// The generated root configuration (Terraform JSON syntax).
fn root_config(
    source: &str,
    module: &ModuleInterface,
    declared: &BTreeSet<String>,
    spec: &RootSpec,
) -> Value {
    let mut variables = Map::new();
    let mut module_call = Map::new();
    module_call.insert("source".into(), json!(source));
    for name in declared {
        let decl = &module.variables[name];
        let mut variable = Map::new();
        if let Some(type_expr) = &decl.type_expr {
            variable.insert("type".into(), json!(type_expr));
        }
        if decl.sensitive || spec.secret_variables.contains_key(name) {
            variable.insert("sensitive".into(), json!(true));
        }
        variables.insert(name.clone(), Value::Object(variable));
        module_call.insert(name.clone(), json!(format!("${{var.{name}}}")));
    }
    let outputs: Map<String, Value> = module
        .outputs
        .iter()
        .map(|(name, decl)| {
            let output = json!({
                "value": format!("${{module.{MODULE_NAME}.{name}}}"),
                "sensitive": decl.sensitive,
            });
            (name.clone(), output)
        })
        .collect();
    let mut root = Map::new();
    root.insert(
        "//".into(),
        json!("Generated by gitops-bootstrap for one environment; rewritten on every run."),
    );
    root.insert(
        "terraform".into(),
        json!({ "backend": { spec.backend.kind.clone(): {} } }),
    );
    if !variables.is_empty() {
        root.insert("variable".into(), Value::Object(variables));
    }
    root.insert("module".into(), json!({ MODULE_NAME: module_call }));
    if !outputs.is_empty() {
        root.insert("output".into(), Value::Object(outputs));
    }
    Value::Object(root)
}

/// A `./`- or `../`-relative source: Terraform uses such local paths in place, whereas an
/// absolute path is copied into `.terraform/modules` and not refreshed when the module changes.
fn module_source(root_dir: &Path, module_dir: &Path) -> String {
    let root: Vec<Component> = root_dir.components().collect();
    let module: Vec<Component> = module_dir.components().collect();
    let common = root.iter().zip(&module).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..root.len() {
        relative.push("..");
    }
    relative.extend(&module[common..]);
    let relative = relative.to_string_lossy().into_owned();
    if relative.starts_with("..") {
        relative
    } else if relative.is_empty() {
        ".".to_owned()
    } else {
        format!("./{relative}")
    }
}

fn write_json(path: &Path, value: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    text.push('\n');
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Diagnose as _;
    use secrecy::ExposeSecret;

    const MODULE: &str = r#"
variable "cluster_name" {
  type = string
}
variable "size" {
  type    = number
  default = 1
}
variable "token" {
  type    = string
  default = ""
}
variable "cluster_secrets" {
  type      = map(string)
  default   = {}
  sensitive = true
}
output "cluster_name" {
  value = var.cluster_name
}
output "kubeconfig" {
  value     = "x"
  sensitive = true
}
"#;

    fn module_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tf"), MODULE).unwrap();
        dir
    }

    fn spec(module: &Path) -> RootSpec {
        RootSpec {
            module_dir: module.to_path_buf(),
            variables: BTreeMap::from([("cluster_name".to_owned(), json!("dev"))]),
            secret_variables: BTreeMap::from([(
                "token".to_owned(),
                SecretString::from("canary-7f3a"),
            )]),
            ..RootSpec::default()
        }
    }

    fn read_json(path: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Issue 8 item 10: a backend block in a module was silently ignored.
    #[test]
    fn a_module_with_a_backend_is_refused_and_a_root_runs_in_place() {
        let module = module_dir();
        std::fs::write(
            module.path().join("backend.tf"),
            "terraform {\n  backend \"local\" {\n    path = \"own.tfstate\"\n  }\n}\n",
        )
        .unwrap();
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("dev/terraform");
        let err = EnvRoot::prepare(&dir, &spec(module.path())).unwrap_err();
        assert!(
            matches!(err, TerraformError::BackendInModule { .. }),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("root = "), "{:?}", err.hint());
        assert!(!dir.join(ROOT_FILE).exists());

        let in_place = RootSpec {
            in_place: true,
            ..spec(module.path())
        };
        let root = EnvRoot::prepare(&dir, &in_place).unwrap();
        assert_eq!(root.dir(), module.path().canonicalize().unwrap());
        assert_eq!(root.work_dir(), dir.canonicalize().unwrap());
        assert_eq!(root.backend().kind, "local");
        assert!(!dir.join(ROOT_FILE).exists(), "no generated root");
        let tfvars = dir.canonicalize().unwrap().join(TFVARS_FILE);
        assert_eq!(root.var_files(), std::slice::from_ref(&tfvars));
        assert_eq!(read_json(&tfvars), json!({"cluster_name": "dev"}));
        let files: Vec<_> = std::fs::read_dir(module.path()).unwrap().collect();
        assert_eq!(files.len(), 2, "nothing written into the root");
    }

    #[test]
    fn root_calls_the_module_and_reexports_outputs_with_sensitivity() {
        let module = module_dir();
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("dev/terraform");
        let root = EnvRoot::prepare(&dir, &spec(module.path())).unwrap();

        let config = read_json(&dir.join(ROOT_FILE));
        assert_eq!(config["terraform"], json!({"backend": {"local": {}}}));
        let call = &config["module"]["cluster"];
        let source = call["source"].as_str().unwrap();
        assert!(source.starts_with("../"), "{source}");
        assert_eq!(
            dir.join(source).canonicalize().unwrap(),
            module.path().canonicalize().unwrap()
        );
        assert_eq!(call["cluster_name"], "${var.cluster_name}");
        assert_eq!(call["token"], "${var.token}");
        assert!(
            call.get("size").is_none(),
            "unset variables keep the module default"
        );
        assert_eq!(
            config["variable"]["token"],
            json!({"type": "string", "sensitive": true})
        );
        assert_eq!(
            config["variable"]["cluster_name"],
            json!({"type": "string"})
        );
        assert_eq!(
            config["output"]["kubeconfig"],
            json!({"value": "${module.cluster.kubeconfig}", "sensitive": true})
        );
        assert_eq!(config["output"]["cluster_name"]["sensitive"], false);

        assert_eq!(
            read_json(&dir.join(TFVARS_FILE)),
            json!({"cluster_name": "dev"})
        );
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(root.secret_env().len(), 1);
        assert_eq!(root.secret_env()[0].0, "TF_VAR_token");
        assert_eq!(root.secret_env()[0].1.expose_secret(), "canary-7f3a");
        assert_eq!(
            root.local_state_file(),
            Some(root.dir().join(LOCAL_STATE_FILE))
        );
    }

    #[test]
    fn secrets_never_reach_the_disk_and_nothing_is_written_into_the_module() {
        let module = module_dir();
        let state = tempfile::tempdir().unwrap();
        EnvRoot::prepare(state.path(), &spec(module.path())).unwrap();
        for entry in std::fs::read_dir(state.path()).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            assert!(!text.contains("canary-7f3a"));
        }
        let module_files: Vec<_> = std::fs::read_dir(module.path()).unwrap().collect();
        assert_eq!(module_files.len(), 1);
    }

    #[test]
    fn remote_backends_are_declared_empty_and_have_no_local_state() {
        let module = module_dir();
        let state = tempfile::tempdir().unwrap();
        let mut spec = spec(module.path());
        spec.backend = Backend {
            kind: "s3".into(),
            config: BTreeMap::from([("bucket".into(), "tf-state".into())]),
        };
        spec.variables.clear();
        spec.secret_variables.clear();
        spec.var_files = vec![state.path().join("in.tfvars")];
        std::fs::write(&spec.var_files[0], "cluster_name = \"dev\"\n").unwrap();
        let root = EnvRoot::prepare(&state.path().join("root"), &spec).unwrap();
        let config = read_json(&root.dir().join(ROOT_FILE));
        assert_eq!(config["terraform"], json!({"backend": {"s3": {}}}));
        assert_eq!(
            config["variable"]["cluster_name"],
            json!({"type": "string"})
        );
        assert!(!root.dir().join(TFVARS_FILE).exists());
        assert_eq!(root.local_state_file(), None);
    }

    #[test]
    fn variables_are_checked_against_the_module() {
        let module = module_dir();
        let state = tempfile::tempdir().unwrap();
        let mut unknown = spec(module.path());
        unknown.variables.insert("colour".into(), json!("blue"));
        let err = EnvRoot::prepare(state.path(), &unknown).unwrap_err();
        assert!(
            matches!(&err, TerraformError::UnknownVariables { names, .. } if names == &["colour"])
        );

        let mut missing = spec(module.path());
        missing.variables.clear();
        let err = EnvRoot::prepare(state.path(), &missing).unwrap_err();
        assert!(
            matches!(&err, TerraformError::MissingVariables { names, .. } if names == &["cluster_name"])
        );

        let mut twice = spec(module.path());
        twice.variables.insert("token".into(), json!("plain"));
        let err = EnvRoot::prepare(state.path(), &twice).unwrap_err();
        assert_eq!(
            err.to_string(),
            "variable token is set both as a secret and as a plain value"
        );
        assert!(!err.to_string().contains("canary"));
    }

    #[test]
    fn module_sources_are_relative_local_paths() {
        assert_eq!(
            module_source(
                Path::new("/s/.gb/dev/terraform"),
                Path::new("/s/terraform/existing")
            ),
            "../../../terraform/existing"
        );
        assert_eq!(module_source(Path::new("/a"), Path::new("/a/mod")), "./mod");
        assert_eq!(module_source(Path::new("/a/b"), Path::new("/a/b")), ".");
    }
}
