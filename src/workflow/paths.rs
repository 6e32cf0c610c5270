//! Where an environment's local state lives: `<state_dir>/<env>/`.

use std::path::{Path, PathBuf};

use crate::config::{Config, EnvConfig};

#[derive(Debug, Clone)]
pub struct EnvPaths {
    root: PathBuf,
}

impl EnvPaths {
    pub fn new(config: &Config, env: &str) -> Self {
        EnvPaths {
            root: config.state_dir.join(env),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The generated Terraform root module (and its local state).
    pub fn terraform(&self) -> PathBuf {
        self.root.join("terraform")
    }

    /// Where Terraform runs for `env`: the generated root, or the env's own root in place.
    pub fn terraform_dir(&self, env: &EnvConfig) -> PathBuf {
        if env.in_place {
            env.module.clone()
        } else {
            self.terraform()
        }
    }

    /// The tool's working clone of the GitOps repository; disposable.
    pub fn repo(&self) -> PathBuf {
        self.root.join("repo")
    }

    /// The last clean lint of the env's profile, keyed by what it linted.
    pub fn lint_cache(&self) -> PathBuf {
        self.root.join("lint.json")
    }

    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }

    pub fn record(&self) -> PathBuf {
        self.root.join("run.json")
    }

    /// The per-env ssh deploy key Flux reads the repository with (ssh repositories only).
    pub fn deploy_key(&self) -> PathBuf {
        self.root.join("deploy-key")
    }
}
