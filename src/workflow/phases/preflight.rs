//! preflight: everything that can be checked before the first side effect (the run holds the
//! env's lock already) — Terraform, the repository (reachable with push rights, the profile
//! present, the env not running another profile), the Flux components, Flux's read
//! credentials and the age key.
//! Keys are generated last, so a failed check leaves nothing behind.

use std::path::PathBuf;

use crate::cluster::flux::{ComponentsSource, ManifestLocation, resolve_components};
use crate::cluster::{GitReadCredentials, Installation, flux_operator};
use crate::config::{Config, EnvConfig, FluxInstall, GitTransport, PushCredentials};
use crate::error::{Error, Result};
use crate::gitops::{DeployKey, GitError, Workspace, generate_deploy_key};
use crate::keys::{AgeKey, KeyOrigin, KeyOwner, KeyStore};
use crate::render::{self, CommittedEnv, CommittedFlux, cluster_dir};
use crate::report::Reporter;
use crate::terraform::{ModuleInterface, Terraform};
use crate::workflow::git::{ReadCheck, blocking, push_spec, read_credentials};
use crate::workflow::lint;
use crate::workflow::proposal;
use crate::workflow::{EnvPaths, Outcome, terraform};

/// What the user asked of create-env that preflight checks.
#[derive(Debug, Clone)]
pub struct PreflightOptions {
    pub profile: String,
    /// `--change-profile`: the env may be re-pointed to another profile.
    pub change_profile: bool,
    /// `--skip-lint`: do not stop on the profile's lint errors (reported as a warning).
    pub skip_lint: bool,
    pub flux_manifests: Option<String>,
    pub terraform_binary: Option<PathBuf>,
}

/// What create-env's preflight is given.
pub struct PreflightInputs<'a> {
    pub reporter: &'a dyn Reporter,
    pub config: &'a Config,
    pub env: &'a EnvConfig,
    pub paths: &'a EnvPaths,
    pub options: &'a PreflightOptions,
    /// Pull-request mode: the proposal branch must hold nothing but the tool's proposals.
    pub via_branch: bool,
}

/// What the later steps work with, all checked (under the env's lock, which the run holds).
/// `F` is where Flux comes from: an [`Installation`] resolved afresh (create-env), or what the
/// env has committed (rebuild's [`super::rebuild_preflight::Restore`]).
pub struct Prepared<F> {
    pub terraform: Terraform,
    pub workspace: Workspace,
    pub read_credentials: GitReadCredentials,
    pub deploy_key: Option<DeployKey>,
    pub age_key: AgeKey,
    pub flux: F,
}

pub async fn run(input: PreflightInputs<'_>) -> Result<(Outcome, Prepared<Installation>)> {
    let options = input.options;
    let tf = terraform::discover(input.config, options.terraform_binary.as_deref()).await?;
    let mut facts = vec![format!("{} {}", tf.flavor(), tf.version())];
    let module = ModuleInterface::read(&input.env.module)?;
    let access = terraform::check_module_contract(input.env, &module)?;
    facts.push(format!(
        "module declares the contract ({} outputs, {} access)",
        module.outputs.len(),
        access.name()
    ));

    let (mut workspace, committed, read_verdict) = repository(&input).await?;
    if input.via_branch {
        workspace = proposal::check_branch(workspace, input.env, "create-env").await?;
    }
    facts.push(format!(
        "repository reachable ({}) · profile {}",
        input.env.repository.url, options.profile
    ));
    // The profile's mistakes cost seconds here, a Terraform apply later.
    facts.push(lint::preflight(
        &lint::PreflightLint {
            repo_dir: workspace.dir(),
            tree: workspace.tree_id(),
            cache: input.paths.lint_cache(),
        },
        input.env,
        &options.profile,
        options.skip_lint,
        input.reporter,
    )?);

    let recipient = committed.recipient();
    let flag = options.flux_manifests.as_deref();
    let (install, fact) = resolve_install(flag, input.env, committed.flux).await?;
    facts.push(fact);

    // Inputs that would fail later, checked before any key is written.
    terraform::secret_variables(input.env)?;
    let keys = settle_keys(&input, recipient.as_deref(), read_verdict).await?;
    facts.push(age_key_fact(&keys.age_key));
    let summary = facts.join(" · ");
    let outcome = if !keys.generated.is_empty() {
        Outcome::Done(format!("{summary} (new {})", keys.generated.join(", ")))
    } else if keys.age_key.origin != KeyOrigin::Committed {
        Outcome::Done(summary)
    } else {
        Outcome::UpToDate(summary)
    };
    let prepared = Prepared {
        terraform: tf,
        workspace,
        read_credentials: keys.read_credentials,
        deploy_key: keys.deploy_key,
        age_key: keys.age_key,
        flux: install,
    };
    Ok((outcome, prepared))
}

