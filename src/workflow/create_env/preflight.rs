//! preflight: everything that can be checked before the first side effect — the env lock,
//! Terraform, the repository (reachable with push rights, the profile present, the env not
//! running another profile), the Flux components, Flux's read credentials and the age key.
//! Keys are generated last, so a failed check leaves nothing behind.

use super::{Context, require};
use crate::cluster::flux::{ComponentsSource, ManifestLocation, resolve_components};
use crate::config::GitTransport;
use crate::error::{Error, Result};
use crate::gitops::{DeployKey, Workspace, check_push_access, generate_deploy_key};
use crate::keys::KeyStore;
use crate::lock::EnvLock;
use crate::render::{self, cluster_dir};
use crate::workflow::git::{blocking, push_spec, read_credentials};
use crate::workflow::{Outcome, terraform};

pub async fn run(ctx: &mut Context<'_>) -> Result<Outcome> {
    ctx.lock = Some(EnvLock::acquire(&ctx.env.name, &ctx.paths.lock())?);
    let tf = terraform::discover(&ctx.config, ctx.options.terraform_binary.as_deref()).await?;
    let mut facts = vec![format!("{} {}", tf.flavor(), tf.version())];
    ctx.terraform = Some(tf);

    let committed = repository(ctx).await?;
    facts.push(format!(
        "repository reachable ({}) · profile {}",
        ctx.env.repository.url, ctx.options.profile
    ));

    let source = components_source(ctx, committed.components)?;
    let components = resolve_components(&source, &ctx.env.flux_version).await?;
    facts.push(format!(
        "Flux {} from {}",
        components.version, components.origin
    ));
    ctx.components = Some(components);

    let generated = settle_keys(ctx, committed.recipient.as_deref()).await?;
    let recipient = &require(&ctx.age_key, "the age key")?.recipient;
    // The whole recipient is in the summary and in .sops.yaml; a prefix identifies it here.
    facts.push(format!(
        "age key {}…",
        recipient.get(..12).unwrap_or(recipient)
    ));
    let summary = facts.join(" · ");
    Ok(if generated.is_empty() {
        Outcome::UpToDate(summary)
    } else {
        Outcome::Done(format!("{summary} (new {})", generated.join(", ")))
    })
}

/// What the env's cluster directory already holds in Git.
struct Committed {
    components: Option<String>,
    recipient: Option<String>,
}

/// Checks push access, clones, checks the profile, and reads what is committed for the env.
async fn repository(ctx: &mut Context<'_>) -> Result<Committed> {
    let spec = push_spec(&ctx.env)?;
    let repo_dir = ctx.paths.repo();
    let workspace = blocking(move || {
        check_push_access(&spec)?;
        Ok(Workspace::open_or_clone(&repo_dir, spec)?)
    })
    .await?;
    check_profile(ctx, &workspace)?;
    let cluster_dir = cluster_dir(&ctx.env.repository.path, &ctx.env.name);
    let read = |rel: &str| -> Result<Option<String>> {
        let bytes = workspace.read_file(&format!("{cluster_dir}/{rel}"))?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    let committed = Committed {
        components: read(render::COMPONENTS_FILE)?,
        recipient: read(render::SOPS_FILE)?
            .as_deref()
            .and_then(render::sops_recipient),
    };
    ctx.workspace = Some(workspace);
    Ok(committed)
}

/// The age key, Flux's read credentials and (ssh) the deploy key. An env whose recipient is
/// committed only reads its key, and must find it before anything is generated; an env
/// without one gets a key last. Returns what was generated.
async fn settle_keys(
    ctx: &mut Context<'_>,
    committed_recipient: Option<&str>,
) -> Result<Vec<&'static str>> {
    let key_store = KeyStore::from_env();
    let committed_key = match committed_recipient {
        Some(recipient) => Some(key_store.settle(&ctx.env.name, Some(recipient))?),
        None => None,
    };
    let mut generated = Vec::new();
    if ctx.env.repository.transport() == GitTransport::Ssh {
        let (key, new) = deploy_key(ctx).await?;
        if new {
            generated.push("deploy key");
        }
        ctx.deploy_key = Some(key);
    }
    ctx.read_credentials = Some(read_credentials(&ctx.env, ctx.deploy_key.as_ref())?);
    let age_key = match committed_key {
        Some(key) => key,
        None => key_store.settle(&ctx.env.name, None)?,
    };
    if age_key.generated {
        generated.push("age key");
    }
    ctx.age_key = Some(age_key);
    Ok(generated)
}

/// The env's ssh deploy key for Flux, generated on first use and announced then: Flux can
/// read the repository only once it is registered there.
async fn deploy_key(ctx: &Context<'_>) -> Result<(DeployKey, bool)> {
    let path = ctx.paths.deploy_key();
    let generated = !path.exists();
    let key = blocking(move || Ok(generate_deploy_key(&path)?)).await?;
    if generated {
        ctx.reporter.notice(format!(
            "generated a deploy key for Flux; register it read-only on {}: {}",
            ctx.env.repository.url, key.public_openssh
        ));
    }
    Ok((key, generated))
}

/// The profile must exist in the repository, and an env already running another profile is
/// re-pointed only with `--change-profile`.
fn check_profile(ctx: &Context<'_>, workspace: &Workspace) -> Result<()> {
    let repo = &ctx.env.repository;
    let profile = &ctx.options.profile;
    let profile_dir = workspace.spec().prefixed(&format!("profiles/{profile}"));
    if !workspace.path_exists(&profile_dir)? {
        return Err(Error::bad_input(format!(
            "profile {profile} does not exist in {} (no {profile_dir}/ on branch {})",
            repo.url, repo.branch
        ))
        .with_hint("pick a profile the repository has, or push profiles/<profile>/ first"));
    }
    let committed = workspace
        .read_file(&format!(
            "{}/{}",
            cluster_dir(&repo.path, &ctx.env.name),
            render::PROFILE_FILE
        ))?
        .and_then(|bytes| render::committed_profile(&String::from_utf8_lossy(&bytes)));
    match committed {
        Some(current) if &current != profile && !ctx.options.change_profile => {
            Err(Error::bad_input(format!(
                "env {} already runs profile {current}; refusing to re-point it to {profile}",
                ctx.env.name
            ))
            .with_hint("pass --change-profile to re-point it (its apps will be replaced)"))
        }
        _ => Ok(()),
    }
}

fn components_source(ctx: &Context<'_>, committed: Option<String>) -> Result<ComponentsSource> {
    let explicit = match (&ctx.options.flux_manifests, &ctx.env.flux_manifests) {
        (Some(flag), _) => Some(ManifestLocation::parse(flag)?),
        (None, Some(crate::config::FluxManifests::File(path))) => {
            Some(ManifestLocation::File(path.clone()))
        }
        (None, Some(crate::config::FluxManifests::Url(url))) => {
            Some(ManifestLocation::Url(url.clone()))
        }
        (None, None) => None,
    };
    let extra_ca_pem = match &ctx.env.flux_manifests_ca_file {
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
