//! doctor: Terraform, git, the config, and per env its module, repository and state — every
//! check runs even when an earlier one failed, so one run shows everything to mend.

use std::path::Path;

use serde::Serialize;

use crate::config::{Config, EnvConfig, PushCredentials};
use crate::error::{Diagnose, Error};
use crate::gitops::check_access;
use crate::keys::{KeyOwner, KeyStore};
use crate::lint::{Kustomize, LintError};
use crate::terraform::{ModuleInterface, Terraform};
use crate::workflow::git::{blocking, branch_facts, push_spec};
use crate::workflow::terraform::check_module_contract;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Warning,
    Failed,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: CheckStatus::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warning(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            status: CheckStatus::Warning,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn failed(name: impl Into<String>, err: &Error) -> Check {
        Check {
            name: name.into(),
            status: CheckStatus::Failed,
            detail: err.message().to_owned(),
            fix: err.hint().map(str::to_owned),
        }
    }
}

/// `lint`, and create-env's lint of the profile, build profiles with kubectl's kustomize;
/// nothing else needs kubectl, so its absence is a warning.
fn kubectl_check() -> Check {
    let found = Kustomize::find().and_then(|kustomize| {
        which::which(kustomize.program()).map_err(|_| LintError::KustomizeMissing)
    });
    match found {
        Ok(path) => Check::ok("kubectl", path.display().to_string()),
        Err(err) => Check::warning(
            "kubectl",
            format!("{err} (lint needs it)"),
            err.hint().unwrap_or_default(),
        ),
    }
}

/// Every check, in order: Terraform (`terraform_binary`, else the config's, else PATH), git,
/// kubectl, the config file, then each env (only `env` when given).
pub async fn checks(
    config_file: &Path,
    env: Option<&str>,
    terraform_binary: Option<&Path>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let config = Config::load(config_file).map_err(Error::from);
    let configured_binary = config
        .as_ref()
        .ok()
        .and_then(|c| c.terraform.binary.clone());
    match Terraform::discover(terraform_binary.or(configured_binary.as_deref())).await {
        Ok(tf) => checks.push(Check::ok(
            "terraform",
            format!(
                "{} {} at {}",
                tf.flavor(),
                tf.version(),
                tf.path().display()
            ),
        )),
        Err(err) => checks.push(Check::failed("terraform", &err.into())),
    }
    match which::which("git") {
        Ok(path) => checks.push(Check::ok("git", format!("{}", path.display()))),
        Err(_) => checks.push(Check::failed(
            "git",
            &Error::failure("git is not on PATH")
                .with_hint("install git (e.g. apt-get install git)"),
        )),
    }
    checks.push(kubectl_check());
    match &config {
        Ok(config) => {
            checks.push(Check::ok(
                "config",
                format!(
                    "{} is valid ({} envs)",
                    config.file.display(),
                    config.envs.len()
                ),
            ));
            let envs: Vec<&EnvConfig> = match env {
                Some(name) => match config.env(name) {
                    Ok(env) => vec![env],
                    Err(err) => {
                        checks.push(Check::failed(format!("env {name}"), &err.into()));
                        Vec::new()
                    }
                },
                None => config.envs.values().collect(),
            };
            for env in envs {
                checks.extend(env_checks(env).await);
            }
        }
        Err(err) => checks.push(Check::failed("config", err)),
    }

    checks
}

