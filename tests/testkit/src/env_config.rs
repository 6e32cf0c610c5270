//! gitops-bootstrap's config file (`gitops-bootstrap.toml`) as the tests and the bench write it:
//! typed tables rendered by the `toml` serializer, so no test formats TOML by hand. The names
//! are the product's (`src/config/file.rs` and `types.rs` are the truth); what a test leaves
//! unset stays out of the file, so the product's defaults apply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The whole file: a top-level `[repository]` (for envs without one of their own) and the
/// envs by name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<Repository>,
    pub envs: BTreeMap<String, EnvConfig>,
}

impl ConfigFile {
    /// A file holding the one env `name`.
    pub fn of_env(name: &str, env: EnvConfig) -> ConfigFile {
        ConfigFile::default().with_env(name, env)
    }

    pub fn with_env(mut self, name: &str, env: EnvConfig) -> ConfigFile {
        self.envs.insert(name.to_owned(), env);
        self
    }

    pub fn with_repository(mut self, repository: Repository) -> ConfigFile {
        self.repository = Some(repository);
        self
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config file renders as TOML")
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_toml())
    }
}

/// `[envs.<env>]`: one environment. The plain values come first, the tables after them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnvConfig {
    /// The Terraform module the product generates a root for (or `root`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<PathBuf>,
    /// An existing root module, run in place (or `module`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    pub profile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flux_version: Option<String>,
    /// A file path or an `https://` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flux_manifests: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ci: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub var_files: Vec<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flux: Option<Flux>,
    /// Any TOML value (a string, a table, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub path_variables: BTreeMap<String, PathBuf>,
    /// Variable → NAME of the environment variable holding its value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_variables: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// The env's own repository; without it, the file's top-level one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<Repository>,
    /// Contract field → output (`"name"`, or a table for `cluster_config` and friends).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, serde_json::Value>,
}

impl EnvConfig {
    /// An env on the Terraform module at `module`, running `profile`.
    pub fn on_module(module: impl Into<PathBuf>, profile: &str) -> EnvConfig {
        EnvConfig {
            module: Some(module.into()),
            profile: profile.to_owned(),
            ..EnvConfig::default()
        }
    }

    pub fn with_flux_version(mut self, version: &str) -> EnvConfig {
        self.flux_version = Some(version.to_owned());
        self
    }

    pub fn with_variable(mut self, name: &str, value: impl Into<serde_json::Value>) -> EnvConfig {
        self.variables.insert(name.to_owned(), value.into());
        self
    }

    pub fn with_path_variable(mut self, name: &str, path: impl Into<PathBuf>) -> EnvConfig {
        self.path_variables.insert(name.to_owned(), path.into());
        self
    }

    pub fn with_secret_variable(mut self, name: &str, env_var: &str) -> EnvConfig {
        self.secret_variables
            .insert(name.to_owned(), env_var.to_owned());
        self
    }

    pub fn with_output(mut self, field: &str, output: impl Into<serde_json::Value>) -> EnvConfig {
        self.outputs.insert(field.to_owned(), output.into());
        self
    }

    pub fn with_repository(mut self, repository: Repository) -> EnvConfig {
        self.repository = Some(repository);
        self
    }

    /// The env's own repository, to change a setting of it.
    pub fn repository_mut(&mut self) -> &mut Repository {
        self.repository
            .as_mut()
            .expect("the env has a repository of its own")
    }
}

/// `[envs.<env>.flux]`.
#[derive(Debug, Clone, Serialize)]
pub struct Flux {
    /// `components` or `operator`.
    pub install: String,
}

/// `[envs.<env>.backend]`.
#[derive(Debug, Clone, Serialize)]
pub struct Backend {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// `[repository]` or `[envs.<env>.repository]`: the GitOps repository.
#[derive(Debug, Clone, Serialize)]
pub struct Repository {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profiles_dir: Option<String>,
    pub author_name: String,
    pub author_email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure_http: bool,
    /// `push` or `pull-request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub push: Push,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<Read>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substitution: Option<Substitution>,
}

impl Repository {
    /// The repository at `url`, the tool's commits by `author` (a name and an email).
    pub fn new(url: &str, author: (&str, &str), push: Push) -> Repository {
        Repository {
            url: url.to_owned(),
            branch: None,
            path: None,
            profiles_dir: None,
            author_name: author.0.to_owned(),
            author_email: author.1.to_owned(),
            ca_file: None,
            allow_insecure_http: false,
            mode: None,
            push,
            read: None,
            substitution: None,
        }
    }

    /// Flux reads with the token in environment variable `token_env`.
    pub fn with_read_token(mut self, token_env: &str) -> Repository {
        self.read = Some(Read {
            token_env: Some(token_env.to_owned()),
            ..Read::default()
        });
        self
    }
}

/// `push`: how the tool pushes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Push {
    Token {
        token_env: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        username: Option<String>,
    },
    SshKey {
        key_file: PathBuf,
        known_hosts: PathBuf,
    },
    SshAgent {
        known_hosts: PathBuf,
    },
}

impl Push {
    /// An https token in environment variable `token_env`.
    pub fn token(token_env: &str) -> Push {
        Push::Token {
            token_env: token_env.to_owned(),
            username: None,
        }
    }
}

/// `read`: Flux's own read credentials.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Read {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
}

/// `substitution`: the objects that receive the output contract, and further sources.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Substitution {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<SubstituteSource>,
}

/// One further `postBuild.substituteFrom` source.
#[derive(Debug, Clone, Serialize)]
pub struct SubstituteSource {
    /// `ConfigMap` or `Secret`.
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_renders_as_the_products_tables() {
        let env = EnvConfig::on_module("/m", "standard")
            .with_flux_version("v2.4.0")
            .with_variable("cluster_name", "dev")
            .with_variable(
                "cluster_config",
                serde_json::json!({"base_domain": "example.test"}),
            )
            .with_secret_variable("cluster_secrets", "SECRETS")
            .with_output("cluster_name", "name")
            .with_repository(
                Repository::new(
                    "https://git.example.test/fleet.git",
                    ("Bot", "bot@example.test"),
                    Push::token("PUSH"),
                )
                .with_read_token("READ"),
            );
        let text = ConfigFile::of_env("dev", env).to_toml();
        let value: toml::Table = text.parse().unwrap();
        let dev = &value["envs"]["dev"];
        assert_eq!(dev["module"].as_str(), Some("/m"));
        assert_eq!(
            dev["variables"]["cluster_config"]["base_domain"].as_str(),
            Some("example.test")
        );
        assert_eq!(dev["repository"]["push"]["method"].as_str(), Some("token"));
        assert_eq!(
            dev["repository"]["read"]["token_env"].as_str(),
            Some("READ")
        );
        assert_eq!(dev["outputs"]["cluster_name"].as_str(), Some("name"));
        assert!(dev.get("ci").is_none(), "unset stays out: {text}");
        assert!(text.contains("[envs.dev]\n"), "{text}");
    }
}
