//! preflight (rebuild): what a rebuild restores from — `clusters/<env>/`
//! on the branch, the age identity matching the recipient committed in its `.sops.yaml` (never
//! a new key: exit 2 before anything changes), the committed Flux (components or operator) and
//! sync objects, and Flux's read credentials.

use std::path::Path;

use crate::cluster::flux::{check_components, manifest_version};
use crate::cluster::flux_operator::{self, OperatorManifest};
use crate::cluster::{Components, ComponentsOrigin, Installation};
use crate::config::{Config, EnvConfig, FluxInstall, GitTransport};
use crate::error::{Error, Result};
use crate::gitops::Workspace;
use crate::keys::{KeyOwner, KeyStore};
use crate::render::{self, CommittedEnv, cluster_dir};
use crate::report::{Reporter, short_sha};
use crate::workflow::git::{blocking, push_spec, read_credentials};
use crate::workflow::phases::preflight::{Prepared, settle_deploy_key};
use crate::workflow::{EnvPaths, Outcome, terraform};

/// What an env is restored with: what is committed at the branch tip, no new commit.
pub struct Restore {
    /// The branch tip the env is synced to.
    pub commit: String,
    pub profile: String,
    pub install: Installation,
    /// The Flux version committed: the components' header, or the FluxInstance's distribution.
    pub flux_version: String,
    /// The committed gotk-sync.yaml, or FluxInstance.
    pub sync_manifest: String,
}

/// What to do when the env's directory is not on the branch: restore it from the last commit
/// that had it, or (never committed) create the env.
fn restore_hint(workspace: &Workspace, env: &EnvConfig, dir: &str) -> Result<String> {
    Ok(match workspace.last_commit_with(dir)? {
        Some((commit, subject)) => format!(
            "{dir}/ was last on the branch at {} (\"{subject}\"), before a later commit removed it: restore it from there (`git checkout {} -- {dir}`, commit and push), then rerun",
            short_sha(&commit),
            short_sha(&commit)
        ),
        None => format!(
            "no commit of the branch ever had {dir}/: rebuild restores an env created by create-env; run `gitops-bootstrap create-env {}` for a new one",
            env.name
        ),
    })
}

pub async fn run(
    reporter: &dyn Reporter,
    config: &Config,
    env: &EnvConfig,
    paths: &EnvPaths,
    terraform_binary: Option<&Path>,
) -> Result<(Outcome, Prepared<Restore>)> {
    let spec = push_spec(env)?;
    let repo_dir = paths.repo();
    let workspace = blocking(move || Ok(Workspace::open_or_clone(&repo_dir, spec)?)).await?;
    let dir = cluster_dir(&env.repository.path, &env.name);
    let committed = CommittedEnv::read(dir, |path| workspace.read_file(path))?;
    let commit = workspace
        .head()
        .ok_or_else(|| Error::failure("the repository clone has no commit"))?;
    let missing = restore_hint(&workspace, env, &committed.dir)?;
    let (restore, recipient) = restore(env, &committed, commit, &missing)?;
    // The committed recipient decides: its key or nothing, never a new one.
    let age_key = KeyStore::from_env().settle(&KeyOwner::of(env), Some(&recipient))?;

    let deploy_key = if env.repository.transport() == GitTransport::Ssh {
        Some(settle_deploy_key(reporter, env, paths).await?.0)
    } else {
        None
    };
    let read_credentials = read_credentials(env, deploy_key.as_ref())?;
    let tf = terraform::discover(config, terraform_binary).await?;
    let summary = format!(
        "{}/ at {} · profile {} · Flux {} · age key matches {}…",
        committed.dir,
        short_sha(&restore.commit),
        restore.profile,
        restore.flux_version,
        recipient.get(..12).unwrap_or(&recipient)
    );
    let prepared = Prepared {
        terraform: tf,
        workspace,
        read_credentials,
        deploy_key,
        age_key,
        flux: restore,
    };
    Ok((Outcome::Done(summary), prepared))
}

/// Every file a restore needs, and the recipient its `.sops.yaml` names.
/// `missing_hint` says what to do when a file is not there.
fn restore(
    env: &EnvConfig,
    committed: &CommittedEnv,
    commit: String,
    missing_hint: &str,
) -> Result<(Restore, String)> {
    let dir = &committed.dir;
    let required = |rel: &str, text: Option<&String>| -> Result<String> {
        text.cloned().ok_or_else(|| {
            Error::bad_input(format!(
                "env {} cannot be rebuilt: {} is not on branch {} of {}",
                env.name,
                committed.path(rel),
                env.repository.branch,
                env.repository.url
            ))
            .with_hint(missing_hint.to_owned())
        })
    };
    required(render::SOPS_FILE, committed.sops.as_ref())?;
    let recipient = committed.recipient().ok_or_else(|| {
        Error::bad_input(format!(
            "{dir}/{} names no age recipient",
            render::SOPS_FILE
        ))
    })?;
    let flux = &committed.flux;
    let (install, flux_version, sync_manifest) = match env.flux.install {
        FluxInstall::Components => {
            let yaml = required(render::COMPONENTS_FILE, flux.components.as_ref())?;
            let components = committed_components(dir, yaml)?;
            let version = components.version.clone();
            let sync = required(render::SYNC_FILE, committed.sync_manifest.as_ref())?;
            (Installation::Components(components), version, sync)
        }
        FluxInstall::Operator => {
            let manifest = OperatorManifest {
                yaml: required(render::OPERATOR_FILE, flux.operator.as_ref())?,
                origin: ComponentsOrigin::Committed,
            };
            let instance = required(render::INSTANCE_FILE, flux.instance.as_ref())?;
            let file = committed.path(render::INSTANCE_FILE);
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
    required(render::PROFILE_FILE, committed.profile_yaml.as_ref())?;
    let profile = committed.profile().ok_or_else(|| {
        Error::bad_input(format!("{dir}/{} names no profile", render::PROFILE_FILE))
    })?;
    let restore = Restore {
        commit,
        profile,
        install,
        flux_version,
        sync_manifest,
    };
    Ok((restore, recipient))
}

/// The committed Flux components, checked: garbage must stop the rebuild here, not at
/// flux-install after a full apply.
fn committed_components(dir: &str, yaml: String) -> Result<Components> {
    let version = manifest_version(&yaml)
        .ok_or_else(|| {
            Error::bad_input(format!(
                "{dir}/{} has no `# Flux version:` first line",
                render::COMPONENTS_FILE
            ))
        })?
        .to_owned();
    check_components(&yaml, &ComponentsOrigin::Committed)?;
    Ok(Components {
        yaml,
        version,
        origin: ComponentsOrigin::Committed,
    })
}