async fn env_checks(env: &EnvConfig) -> Vec<Check> {
    let mut checks = Vec::new();
    let name = |what: &str| format!("env {} {what}", env.name);
    let module = ModuleInterface::read(&env.module).map_err(Error::from);
    match &module {
        Err(err) => checks.push(Check::failed(name("module"), err)),
        Ok(module) => checks.push(match check_module_contract(env, module) {
            Ok(access) => Check::ok(
                name("module"),
                format!(
                    "{} declares the output contract ({} outputs, {} access)",
                    env.module.display(),
                    module.outputs.len(),
                    access.name()
                ),
            ),
            Err(err) => Check::failed(name("module"), &err),
        }),
    }
    let repository = repository_check(env, name("repository")).await;
    let reachable = repository.status == CheckStatus::Ok;
    checks.push(repository);
    if reachable {
        match branch_facts(env).await {
            Ok(facts) => {
                checks.push(profile_check(env, name("profile"), facts.profile_exists));
                checks.extend(age_key_check(
                    env,
                    name("age key"),
                    facts.committed_recipient,
                ));
            }
            Err(err) => checks.push(Check::failed(name("profile"), &err)),
        }
    }
    if let Ok(module) = &module {
        let sensitive: Vec<&str> = module
            .outputs
            .iter()
            .filter(|(_, output)| output.sensitive)
            .map(|(output, _)| output.as_str())
            .collect();
        if env.ci && env.backend.kind == "local" && !sensitive.is_empty() {
            checks.push(Check::warning(
                name("state"),
                format!(
                    "meant for CI but keeps its state, with the sensitive outputs {} in clear, in a local file",
                    sensitive.join(", ")
                ),
                format!("configure a remote, encrypted backend in [envs.{}.backend]", env.name),
            ));
        }
    }
    checks
}

/// The env's profile must be on its branch (checked once the repository answered).
fn profile_check(env: &EnvConfig, name: String, exists: bool) -> Check {
    let repo = &env.repository;
    let dir = format!("{}/{}", repo.profiles_dir, env.profile);
    if exists {
        return Check::ok(name, format!("{dir}/ is on branch {}", repo.branch));
    }
    Check::failed(
        name,
        &Error::bad_input(format!(
            "profile {} does not exist: no {dir}/ on branch {} of {}",
            env.profile, repo.branch, repo.url
        ))
        .with_hint(format!(
            "push {dir}/, pick another profile in [envs.{}], or set profiles_dir to where \
             the repository keeps its profiles",
            env.name
        )),
    )
}

/// An env whose recipient is committed needs its age key here, matching it (what rebuild and
/// create-env require); none is checked before the env was created.
fn age_key_check(env: &EnvConfig, name: String, recipient: Option<String>) -> Option<Check> {
    let recipient = recipient?;
    Some(
        // Read only: a key of the former layout is named where it is, not copied.
        match KeyStore::from_env().committed(&KeyOwner::of(env), &recipient) {
            Ok(key) => Check::ok(
                name,
                format!("{} matches the recipient in .sops.yaml", key.path.display()),
            ),
            Err(err) => Check::failed(name, &err.into()),
        },
    )
}

/// The repository is checked only when the push credentials are available here.
async fn repository_check(env: &EnvConfig, name: String) -> Check {
    let missing = match &env.repository.push {
        PushCredentials::Token { token_env, .. } => std::env::var_os(token_env)
            .is_none()
            .then(|| format!("{token_env} is not set")),
        PushCredentials::SshKey { key_file, .. } => (!key_file.exists())
            .then(|| format!("the key file {} does not exist", key_file.display())),
        PushCredentials::SshAgent { .. } => std::env::var_os("SSH_AUTH_SOCK")
            .is_none()
            .then(|| "no ssh agent (SSH_AUTH_SOCK is not set)".to_owned()),
    };
    if let Some(missing) = missing {
        return Check::warning(
            name,
            format!("{} not checked: {missing}", env.repository.url),
            "make the push credentials available and rerun doctor",
        );
    }
    let checked = match push_spec(env) {
        Ok(spec) => blocking(move || Ok(check_access(&spec)?)).await,
        Err(err) => Err(err),
    };
    match checked {
        Ok(remote) => Check::ok(
            name,
            format!(
                "{} reachable (branch {} {})",
                env.repository.url,
                env.repository.branch,
                if remote.branch_head.is_some() {
                    "exists"
                } else {
                    "will be created"
                }
            ),
        ),
        Err(err) => Check::failed(name, &err),
    }
}
