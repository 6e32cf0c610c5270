//! The configuration file (`gitops-bootstrap.toml`): its types, its validation before any side
//! effect, and its JSON schema.
//!
//! [`Config::load`] returns a config whose every value has been checked and whose paths are
//! absolute; errors name the file, the key and its line:column. The file never holds a secret
//! value: it names the environment variables that do.

mod error;
mod file;
mod load;
mod names;
mod outputs;
mod types;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, Location, Position};
pub use load::DEFAULT_FILE;
pub use names::{
    GitTransport, check_cluster_name, check_dns_label, check_profile_name, flux_minor,
};
pub use outputs::{ContractField, OutputMapping, OutputRef};
pub use types::{
    BackendConfig, Config, DEFAULT_FLUX_VERSION, DEFAULT_PROFILES_DIR, EnvConfig, FluxConfig,
    FluxInstall, FluxManifests, PushCredentials, ReadCredentials, RepositoryConfig, RepositoryMode,
    SubstituteKind, SubstituteSource, SubstitutionConfig, TerraformConfig,
};

/// The JSON schema of the config file, generated from the types serde reads
/// (`gitops-bootstrap config schema` prints it).
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(file::ConfigFile).to_value()
}
