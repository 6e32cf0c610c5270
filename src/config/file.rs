//! The config file as written: what serde reads and what the JSON schema describes. The loader
//! turns it into [`super::Config`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::outputs::OutputMapping;
use super::types::{BackendConfig, FluxConfig, RepositoryConfig, TerraformConfig};

/// gitops-bootstrap configuration (`gitops-bootstrap.toml`). Relative paths are relative to
/// this file's directory. It never holds secret values, only the names of the environment
/// variables that do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "gitops-bootstrap configuration")]
pub(super) struct ConfigFile {
    /// Where per-env state lives. Default `.gitops-bootstrap`.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub terraform: TerraformConfig,
    /// The repository of every env that has no `repository` of its own.
    #[serde(default)]
    pub repository: Option<RepositoryConfig>,
    /// The environments, by name (DNS-1123 labels).
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" }))]
    pub envs: BTreeMap<String, EnvFile>,
}

/// `[envs.<name>]`: one environment.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Env")]
pub(super) struct EnvFile {
    /// The Terraform module directory: the tool generates a root module calling it, with the
    /// backend of `backend`. Give this or `root`.
    #[serde(default)]
    pub module: Option<PathBuf>,
    /// An existing Terraform root module, run in place with its own backend, selected workspace
    /// and resource addresses. Give this or `module`.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// The profile the env runs: a directory under the repository's `profiles_dir`.
    #[schemars(pattern(r"^[A-Za-z0-9._-]+$"))]
    pub profile: String,
    /// The Flux release to install, e.g. `v2.10.0`. Default: a release inside Flux's support
    /// window (its last three minor releases) when this version of the tool was made.
    #[serde(default)]
    #[schemars(pattern(r"^v2\.[0-9]+\.[0-9]+$"))]
    pub flux_version: Option<String>,
    /// How Flux is installed: `[envs.<env>.flux] install = "components" | "operator"`.
    #[serde(default)]
    pub flux: FluxConfig,
    /// Flux's component manifests (with `flux.install = "operator"`: the Flux Operator's install
    /// manifest): a file path or an `https://` URL. Default: the release of `flux_version` (the
    /// operator's latest release).
    #[serde(default)]
    pub flux_manifests: Option<String>,
    /// An extra CA certificate (PEM file) to trust for a `flux_manifests` URL.
    #[serde(default)]
    pub flux_manifests_ca_file: Option<PathBuf>,
    /// The env is meant to be created from CI.
    #[serde(default)]
    pub ci: bool,
    /// Non-secret Terraform variables (any TOML value).
    #[serde(default)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Terraform variables that name a file or directory (`kubeconfig_path = "dev.kubeconfig"`):
    /// a relative path is resolved against this file's directory, and Terraform gets the
    /// absolute path (it would resolve a relative one against the generated root module).
    #[serde(default)]
    pub path_variables: BTreeMap<String, PathBuf>,
    /// Secret Terraform variables: variable name → NAME of the environment variable holding the
    /// value.
    #[serde(default)]
    #[schemars(extend("additionalProperties" = { "type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$" }))]
    pub secret_variables: BTreeMap<String, String>,
    /// Extra `.tfvars` files.
    #[serde(default)]
    pub var_files: Vec<PathBuf>,
    #[serde(default)]
    pub backend: BackendConfig,
    /// The env's repository. Default: the top-level `[repository]`.
    #[serde(default)]
    pub repository: Option<RepositoryConfig>,
    /// Contract field → the module's output (and a path inside it) that provides it.
    #[serde(default)]
    pub outputs: OutputMapping,
}
