//! Reading the file, validating every value before anything acts on it, and resolving paths
//! against the config file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::file::{ConfigFile, EnvFile};
use super::names::{self, GitTransport};
use super::types::{
    BackendConfig, Config, DEFAULT_FLUX_VERSION, EnvConfig, FluxManifests, PushCredentials,
    ReadCredentials, RepositoryConfig, SubstitutionConfig, TerraformConfig,
};

/// The config file name the CLI uses when none is given.
pub const DEFAULT_FILE: &str = "gitops-bootstrap.toml";

const DEFAULT_STATE_DIR: &str = ".gitops-bootstrap";

/// Secrets in `flux-system` that hold Flux's Git credentials and the age key.
const RESERVED_SECRETS: [&str; 2] = ["flux-system", "sops-age"];

/// toml hands datetimes to serde as a one-key table under this name.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

impl Config {
    /// Reads, validates and resolves the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Validates and resolves `text` as if read from the file at `path` (which need not exist;
    /// relative paths in `text` are resolved against its directory).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = std::path::absolute(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let raw: ConfigFile =
            toml::from_str(text).map_err(|err| ConfigError::from_toml(&file, text, &err))?;
        let dir = file.parent().unwrap_or(Path::new("/"));
        Loader {
            file: &file,
            dir,
            text,
        }
        .config(raw)
    }

    /// The env called `name`, or an error listing the known ones.
    pub fn env(&self, name: &str) -> Result<&EnvConfig, ConfigError> {
        self.envs.get(name).ok_or_else(|| ConfigError::UnknownEnv {
            name: name.to_owned(),
            file: self.file.clone(),
            known: self.envs.keys().cloned().collect(),
        })
    }
}

struct Loader<'a> {
    file: &'a Path,
    dir: &'a Path,
    text: &'a str,
}

