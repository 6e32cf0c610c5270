//! The config as the rest of the program sees it: validated, with every path absolute and
//! every env's repository settled. The tables shared with the file model (`file.rs`) are
//! defined here once and documented for the JSON schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::names::GitTransport;
use super::outputs::OutputMapping;

/// A loaded, validated config file.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The config file, absolute.
    pub file: PathBuf,
    /// Where per-env state lives (`<state_dir>/<env>/`), absolute.
    pub state_dir: PathBuf,
    pub terraform: TerraformConfig,
    pub envs: BTreeMap<String, EnvConfig>,
}

impl Config {
    /// The directory holding the config file, against which its relative paths are resolved.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("/"))
    }
}

/// One environment (`[envs.<name>]`), resolved.
#[derive(Debug, Clone, Serialize)]
pub struct EnvConfig {
    pub name: String,
    /// The Terraform directory, absolute; it exists: the module the generated root calls, or
    /// (`in_place`) an existing root.
    pub module: PathBuf,
    /// `module` is an existing root, run in place (`root =` in the file).
    pub in_place: bool,
    /// The profile the env runs (`<profiles_dir>/<profile>` in the repository).
    pub profile: String,
    /// The Flux release to install, `v2.<minor>.<patch>`.
    pub flux_version: String,
    /// How Flux is installed (`[envs.<env>.flux] install`).
    pub flux: FluxConfig,
    /// Where Flux's components (or, with `install = "operator"`, the Flux Operator's install
    /// manifest) come from instead of the default download.
    pub flux_manifests: Option<FluxManifests>,
    /// An extra CA certificate (PEM file, absolute) to trust for a `flux_manifests` URL.
    pub flux_manifests_ca_file: Option<PathBuf>,
    /// The env is meant to be created from CI.
    pub ci: bool,
    /// Non-secret Terraform variables, `path_variables` among them as absolute paths.
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Terraform variable → name of the environment variable holding its value.
    pub secret_variables: BTreeMap<String, String>,
    /// Extra `.tfvars` files, absolute; they exist.
    pub var_files: Vec<PathBuf>,
    pub backend: BackendConfig,
    pub repository: RepositoryConfig,
    pub outputs: OutputMapping,
}

/// Flux's component manifests, when not the published release of `flux_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FluxManifests {
    /// An `https://` URL.
    Url(String),
    /// A local file, absolute; it exists.
    File(PathBuf),
}

/// The Flux release an env installs when its config names none: the newest minor release at
/// the end of 2026 (v2.10), inside Flux's support window of its last three minor releases
/// (2.8, 2.9, 2.10) and staying in it longest. It serves only the GA APIs (source and kustomize
/// `v1`, helm `v2`): Flux 2.8 removed the `v1beta2` and `v2beta*` ones.
pub const DEFAULT_FLUX_VERSION: &str = "v2.10.0";

/// `[envs.<env>.flux]`: how Flux gets onto the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FluxConfig {
    /// `components` (default): the tool applies Flux's install manifest
    /// (`gotk-components.yaml`) and the sync objects itself. `operator`: the tool installs the
    /// Flux Operator and a `FluxInstance`, and the operator installs and upgrades Flux.
    #[serde(default)]
    pub install: FluxInstall,
}

/// `flux.install`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FluxInstall {
    /// Flux's own install manifest, applied by the tool (`flux bootstrap`'s way). The default,
    /// so an env created before the operator mode existed keeps its install on a rerun.
    #[default]
    Components,
    /// The Flux Operator and a `FluxInstance` named `flux`.
    Operator,
}

impl FluxInstall {
    pub fn name(self) -> &'static str {
        match self {
            FluxInstall::Components => "components",
            FluxInstall::Operator => "operator",
        }
    }
}

/// `[terraform]`: how Terraform is run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerraformConfig {
    /// The terraform (or tofu) executable: a command name looked up in PATH, or a path
    /// (relative to the config file's directory). Default: `terraform` from PATH.
    #[serde(default)]
    pub binary: Option<PathBuf>,
}

/// `[envs.<env>.backend]`: the Terraform state backend of the generated root module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// The backend type (`local`, `s3`, `azurerm`, …).
    #[serde(rename = "type", default = "default_backend")]
    pub kind: String,
    /// Backend settings (`-backend-config` key/value pairs). No credentials: backends read them
    /// from their usual environment variables.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            kind: default_backend(),
            config: BTreeMap::new(),
        }
    }
}

fn default_backend() -> String {
    "local".to_owned()
}

