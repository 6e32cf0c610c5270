//! The Terraform part every command shares: find the binary, generate the env's root module
//! from config, init it; and the progress lines for Terraform's events.

use std::collections::BTreeMap;
use std::path::Path;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::EnvPaths;
use crate::cluster::ClusterError;
use crate::config::{Config, ContractField, EnvConfig};
use crate::contract::{DeclaredAccess, check_declared};
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::terraform::{
    Backend, Diagnostic, EnvRoot, ModuleInterface, RootSpec, Terraform, TfEvent,
};

/// Finds Terraform: `--terraform`, else `[terraform] binary`, else PATH.
pub async fn discover(config: &Config, explicit_binary: Option<&Path>) -> Result<Terraform> {
    let binary = explicit_binary.or(config.terraform.binary.as_deref());
    Ok(Terraform::discover(binary).await?)
}

/// Terraform found and the env's root module initialised: what a read-only command needs.
pub async fn prepare(
    config: &Config,
    env: &EnvConfig,
    explicit_binary: Option<&Path>,
    cancel: &CancellationToken,
) -> Result<(Terraform, EnvRoot)> {
    let terraform = discover(config, explicit_binary).await?;
    let root = init_root(&terraform, config, env, cancel).await?;
    Ok((terraform, root))
}

/// Writes the env's root module and runs `init` (a no-op when nothing changed).
pub async fn init_root(
    terraform: &Terraform,
    config: &Config,
    env: &EnvConfig,
    cancel: &CancellationToken,
) -> Result<EnvRoot> {
    let spec = RootSpec {
        module_dir: env.module.clone(),
        in_place: env.in_place,
        variables: env.variables.clone(),
        secret_variables: secret_variables(env)?,
        var_files: env.var_files.clone(),
        backend: Backend {
            kind: env.backend.kind.clone(),
            config: env.backend.config.clone(),
        },
    };
    let root = EnvRoot::prepare(&EnvPaths::new(config, &env.name).terraform(), &spec)?;
    terraform.init(&root, cancel).await?;
    Ok(root)
}

/// The env's module checked against the output contract from its `.tf` files alone: what can
/// fail before an apply does, including a credential plugin (`cluster_exec`) whose command the
/// module spells literally and this machine lacks.
pub fn check_module_contract(env: &EnvConfig, module: &ModuleInterface) -> Result<DeclaredAccess> {
    let declared = module
        .outputs
        .iter()
        .map(|(name, output)| (name.clone(), output.sensitive))
        .collect();
    let access = check_declared(&declared, &env.outputs)?;
    let exec = env.outputs.source(ContractField::ClusterExec);
    let command = module
        .outputs
        .get(&exec.output)
        .filter(|_| exec.path.is_empty())
        .and_then(|output| output.command.clone());
    if let Some(command) = command
        && which::which(&command).is_err()
    {
        return Err(ClusterError::ExecPluginMissing { command }.into());
    }
    Ok(access)
}

/// Reads each secret variable from the environment variable the config names (preflight
/// calls it too, so a missing one stops the run before any key is written).
pub(crate) fn secret_variables(env: &EnvConfig) -> Result<BTreeMap<String, SecretString>> {
    env.secret_variables
        .iter()
        .map(|(variable, env_var)| match std::env::var(env_var) {
            Ok(value) => Ok((variable.clone(), SecretString::from(value))),
            Err(_) => Err(Error::bad_input(format!(
                "secret variable `{variable}` of env {}: environment variable {env_var} is not set",
                env.name
            ))
            .with_hint(format!("export {env_var} before running, or remove `{variable}` from [envs.{}.secret_variables]", env.name))),
        })
        .collect()
}

/// Terraform's warnings, as the user's warnings: a plan's, then any an apply gives.
pub fn report_warnings(reporter: &dyn Reporter, warnings: &[Diagnostic]) {
    for warning in warnings {
        reporter.warning(format!("Terraform: {warning}"));
    }
}

/// A short progress line for a Terraform event, when it is worth one.
pub fn progress_line(event: &TfEvent) -> Option<String> {
    match event {
        TfEvent::ApplyStart(op) | TfEvent::ApplyProgress(op) => Some(format!(
            "{} {} ({}s)",
            op.action.progressive(),
            op.address,
            op.elapsed.as_secs()
        )),
        TfEvent::ApplyComplete(op) => {
            Some(format!("done {} ({}s)", op.address, op.elapsed.as_secs()))
        }
        TfEvent::ApplyErrored(op) => Some(format!("failed {}", op.address)),
        TfEvent::ChangeSummary(_) | TfEvent::Diagnostic(_) => None,
    }
}