/// Where the env's push credentials come from, for a hint when the server refuses them.
fn push_credentials_source(env: &EnvConfig) -> String {
    match &env.repository.push {
        PushCredentials::Token { token_env, .. } => {
            format!("the token in environment variable {token_env}")
        }
        PushCredentials::SshKey { key_file, .. } => format!(
            "the ssh key {} (registered as a deploy key with write access?)",
            key_file.display()
        ),
        PushCredentials::SshAgent { .. } => "the keys of your ssh agent".to_owned(),
    }
}

/// What flux-install will apply for the env's install method, checked, and a line saying so:
/// the Flux components (explicit, committed when of the configured version, else the release),
/// or the Flux Operator's manifest (explicit, else committed, else its release) with the
/// repository's own FluxInstance when it has one.
pub async fn resolve_install(
    flag: Option<&str>,
    env: &EnvConfig,
    committed: CommittedFlux,
) -> Result<(Installation, String)> {
    let source = components_source(flag, env, committed.components)?;
    match env.flux.install {
        FluxInstall::Components => {
            let components = resolve_components(&source, &env.flux_version).await?;
            let fact = format!("Flux {} from {}", components.version, components.origin);
            Ok((Installation::Components(components), fact))
        }
        FluxInstall::Operator => {
            let manifest = flux_operator::resolve_manifest(
                source.explicit.as_ref(),
                committed.operator,
                source.extra_ca_pem.as_deref(),
            )
            .await?;
            let own_instance = committed
                .instance
                .filter(|text| !text.starts_with(render::INSTANCE_HEADER));
            if let Some(own) = &own_instance {
                let file = format!(
                    "{}/{}",
                    cluster_dir(&env.repository.path, &env.name),
                    render::INSTANCE_FILE
                );
                flux_operator::parse_instance(&file, own)?;
            }
            let fact = format!(
                "Flux Operator from {} · {}",
                manifest.origin,
                match own_instance {
                    Some(_) => "the repository's FluxInstance".to_owned(),
                    None => format!("FluxInstance of Flux {}", env.flux_version),
                }
            );
            let install = Installation::Operator {
                manifest,
                own_instance,
            };
            Ok((install, fact))
        }
    }
}

/// The env's working clone, once the server granted push rights (one connection for both,
/// no fetch when the clone is at the tip already): a refused credential stops the run before
/// anything changes, naming where the credential comes from.
pub async fn open_with_push_rights(env: &EnvConfig, paths: &EnvPaths) -> Result<Workspace> {
    let spec = push_spec(env)?;
    let repo_dir = paths.repo();
    let credentials = push_credentials_source(env);
    blocking(move || {
        Workspace::open_with_push_rights(&repo_dir, spec).map_err(|err| match err {
            GitError::AuthFailed { .. } | GitError::AccessDenied { .. } => Error::from(err)
                .with_hint(format!(
                    "the push credentials are {credentials}: put a valid credential with write \
                     access to the repository there (check value, expiry and scopes)"
                )),
            other => other.into(),
        })
    })
    .await
}

/// Checks push access, clones, checks the profile, and reads what is committed for the env.
/// Flux's read token is checked meanwhile on a connection of its own; its verdict is returned
/// for its turn in [`settle_keys`].
async fn repository(input: &PreflightInputs<'_>) -> Result<(Workspace, CommittedEnv, Result<()>)> {
    let read_check = ReadCheck::of(input.env)?;
    let (workspace, read_verdict) = tokio::join!(
        open_with_push_rights(input.env, input.paths),
        read_check.run(input.env)
    );
    let workspace = workspace?;
    let dir = cluster_dir(&input.env.repository.path, &input.env.name);
    let committed = CommittedEnv::read(dir, |path| workspace.read_file(path))?;
    check_profile(input, &workspace, committed.profile())?;
    Ok((workspace, committed, read_verdict))
}

/// The age key and how this run came by it: a key not matched to a committed recipient is
/// never passed off as up to date.
fn age_key_fact(key: &AgeKey) -> String {
    // The whole recipient is in the summary and in .sops.yaml; a prefix identifies it here.
    let recipient = key.recipient.get(..12).unwrap_or(&key.recipient);
    let path = key.path.display();
    match &key.origin {
        KeyOrigin::Committed => format!("age key {recipient}…"),
        KeyOrigin::Generated => format!("age key {recipient}… generated at {path}"),
        KeyOrigin::Reused => {
            format!("age key {recipient}… reused from {path} (made before; no commit names it yet)")
        }
        KeyOrigin::Adopted { from } => format!(
            "age key {recipient}… taken over from {} (it matches the committed recipient) into \
             {path}",
            from.display()
        ),
    }
}