/// `[repository]` / `[envs.<env>.repository]`: the Git repository Flux syncs from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// `https://`, `http://` or `ssh://` URL.
    pub url: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Prefix inside the repository under which `clusters/` and the profiles live (no leading
    /// or trailing `/`; empty: the root).
    #[serde(default)]
    pub path: String,
    /// The directory, under `path`, holding one directory per profile (a kustomization or a
    /// kustomize Component), e.g. `clusters/_profiles`. Default `profiles`.
    #[serde(default = "default_profiles_dir")]
    pub profiles_dir: String,
    /// Where the contract's values land in the cluster and what the profile substitutes.
    #[serde(default)]
    pub substitution: SubstitutionConfig,
    /// Author of the tool's commits.
    pub author_name: String,
    pub author_email: String,
    /// An extra CA certificate (PEM file) for an https repository; also given to Flux.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How the tool pushes.
    pub push: PushCredentials,
    /// How Flux reads (its credentials are never the push credentials).
    #[serde(default)]
    pub read: ReadCredentials,
    /// Allow tokens over a plain `http://` URL, where anyone on the network path can read them
    /// (the tool's push token and Flux's read token alike). Only for a trusted, local network.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// How the tool's commit reaches `branch`: `push` (default), or `pull-request`: pushed to
    /// the branch `gitops-bootstrap/<env>` for a person to merge, create-env waiting for the
    /// merge (as `--via-branch` does).
    #[serde(default)]
    pub mode: RepositoryMode,
}

/// `repository.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RepositoryMode {
    #[default]
    Push,
    PullRequest,
}

fn default_branch() -> String {
    "main".to_owned()
}

/// Where profiles live when the repository does not say.
pub const DEFAULT_PROFILES_DIR: &str = "profiles";

fn default_profiles_dir() -> String {
    DEFAULT_PROFILES_DIR.to_owned()
}

/// `[...repository.substitution]`: the objects in `flux-system` that receive the output
/// contract, named the way the repository's profiles expect them, and further
/// `postBuild.substituteFrom` sources of the `profile` Kustomization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubstitutionConfig {
    /// The ConfigMap receiving `cluster_name`, the flattened network and `cluster_config`.
    /// Default `cluster-config`.
    #[serde(default = "default_config_map")]
    pub config_map: String,
    /// The Secret receiving `cluster_secrets`. Default `cluster-secrets`.
    #[serde(default = "default_secret")]
    pub secret: String,
    /// Further sources, substituted after those two (objects the repository or another tool
    /// manages; the tool does not write them).
    #[serde(default)]
    pub extra: Vec<SubstituteSource>,
}

impl Default for SubstitutionConfig {
    fn default() -> Self {
        SubstitutionConfig {
            config_map: default_config_map(),
            secret: default_secret(),
            extra: Vec::new(),
        }
    }
}

fn default_config_map() -> String {
    "cluster-config".to_owned()
}

fn default_secret() -> String {
    "cluster-secrets".to_owned()
}

/// One `postBuild.substituteFrom` entry, as Flux spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubstituteSource {
    pub kind: SubstituteKind,
    /// The object's name in `flux-system`.
    pub name: String,
    /// Flux goes on without the object when it is absent.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SubstituteKind {
    ConfigMap,
    Secret,
}

impl RepositoryConfig {
    /// Https/http or ssh, from the (validated) URL's scheme.
    pub fn transport(&self) -> GitTransport {
        if self
            .url
            .get(..6)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("ssh://"))
        {
            GitTransport::Ssh
        } else {
            GitTransport::Http
        }
    }

    /// The known_hosts file Flux gets for an ssh repository: `read.known_hosts`, else the push
    /// method's.
    pub fn flux_known_hosts(&self) -> Option<&Path> {
        self.read.known_hosts.as_deref().or(match &self.push {
            PushCredentials::Token { .. } => None,
            PushCredentials::SshKey { known_hosts, .. }
            | PushCredentials::SshAgent { known_hosts } => Some(known_hosts.as_path()),
        })
    }
}

/// `[...repository.push]`: the operator's credentials for pushing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum PushCredentials {
    /// An https token read from an environment variable.
    Token {
        /// NAME of the environment variable holding the token.
        token_env: String,
        #[serde(default = "default_git_username")]
        username: String,
    },
    /// An ssh private key file.
    SshKey {
        key_file: PathBuf,
        known_hosts: PathBuf,
    },
    /// The running ssh-agent.
    SshAgent { known_hosts: PathBuf },
}

/// `[...repository.read]`: Flux's own read credentials. For https, `token_env` names a token
/// separate from the push token (that one never enters the cluster); for ssh a per-env deploy
/// key is generated, and only `known_hosts` may be given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadCredentials {
    /// NAME of the environment variable holding Flux's read token (https only).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Username for the read token (https only). Default `git`.
    #[serde(default)]
    pub username: Option<String>,
    /// known_hosts for Flux (ssh only). Default: the push method's.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
}

impl ReadCredentials {
    pub fn username(&self) -> &str {
        self.username.as_deref().unwrap_or(GIT_USERNAME)
    }
}

const GIT_USERNAME: &str = "git";

fn default_git_username() -> String {
    GIT_USERNAME.to_owned()
}