/// `prefix` followed by `rest`, as a key path.
fn key<'k>(prefix: &[&'k str], rest: &[&'k str]) -> Vec<&'k str> {
    prefix.iter().chain(rest).copied().collect()
}

impl Loader<'_> {
    fn error(&self, key: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.file, self.text, key, message, None)
    }

    fn error_with_hint(
        &self,
        key: &[&str],
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        ConfigError::invalid(self.file, self.text, key, message, Some(hint.into()))
    }

    /// Applies a name check from `names` to the value at `key`.
    fn check(&self, key: &[&str], result: Result<(), String>) -> Result<(), ConfigError> {
        result.map_err(|message| self.error(key, message))
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        // `components()` drops interior `.` segments, so messages show clean paths.
        self.dir.join(path).components().collect()
    }

    fn existing_file(&self, key: &[&str], path: &Path) -> Result<PathBuf, ConfigError> {
        let resolved = self.resolve(path);
        if !resolved.is_file() {
            return Err(self.error_with_hint(
                key,
                format!("names {}, which is not a file", resolved.display()),
                "paths are relative to the config file's directory",
            ));
        }
        Ok(resolved)
    }

    fn config(&self, raw: ConfigFile) -> Result<Config, ConfigError> {
        if raw.envs.is_empty() {
            return Err(self.error_with_hint(
                &["envs"],
                "is missing: the file defines no environment",
                "add an [envs.<name>] table with module, profile and a repository",
            ));
        }
        let state_dir = self.resolve(
            raw.state_dir
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_STATE_DIR)),
        );
        let default_repository = raw
            .repository
            .map(|repository| self.repository(&["repository"], repository))
            .transpose()?;
        let mut envs = BTreeMap::new();
        for (name, env) in raw.envs {
            let env = self.env(&name, env, default_repository.as_ref())?;
            envs.insert(name, env);
        }
        Ok(Config {
            file: self.file.to_owned(),
            state_dir,
            terraform: self.terraform(raw.terraform),
            envs,
        })
    }

    /// A bare command name stays a PATH lookup; anything with a separator is a path.
    fn terraform(&self, terraform: TerraformConfig) -> TerraformConfig {
        let binary = terraform.binary.map(|binary| {
            if binary.components().count() > 1 {
                self.resolve(&binary)
            } else {
                binary
            }
        });
        TerraformConfig { binary }
    }

    fn env(
        &self,
        name: &str,
        raw: EnvFile,
        default_repository: Option<&RepositoryConfig>,
    ) -> Result<EnvConfig, ConfigError> {
        let at = |rest: &[&'static str]| -> Vec<&str> { key(&["envs", name], rest) };
        self.check(&["envs", name], names::check_dns_label(name))?;
        self.check(&at(&["profile"]), names::check_profile_name(&raw.profile))?;
        let flux_version = raw
            .flux_version
            .clone()
            .unwrap_or_else(|| DEFAULT_FLUX_VERSION.to_owned());
        self.check(
            &at(&["flux_version"]),
            names::check_flux_version(&flux_version),
        )?;
        let (module, in_place) = self.terraform_dir(name, &raw)?;
        let (flux_manifests, flux_manifests_ca_file) = self.flux_manifests(name, &raw)?;
        let repository = match raw.repository {
            Some(own) => self.repository(&at(&["repository"]), own)?,
            None => default_repository.cloned().ok_or_else(|| {
                self.error_with_hint(
                    &at(&["repository"]),
                    "is missing, and there is no top-level [repository]",
                    format!("add [envs.{name}.repository] or a top-level [repository]"),
                )
            })?,
        };
        let var_files = raw
            .var_files
            .iter()
            .map(|file| self.existing_file(&at(&["var_files"]), file))
            .collect::<Result<_, _>>()?;
        let mut outputs = raw.outputs;
        self.check_outputs(name, &outputs)?;
        outputs.set_env(name);
        Ok(EnvConfig {
            name: name.to_owned(),
            module,
            in_place,
            profile: raw.profile,
            flux_version,
            flux: raw.flux,
            flux_manifests,
            flux_manifests_ca_file,
            ci: raw.ci,
            variables: self.variables(
                name,
                raw.variables,
                raw.path_variables,
                &raw.secret_variables,
                in_place,
            )?,
            secret_variables: self.secret_variables(name, raw.secret_variables)?,
            var_files,
            backend: self.backend(name, raw.backend)?,
            repository,
            outputs,
        })
    }

    /// `module` (wrapped in a generated root) or `root` (run in place), exactly one.
    fn terraform_dir(&self, name: &str, raw: &EnvFile) -> Result<(PathBuf, bool), ConfigError> {
        let at = |rest: &[&'static str]| key(&["envs", name], rest);
        let (field, dir, in_place) = match (&raw.module, &raw.root) {
            (Some(module), None) => ("module", module, false),
            (None, Some(root)) => ("root", root, true),
            (Some(_), Some(_)) => {
                return Err(self.error_with_hint(
                    &at(&["root"]),
                    "is given together with `module`",
                    "keep `module` for a module the tool wraps, or `root` for an existing root \
                     run in place",
                ));
            }
            (None, None) => {
                return Err(self.error_with_hint(
                    &at(&[]),
                    "names no Terraform: it needs `module` or `root`",
                    "add `module = \"<dir>\"` (a module the tool calls from a root of its own) \
                     or `root = \"<dir>\"` (an existing root run in place)",
                ));
            }
        };
        let resolved = self.resolve(dir);
        if !resolved.is_dir() {
            return Err(self.error_with_hint(
                &at(&[field]),
                format!("names {}, which is not a directory", resolved.display()),
                format!(
                    "point `{field}` at the Terraform directory (relative to the config file's \
                     directory)"
                ),
            ));
        }
        if in_place && raw.backend != BackendConfig::default() {
            return Err(self.error_with_hint(
                &at(&["backend"]),
                "applies only with `module`: a root run in place keeps its own backend",
                "remove the env's backend table; configure the backend in the root's \
                 `terraform { backend … }` block",
            ));
        }
        Ok((resolved, in_place))
    }

    fn flux_manifests(
        &self,
        name: &str,
        raw: &EnvFile,
    ) -> Result<(Option<FluxManifests>, Option<PathBuf>), ConfigError> {
        let manifests_key = key(&["envs", name], &["flux_manifests"]);
        let manifests = match raw.flux_manifests.as_deref() {
            None => None,
            Some(url) if url.starts_with("https://") => Some(FluxManifests::Url(url.to_owned())),
            Some(url) if url.contains("://") => {
                return Err(self.error(
                    &manifests_key,
                    "must be a file path or an https:// URL (other schemes are not fetched)",
                ));
            }
            Some(path) => Some(FluxManifests::File(
                self.existing_file(&manifests_key, Path::new(path))?,
            )),
        };
        let ca_key = key(&["envs", name], &["flux_manifests_ca_file"]);
        let ca_file = match (&raw.flux_manifests_ca_file, &manifests) {
            (None, _) => None,
            (Some(ca), Some(FluxManifests::Url(_))) => Some(self.existing_file(&ca_key, ca)?),
            (Some(_), _) => {
                return Err(self.error(&ca_key, "applies only when flux_manifests is a URL"));
            }
        };
        Ok((manifests, ca_file))
    }

    fn variables(
        &self,
        name: &str,
        mut variables: BTreeMap<String, serde_json::Value>,
        path_variables: BTreeMap<String, PathBuf>,
        secret_variables: &BTreeMap<String, String>,
        in_place: bool,
    ) -> Result<BTreeMap<String, serde_json::Value>, ConfigError> {
        for (variable, value) in &mut variables {
            let at = key(&["envs", name], &["variables", variable]);
            self.check(&at, names::check_terraform_identifier(variable))?;
            if secret_variables.contains_key(variable) {
                return Err(self.error(&at, "is also in secret_variables: give it in one place"));
            }
            if path_variables.contains_key(variable) {
                return Err(self.error(&at, "is also in path_variables: give it in one place"));
            }
            if !in_place {
                self.not_a_relative_path(&at, value)?;
            }
            // The cluster's name also names cloud resources and paths: wrong early, not after
            // an apply.
            if variable == "cluster_name"
                && let Some(cluster_name) = value.as_str()
            {
                self.check(&at, names::check_cluster_name(cluster_name))?;
            }
            if value.is_string() && ConfigError::looks_secret(variable) {
                return Err(ConfigError::invalid(
                    self.file,
                    self.text,
                    &at,
                    "looks like a secret, and variables are written in clear",
                    ConfigError::secret_hint(),
                ));
            }
            datetimes_to_strings(value);
        }
        for (variable, path) in path_variables {
            let at = key(&["envs", name], &["path_variables", &variable]);
            self.check(&at, names::check_terraform_identifier(&variable))?;
            if secret_variables.contains_key(&variable) {
                return Err(self.error(&at, "is also in secret_variables: give it in one place"));
            }
            let path = self.resolve(&path).to_string_lossy().into_owned();
            variables.insert(variable, serde_json::Value::String(path));
        }
        Ok(variables)
    }

    /// A plain variable naming a file beside the config would reach Terraform relative to the
    /// generated root module (Terraform resolves paths against its working directory), where
    /// no such file is: said here, with the fix.
    fn not_a_relative_path(
        &self,
        at: &[&str],
        value: &serde_json::Value,
    ) -> Result<(), ConfigError> {
        let Some(text) = value.as_str() else {
            return Ok(());
        };
        let path = Path::new(text);
        if text.is_empty() || path.is_absolute() || !self.dir.join(path).is_file() {
            return Ok(());
        }
        Err(self.error_with_hint(
            at,
            "names a path relative to the config file, which Terraform would look for in the \
             generated root module instead",
            "move it to `path_variables` (relative paths there are resolved against the config \
             file's directory), or give an absolute path",
        ))
    }

    fn secret_variables(
        &self,
        name: &str,
        secret_variables: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        for (variable, env_var) in &secret_variables {
            let at = key(&["envs", name], &["secret_variables", variable]);
            self.check(&at, names::check_terraform_identifier(variable))?;
            self.check(&at, names::check_env_var_name(env_var))?;
        }
        Ok(secret_variables)
    }

    fn backend(&self, name: &str, backend: BackendConfig) -> Result<BackendConfig, ConfigError> {
        let valid = !backend.kind.is_empty()
            && backend
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(self.error(
                &key(&["envs", name], &["backend", "type"]),
                format!("must be a Terraform backend type, not `{}`", backend.kind),
            ));
        }
        Ok(backend)
    }

    fn check_outputs(&self, name: &str, outputs: &super::OutputMapping) -> Result<(), ConfigError> {
        for (config_key, _, source) in outputs.refs() {
            let segments: Vec<&str> = config_key.split('.').collect();
            let at = key(&["envs", name], &key(&["outputs"], &segments));
            self.check(&at, names::check_terraform_identifier(&source.output))?;
            if let [_, variable] = segments.as_slice() {
                self.check(&at, names::check_variable_name(variable))?;
            }
        }
        Ok(())
    }

    fn repository(
        &self,
        prefix: &[&str],
        mut repository: RepositoryConfig,
    ) -> Result<RepositoryConfig, ConfigError> {
        let transport = names::check_repository_url(&repository.url)
            .map_err(|message| self.error(&key(prefix, &["url"]), message))?;
        self.check(
            &key(prefix, &["branch"]),
            names::check_branch(&repository.branch),
        )?;
        repository.path = names::normalize_repo_path(&repository.path)
            .map_err(|message| self.error(&key(prefix, &["path"]), message))?;
        repository.profiles_dir = names::normalize_repo_path(&repository.profiles_dir)
            .and_then(|dir| {
                if dir.is_empty() {
                    Err("must name a directory, not the repository root".to_owned())
                } else {
                    Ok(dir)
                }
            })
            .map_err(|message| self.error(&key(prefix, &["profiles_dir"]), message))?;
        self.substitution(prefix, &repository.substitution)?;
        if repository.author_name.trim().is_empty() {
            return Err(self.error(&key(prefix, &["author_name"]), "must not be empty"));
        }
        if !repository.author_email.contains('@') {
            return Err(self.error(
                &key(prefix, &["author_email"]),
                format!(
                    "must be an email address, not `{}`",
                    repository.author_email
                ),
            ));
        }
        repository.ca_file = match (&repository.ca_file, transport) {
            (None, _) => None,
            (Some(ca), GitTransport::Http) => {
                Some(self.existing_file(&key(prefix, &["ca_file"]), ca)?)
            }
            (Some(_), GitTransport::Ssh) => {
                return Err(self.error(
                    &key(prefix, &["ca_file"]),
                    "applies to https repositories only",
                ));
            }
        };
        self.check_plain_http(prefix, &repository)?;
        repository.push = self.push(prefix, repository.push, transport)?;
        repository.read = self.read(prefix, repository.read, &repository.push, transport)?;
        Ok(repository)
    }

    /// Tokens over `http://` travel in clear (HTTP Basic): refused unless the config says the
    /// network is trusted.
    fn check_plain_http(
        &self,
        prefix: &[&str],
        repository: &RepositoryConfig,
    ) -> Result<(), ConfigError> {
        let plain = repository
            .url
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
        let sends_token = matches!(repository.push, PushCredentials::Token { .. })
            || repository.read.token_env.is_some();
        if plain && sends_token && !repository.allow_insecure_http {
            return Err(self.error_with_hint(
                &key(prefix, &["url"]),
                "is plain http://: the push token (and Flux's read token) would cross the \
                 network unencrypted, readable by anyone on the way",
                "use the server's https:// URL; if this network is trusted (a local test \
                 server), set `allow_insecure_http = true` in the repository table",
            ));
        }
        Ok(())
    }

    /// The tool writes the ConfigMap and Secret: they must not be Flux's own Secrets.
    fn substitution(
        &self,
        prefix: &[&str],
        substitution: &SubstitutionConfig,
    ) -> Result<(), ConfigError> {
        let at = |rest: &[&'static str]| key(prefix, &key(&["substitution"], rest));
        self.check(
            &at(&["config_map"]),
            names::check_object_name(&substitution.config_map),
        )?;
        self.check(
            &at(&["secret"]),
            names::check_object_name(&substitution.secret),
        )?;
        if RESERVED_SECRETS.contains(&substitution.secret.as_str()) {
            return Err(self.error(
                &at(&["secret"]),
                format!(
                    "names `{}`, a Secret the tool writes for Flux itself: pick another name",
                    substitution.secret
                ),
            ));
        }
        for source in &substitution.extra {
            self.check(&at(&["extra"]), names::check_object_name(&source.name))?;
        }
        Ok(())
    }

    fn push(
        &self,
        prefix: &[&str],
        push: PushCredentials,
        transport: GitTransport,
    ) -> Result<PushCredentials, ConfigError> {
        let at = |rest: &[&'static str]| key(prefix, &key(&["push"], rest));
        match (push, transport) {
            (
                PushCredentials::Token {
                    token_env,
                    username,
                },
                GitTransport::Http,
            ) => {
                self.check(&at(&["token_env"]), names::check_env_var_name(&token_env))?;
                if username.is_empty() {
                    return Err(self.error(&at(&["username"]), "must not be empty"));
                }
                Ok(PushCredentials::Token {
                    token_env,
                    username,
                })
            }
            (
                PushCredentials::SshKey {
                    key_file,
                    known_hosts,
                },
                GitTransport::Ssh,
            ) => Ok(PushCredentials::SshKey {
                key_file: self.existing_file(&at(&["key_file"]), &key_file)?,
                known_hosts: self.existing_file(&at(&["known_hosts"]), &known_hosts)?,
            }),
            (PushCredentials::SshAgent { known_hosts }, GitTransport::Ssh) => {
                Ok(PushCredentials::SshAgent {
                    known_hosts: self.existing_file(&at(&["known_hosts"]), &known_hosts)?,
                })
            }
            (PushCredentials::Token { .. }, GitTransport::Ssh) => Err(self.error(
                &at(&["method"]),
                "must be `ssh_key` or `ssh_agent` for an ssh:// repository url",
            )),
            (_, GitTransport::Http) => Err(self.error(
                &at(&["method"]),
                "must be `token` for an https:// or http:// repository url",
            )),
        }
    }

    fn read(
        &self,
        prefix: &[&str],
        read: ReadCredentials,
        push: &PushCredentials,
        transport: GitTransport,
    ) -> Result<ReadCredentials, ConfigError> {
        let at = |rest: &[&'static str]| key(prefix, &key(&["read"], rest));
        match transport {
            GitTransport::Http => {
                let Some(token_env) = &read.token_env else {
                    return Err(self.error_with_hint(
                        &at(&["token_env"]),
                        "is required for an https repository: Flux reads with a token of its \
                         own, the push token never enters the cluster",
                        "create a read-only token, export it, and name its variable in \
                         [repository.read] token_env",
                    ));
                };
                self.check(&at(&["token_env"]), names::check_env_var_name(token_env))?;
                if matches!(push, PushCredentials::Token { token_env: push_env, .. } if push_env == token_env)
                {
                    return Err(self.error(
                        &at(&["token_env"]),
                        "names the push token's variable: Flux needs a separate, read-only token",
                    ));
                }
                if read.known_hosts.is_some() {
                    return Err(
                        self.error(&at(&["known_hosts"]), "applies to ssh repositories only")
                    );
                }
                Ok(read)
            }
            GitTransport::Ssh => {
                if read.token_env.is_some() || read.username.is_some() {
                    return Err(self.error(
                        &at(&[]),
                        "takes only known_hosts for an ssh repository: Flux reads with a \
                         generated per-env deploy key",
                    ));
                }
                let known_hosts = read
                    .known_hosts
                    .map(|file| self.existing_file(&at(&["known_hosts"]), &file))
                    .transpose()?;
                Ok(ReadCredentials {
                    known_hosts,
                    ..read
                })
            }
        }
    }
}

/// TOML datetimes reach serde_json as `{"$__toml_private_datetime": "…"}`; Terraform wants the
/// RFC 3339 string.
fn datetimes_to_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.len() == 1
                && let Some(serde_json::Value::String(text)) = map.get(TOML_DATETIME_KEY)
            {
                *value = serde_json::Value::String(text.clone());
                return;
            }
            map.values_mut().for_each(datetimes_to_strings);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(datetimes_to_strings),
        _ => {}
    }
}
