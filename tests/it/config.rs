//! The config file as the program reads it from disk: relative paths resolve against the
//! file's directory (not the working directory), errors name the file and line:column, and the
//! JSON schema documents the env keys.

use std::path::Path;

use gitops_bootstrap::ExitStatus;
use gitops_bootstrap::config::{self, Config, ConfigError, DEFAULT_FILE};
use testkit::env_config::{ConfigFile, EnvConfig, Push, Repository};

use crate::support::snapshot;

/// Env `dev` on the relative module directory `module`, and a top-level repository.
fn config(module: &str) -> ConfigFile {
    let repository = Repository::new(
        "https://git.example.com/fleet.git",
        ("Bootstrap Bot", "bot@example.com"),
        Push::token("GIT_PUSH_TOKEN"),
    )
    .with_read_token("GIT_READ_TOKEN");
    let dev = EnvConfig::on_module(module, "base").with_flux_version("v2.4.0");
    ConfigFile::of_env("dev", dev).with_repository(repository)
}

/// A project directory with a module directory and `text` as its config file.
fn project(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("terraform/kind")).unwrap();
    let file = dir.path().join(DEFAULT_FILE);
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

fn load(file: &Path) -> Result<Config, ConfigError> {
    Config::load(file)
}

#[test]
fn paths_resolve_against_the_config_files_directory() {
    let (dir, file) = project(&config("terraform/kind").to_toml());
    let config = load(&file).unwrap();
    assert_eq!(config.file, file);
    assert_eq!(config.state_dir, dir.path().join(".gitops-bootstrap"));
    let dev = config.env("dev").unwrap();
    assert_eq!(dev.module, dir.path().join("terraform/kind"));
    assert_eq!(dev.repository.branch, "main");
    assert_eq!(dev.outputs.table(), "[envs.dev.outputs]");
}

#[test]
fn an_unknown_key_is_reported_with_file_line_and_column() {
    let text = config("terraform/kind").to_toml().replace(
        "profile = \"base\"",
        "profile = \"base\"\npassword = \"canary-secret\"",
    );
    let (_dir, file) = project(&text);
    let err = load(&file).unwrap_err();
    let message = err.to_string();
    // The file's line:column, and not the value.
    snapshot!("unknown_key", &message);
    assert!(!message.contains("canary-secret"), "{message}");
    assert_eq!(
        gitops_bootstrap::Error::from(err).status(),
        ExitStatus::BadInput
    );
}

#[test]
fn a_missing_module_directory_is_named() {
    let (_dir, file) = project(&config("terraform/eks").to_toml());
    let err = load(&file).unwrap_err();
    let err = gitops_bootstrap::Error::from(err);
    assert_eq!(err.status().code(), 2);
    snapshot!(
        "missing_module",
        format!(
            "{}\nhint: {}",
            err.message(),
            err.hint().unwrap_or_default()
        )
    );
}

#[test]
fn a_missing_config_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let err = gitops_bootstrap::Error::from(load(&dir.path().join(DEFAULT_FILE)).unwrap_err());
    assert_eq!(err.status(), ExitStatus::BadInput);
    snapshot!("missing_config_file", err.message());
}

#[test]
fn the_schema_lists_the_env_keys() {
    let schema = config::json_schema();
    let env = &schema["$defs"]["Env"]["properties"];
    for key in [
        "module",
        "profile",
        "flux_version",
        "secret_variables",
        "repository",
        "outputs",
    ] {
        assert!(env.get(key).is_some(), "Env lacks {key}: {schema:#}");
    }
}