struct Keys {
    age_key: AgeKey,
    deploy_key: Option<DeployKey>,
    read_credentials: GitReadCredentials,
    generated: Vec<&'static str>,
}

/// The age key, Flux's read credentials and (ssh) the deploy key. An env whose recipient is
/// committed only reads its key, and must find it before anything is generated; an env
/// without one gets a key last.
async fn settle_keys(
    input: &PreflightInputs<'_>,
    committed_recipient: Option<&str>,
    read_verdict: Result<()>,
) -> Result<Keys> {
    let key_store = KeyStore::from_env();
    let owner = KeyOwner::of(input.env);
    let committed_key = match committed_recipient {
        Some(recipient) => Some(key_store.settle(&owner, Some(recipient))?),
        None => None,
    };
    let mut generated = Vec::new();
    let mut deploy_key = None;
    if input.env.repository.transport() == GitTransport::Ssh {
        let (key, new) = settle_deploy_key(input.reporter, input.env, input.paths).await?;
        if new {
            generated.push("deploy key");
        }
        deploy_key = Some(key);
    }
    let read_credentials = read_credentials(input.env, deploy_key.as_ref())?;
    // Before the age key: a wrong read token must not leave a new key behind.
    read_verdict?;
    let age_key = match committed_key {
        Some(key) => key,
        None => key_store.settle(&owner, None)?,
    };
    Ok(Keys {
        age_key,
        deploy_key,
        read_credentials,
        generated,
    })
}

/// The env's ssh deploy key for Flux, generated on first use and announced then: Flux can
/// read the repository only once it is registered there.
pub async fn settle_deploy_key(
    reporter: &dyn Reporter,
    env: &EnvConfig,
    paths: &EnvPaths,
) -> Result<(DeployKey, bool)> {
    let path = paths.deploy_key();
    let generated = !path.exists();
    let key = blocking(move || Ok(generate_deploy_key(&path)?)).await?;
    if generated {
        reporter.notice(format!(
            "generated a deploy key for Flux; register it read-only on {}: {}",
            env.repository.url, key.public_openssh
        ));
    }
    Ok((key, generated))
}

/// The profile must exist in the repository, and an env already running another profile
/// (`committed`) is re-pointed only with `--change-profile`.
fn check_profile(
    input: &PreflightInputs<'_>,
    workspace: &Workspace,
    committed: Option<String>,
) -> Result<()> {
    let repo = &input.env.repository;
    let profile = input.options.profile.as_str();
    let profile_dir = workspace
        .spec()
        .prefixed(&format!("{}/{profile}", repo.profiles_dir));
    if workspace.head().is_none() {
        return Err(Error::bad_input(format!(
            "branch {} does not exist in {}",
            repo.branch, repo.url
        ))
        .with_hint(
            "push the branch with the repository's profiles/ first, or set `branch` in the \
             repository config to one that exists",
        ));
    }
    if !workspace.path_exists(&profile_dir)? {
        return Err(Error::bad_input(format!(
            "profile {profile} does not exist in {} (no {profile_dir}/ on branch {})",
            repo.url, repo.branch
        ))
        .with_hint(format!(
            "pick a profile the repository has, push {}/<profile>/ first, or set \
             profiles_dir in the repository's config to where your profiles live",
            repo.profiles_dir
        )));
    }
    match committed {
        Some(current) if current != profile && !input.options.change_profile => {
            Err(Error::bad_input(format!(
                "env {} already runs profile {current}; refusing to re-point it to {profile}",
                input.env.name
            ))
            .with_hint("pass --change-profile to re-point it (its apps will be replaced)"))
        }
        _ => Ok(()),
    }
}

pub fn components_source(
    flag: Option<&str>,
    env: &EnvConfig,
    committed: Option<String>,
) -> Result<ComponentsSource> {
    let explicit = match (flag, &env.flux_manifests) {
        (Some(flag), _) => Some(ManifestLocation::parse(flag)?),
        (None, Some(crate::config::FluxManifests::File(path))) => {
            Some(ManifestLocation::File(path.clone()))
        }
        (None, Some(crate::config::FluxManifests::Url(url))) => {
            Some(ManifestLocation::Url(url.clone()))
        }
        (None, None) => None,
    };
    let extra_ca_pem = match &env.flux_manifests_ca_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|err| {
            Error::bad_input(format!(
                "failed to read flux_manifests_ca_file {}: {err}",
                path.display()
            ))
        })?),
        None => None,
    };
    Ok(ComponentsSource {
        explicit,
        committed,
        extra_ca_pem,
    })
}
