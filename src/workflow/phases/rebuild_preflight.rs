//! preflight (rebuild): the env's lock, then what a rebuild restores from — `clusters/<env>/`
//! on the branch, the age identity matching the recipient committed in its `.sops.yaml` (never
//! a new key: exit 2 before anything changes), the committed Flux components and sync objects,
//! and Flux's read credentials.

use std::path::Path;

use crate::cluster::flux::manifest_version;
use crate::cluster::flux_operator::{self, OperatorManifest};
use crate::cluster::{Components, ComponentsOrigin, GitReadCredentials, Installation};
use crate::config::{Config, EnvConfig, FluxInstall, GitTransport};
use crate::error::{Error, Result};
use crate::gitops::{DeployKey, Workspace};
use crate::keys::{AgeKey, KeyStore};
use crate::lock::EnvLock;
use crate::render::{self, cluster_dir};
use crate::report::Reporter;
use crate::terraform::Terraform;
use crate::workflow::git::{blocking, push_spec, read_credentials};
use crate::workflow::phases::preflight::settle_deploy_key;
use crate::workflow::phases::{lock, short};
use crate::workflow::{EnvPaths, Outcome, terraform};

/// What the env is rebuilt from, all read from Git and checked.
pub struct Restorable {
    /// Held until the run ends.
    pub lock: EnvLock,
    pub terraform: Terraform,
    pub workspace: Workspace,
    /// The branch tip the env is synced to (no new commit).
    pub commit: String,
    pub profile: String,
    pub install: Installation,
    /// The Flux version committed: the components' header, or the FluxInstance's distribution.
    pub flux_version: String,
    /// The committed gotk-sync.yaml, or FluxInstance.
    pub sync_manifest: String,
    pub read_credentials: GitReadCredentials,
    pub deploy_key: Option<DeployKey>,
    pub age_key: AgeKey,
}

pub async fn run(
    reporter: &dyn Reporter,
    config: &Config,
    env: &EnvConfig,
    paths: &EnvPaths,
    terraform_binary: Option<&Path>,
) -> Result<(Outcome, Restorable)> {
    let lock = lock::acquire(env, paths)?;
    lock::announce_takeover(&lock, env, reporter);
    let spec = push_spec(env)?;
    let repo_dir = paths.repo();
    let workspace = blocking(move || Ok(Workspace::open_or_clone(&repo_dir, spec)?)).await?;
    let dir = cluster_dir(&env.repository.path, &env.name);
    let read = |rel: &str| -> Result<String> {
        let path = format!("{dir}/{rel}");
        match workspace.read_file(&path)? {
            Some(bytes) => String::from_utf8(bytes).map_err(|_| {
                Error::bad_input(format!("{path} on branch {} is not text", env.repository.branch))
            }),
            None => Err(Error::bad_input(format!(
                "env {} cannot be rebuilt: {path} is not on branch {} of {}",
                env.name, env.repository.branch, env.repository.url
            ))
            .with_hint(format!(
                "rebuild restores an env created by create-env; run `gitops-bootstrap create-env {}` for a new one",
                env.name
            ))),
        }
    };
    let sops = read(render::SOPS_FILE)?;
    let recipient = render::sops_recipient(&sops).ok_or_else(|| {
        Error::bad_input(format!(
            "{dir}/{} names no age recipient",
            render::SOPS_FILE
        ))
    })?;
    // The committed recipient decides: its key or nothing, never a new one.
    let age_key = KeyStore::from_env().settle(&env.name, Some(&recipient))?;
    let (install, flux_version, sync_manifest) = match env.flux.install {
        FluxInstall::Components => {
            let yaml = read(render::COMPONENTS_FILE)?;
            let version = manifest_version(&yaml)
                .ok_or_else(|| {
                    Error::bad_input(format!(
                        "{dir}/{} has no `# Flux version:` first line",
                        render::COMPONENTS_FILE
                    ))
                })?
                .to_owned();
            let components = Components {
                yaml,
                version: version.clone(),
                origin: ComponentsOrigin::Committed,
            };
            let sync = read(render::SYNC_FILE)?;
            (Installation::Components(components), version, sync)
        }
        FluxInstall::Operator => {
            let manifest = OperatorManifest {
                yaml: read(render::OPERATOR_FILE)?,
                origin: ComponentsOrigin::Committed,
            };
            let instance = read(render::INSTANCE_FILE)?;
            let file = format!("{dir}/{}", render::INSTANCE_FILE);
            let version = flux_operator::parse_instance(&file, &instance)?
                .spec
                .distribution
                .version;
            let own_instance =
                (!instance.starts_with(render::INSTANCE_HEADER)).then(|| instance.clone());
            let install = Installation::Operator {
                manifest,
                own_instance,
            };
            (install, version, instance)
        }
    };
    let profile = render::committed_profile(&read(render::PROFILE_FILE)?).ok_or_else(|| {
        Error::bad_input(format!("{dir}/{} names no profile", render::PROFILE_FILE))
    })?;
    let commit = workspace
        .head()
        .ok_or_else(|| Error::failure("the repository clone has no commit"))?;

    let deploy_key = if env.repository.transport() == GitTransport::Ssh {
        Some(settle_deploy_key(reporter, env, paths).await?.0)
    } else {
        None
    };
    let read_credentials = read_credentials(env, deploy_key.as_ref())?;
    let tf = terraform::discover(config, terraform_binary).await?;
    let summary = format!(
        "{dir}/ at {} · profile {profile} · Flux {} · age key matches {}…",
        short(&commit),
        flux_version,
        recipient.get(..12).unwrap_or(&recipient)
    );
    let restorable = Restorable {
        lock,
        terraform: tf,
        workspace,
        commit,
        profile,
        install,
        flux_version,
        sync_manifest,
        read_credentials,
        deploy_key,
        age_key,
    };
    Ok((Outcome::Done(summary), restorable))
}
