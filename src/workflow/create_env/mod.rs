//! create-env: from a config entry to Ready runtime apps, as nine named steps over one
//! [`Context`]. The context fills up as the steps run; a step that needs what an earlier one
//! found reads it through [`Context`]'s accessors.

mod commit;
mod flux;
mod preflight;
mod provision;
mod summary;

use std::path::PathBuf;
use std::time::Duration;

use kube::Client;
use tokio_util::sync::CancellationToken;

use super::{EnvPaths, Outcome, Step};
use crate::cluster::{Components, GitReadCredentials, Snapshot};
use crate::config::{Config, EnvConfig};
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::gitops::{DeployKey, Workspace};
use crate::keys::AgeKey;
use crate::lock::EnvLock;
use crate::report::Reporter;
use crate::terraform::{EnvRoot, Terraform};

pub use summary::{CreateEnvResult, result as summary_result};

/// What the user asked for, validated by the command.
#[derive(Debug, Clone)]
pub struct CreateEnvOptions {
    pub profile: String,
    pub assume_yes: bool,
    pub allow_replace: bool,
    pub change_profile: bool,
    pub timeout: Duration,
    pub flux_manifests: Option<String>,
    pub terraform_binary: Option<PathBuf>,
}

/// Everything the steps share. Fields after `options` start empty and are filled by the step
/// that discovers them.
pub struct Context<'r> {
    pub reporter: &'r dyn Reporter,
    pub cancel: CancellationToken,
    pub config: Config,
    pub env: EnvConfig,
    pub paths: EnvPaths,
    pub options: CreateEnvOptions,

    lock: Option<EnvLock>,
    terraform: Option<Terraform>,
    root: Option<EnvRoot>,
    workspace: Option<Workspace>,
    components: Option<Components>,
    read_credentials: Option<GitReadCredentials>,
    deploy_key: Option<DeployKey>,
    age_key: Option<AgeKey>,
    contract: Option<Contract>,
    client: Option<Client>,
    commit: Option<String>,
    snapshot: Option<Snapshot>,
}

impl<'r> Context<'r> {
    pub fn new(
        reporter: &'r dyn Reporter,
        cancel: CancellationToken,
        config: Config,
        env: EnvConfig,
        options: CreateEnvOptions,
    ) -> Self {
        let paths = EnvPaths::new(&config, &env.name);
        Context {
            reporter,
            cancel,
            config,
            env,
            paths,
            options,
            lock: None,
            terraform: None,
            root: None,
            workspace: None,
            components: None,
            read_credentials: None,
            deploy_key: None,
            age_key: None,
            contract: None,
            client: None,
            commit: None,
            snapshot: None,
        }
    }

    /// The commit the env's branch holds after the commit step.
    pub fn commit(&self) -> Option<&str> {
        self.commit.as_deref()
    }

    pub fn deploy_key(&self) -> Option<&DeployKey> {
        self.deploy_key.as_ref()
    }

    pub fn age_key(&self) -> Option<&AgeKey> {
        self.age_key.as_ref()
    }

    /// The working clone, for a step that must move it into blocking work; the step puts it
    /// back when it is done with it.
    fn take_workspace(&mut self) -> Result<Workspace> {
        self.workspace
            .take()
            .ok_or_else(|| Error::failure("internal error: the repository clone is not known yet"))
    }
}

/// A value an earlier step provides; its absence is a bug in the step order, reported as such.
fn require<'a, T>(value: &'a Option<T>, what: &str) -> Result<&'a T> {
    value
        .as_ref()
        .ok_or_else(|| Error::failure(format!("internal error: {what} is not known yet")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateEnvStep {
    Preflight,
    Terraform,
    Connect,
    ConfigAndSecrets,
    Commit,
    FluxInstall,
    Sync,
    WaitForApps,
    Summary,
}

/// create-env, in order. Nothing is committed before the cluster took its config and secrets,
/// and Flux is applied only once the commit it will sync is on the remote.
pub const STEPS: [CreateEnvStep; 9] = [
    CreateEnvStep::Preflight,
    CreateEnvStep::Terraform,
    CreateEnvStep::Connect,
    CreateEnvStep::ConfigAndSecrets,
    CreateEnvStep::Commit,
    CreateEnvStep::FluxInstall,
    CreateEnvStep::Sync,
    CreateEnvStep::WaitForApps,
    CreateEnvStep::Summary,
];

impl Step<Context<'_>> for CreateEnvStep {
    fn name(self) -> &'static str {
        match self {
            CreateEnvStep::Preflight => "preflight",
            CreateEnvStep::Terraform => "terraform",
            CreateEnvStep::Connect => "connect",
            CreateEnvStep::ConfigAndSecrets => "config-and-secrets",
            CreateEnvStep::Commit => "commit",
            CreateEnvStep::FluxInstall => "flux-install",
            CreateEnvStep::Sync => "sync",
            CreateEnvStep::WaitForApps => "wait-for-apps",
            CreateEnvStep::Summary => "summary",
        }
    }

    async fn run(self, ctx: &mut Context<'_>) -> Result<Outcome> {
        match self {
            CreateEnvStep::Preflight => preflight::run(ctx).await,
            CreateEnvStep::Terraform => provision::terraform(ctx).await,
            CreateEnvStep::Connect => provision::connect(ctx).await,
            CreateEnvStep::ConfigAndSecrets => flux::config_and_secrets(ctx).await,
            CreateEnvStep::Commit => commit::run(ctx).await,
            CreateEnvStep::FluxInstall => flux::install(ctx).await,
            CreateEnvStep::Sync => flux::sync(ctx).await,
            CreateEnvStep::WaitForApps => flux::wait_for_apps(ctx).await,
            CreateEnvStep::Summary => summary::run(ctx),
        }
    }
}
