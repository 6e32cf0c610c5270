//! commit: `clusters/<env>/` rendered from bootstrap/ plus the Flux components exactly as they
//! are applied, keeping what else the directory holds, committed only when something changed
//! and pushed without force.

use crate::cluster::Installation;
use crate::config::{EnvConfig, FluxInstall};
use crate::error::{Error, Result};
use crate::gitops::{FileChange, SyncOutcome, Workspace};
use crate::render::{self, DirEntry, EntryKind, KeptContent, RenderInput, cluster_dir};
use crate::report::Reporter;
use crate::report::short_sha;
use crate::workflow::Outcome;
use crate::workflow::git::blocking;
use crate::workflow::proposal::{self, Proposed, Render};

/// Pushes raced by other commits are retried this many times in all, re-rendered on each tip.
const PUSH_ATTEMPTS: u32 = 5;
/// How often Flux looks at the repository.
const SYNC_INTERVAL: &str = "1m";

/// What the env's cluster directory is rendered from. Nothing here comes from a flag of one
/// run: a rerun with other flags commits nothing new.
pub struct ClusterDirInputs<'a> {
    pub env: &'a EnvConfig,
    pub profile: &'a str,
    pub install: &'a Installation,
    pub age_recipient: &'a str,
}

/// The env's branch after the commit step.
pub struct Committed {
    /// The clone, at `head`.
    pub workspace: Workspace,
    /// The commit on the remote branch that holds the cluster directory.
    pub head: String,
    /// What declares the sync, as committed: gotk-sync.yaml (components), which the sync step
    /// applies, or the FluxInstance (operator), which flux-install applies.
    pub sync_manifest: String,
}

pub async fn run(
    mut workspace: Workspace,
    input: ClusterDirInputs<'_>,
    reporter: &dyn Reporter,
) -> Result<(Outcome, Committed)> {
    let (render_input, sync_manifest, components, message) = rendering(&input)?;
    let (workspace, outcome, unapplied) = blocking(move || {
        let mut unapplied = Vec::new();
        let outcome = workspace.sync_files(
            |tip| {
                // Read on every attempt: a raced push renders again on the new tip.
                let (files, kept) = files_at(tip, &render_input, &components)?;
                unapplied.clone_from(&kept.unapplied);
                Ok(files)
            },
            &message,
            PUSH_ATTEMPTS,
        )?;
        Ok((workspace, outcome, unapplied))
    })
    .await?;
    let repo = &input.env.repository;
    let dir = cluster_dir(&repo.path, &input.env.name);
    for entry in unapplied {
        reporter.warning(format!("{dir}/{entry} stays in Git but nothing applies it"));
    }
    let head = outcome.head().to_owned();
    let outcome = match outcome {
        SyncOutcome::UpToDate { head } => {
            Outcome::UpToDate(format!("{dir}/ already at {}", short_sha(&head)))
        }
        SyncOutcome::Pushed { commit, attempts } => Outcome::Done(format!(
            "pushed {} to {}{}",
            short_sha(&commit),
            repo.branch,
            if attempts > 1 {
                format!(" after {attempts} attempts (the branch moved)")
            } else {
                String::new()
            }
        )),
    };
    let committed = Committed {
        workspace,
        head,
        sync_manifest,
    };
    Ok((outcome, committed))
}

/// Pull-request mode: renders on the env's branch tip and pushes the commit to the proposal
/// branch instead (not again when an unmerged one is there from an earlier run); returns it
/// with the gotk-sync.yaml the sync step applies once it is merged.
pub async fn propose(
    workspace: Workspace,
    input: ClusterDirInputs<'_>,
    reporter: &dyn Reporter,
) -> Result<(Outcome, (Proposed, String))> {
    let (render_input, sync_manifest, components, message) = rendering(&input)?;
    let render: Render =
        Box::new(move |tip| files_at(tip, &render_input, &components).map(|(files, _)| files));
    let (outcome, proposed) = proposal::propose(
        workspace,
        input.env,
        "create-env",
        render,
        message,
        reporter,
    )
    .await?;
    Ok((outcome, (proposed, sync_manifest)))
}

/// What both paths commit from: the render input, the sync manifest it gives, the manifest
/// flux-install applies and the commit message.
fn rendering(input: &ClusterDirInputs<'_>) -> Result<(RenderInput, String, String, String)> {
    let render_input = render_input(input);
    let sync_manifest = sync_manifest_of(input, &render_input)?;
    let message = format!(
        "gitops-bootstrap: create-env {} (profile {})",
        input.env.name, input.profile
    );
    Ok((
        render_input,
        sync_manifest,
        input.install.manifest().0.to_owned(),
        message,
    ))
}

/// The sync manifest the commit holds: the repository's own FluxInstance, else the rendered
/// gotk-sync.yaml or FluxInstance.
fn sync_manifest_of(input: &ClusterDirInputs<'_>, render_input: &RenderInput) -> Result<String> {
    match input.install {
        Installation::Operator {
            own_instance: Some(own),
            ..
        } => Ok(own.clone()),
        _ => sync_manifest(render_input),
    }
}

/// The sync manifest the commit step will commit, for the hand-over before it.
pub fn planned_sync_manifest(input: &ClusterDirInputs<'_>) -> Result<String> {
    sync_manifest_of(input, &render_input(input))
}

/// What the env's directory is rendered from; what it already holds is read from the tip.
pub fn render_input(input: &ClusterDirInputs<'_>) -> RenderInput {
    let repo = &input.env.repository;
    RenderInput {
        env: input.env.name.clone(),
        profile: input.profile.to_owned(),
        profiles_dir: repo.profiles_dir.clone(),
        repo_url: repo.url.clone(),
        branch: repo.branch.clone(),
        path_prefix: repo.path.clone(),
        flux_version: input.env.flux_version.clone(),
        interval: SYNC_INTERVAL.to_owned(),
        age_recipient: input.age_recipient.to_owned(),
        substitution: repo.substitution.clone(),
        kept: KeptContent::default(),
        install: input.install.method(),
        own_instance: matches!(
            input.install,
            Installation::Operator {
                own_instance: Some(_),
                ..
            }
        ),
    }
}

/// The user's content in the env's directory at `tip`, which the kustomization.yaml keeps.
fn kept_content(tip: &Workspace, input: &RenderInput) -> Result<KeptContent> {
    let dir = cluster_dir(&input.path_prefix, &input.env);
    let mut entries = Vec::new();
    for (name, is_dir) in tip.list_dir(&dir)? {
        let kind = if is_dir {
            let mut has_kustomization = false;
            for file in render::KUSTOMIZATION_FILES {
                has_kustomization |= tip.path_exists(&format!("{dir}/{name}/{file}"))?;
            }
            EntryKind::Dir { has_kustomization }
        } else {
            EntryKind::File
        };
        entries.push(DirEntry { name, kind });
    }
    let existing = tip
        .read_file(&format!("{dir}/kustomization.yaml"))?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    render::kept_content(&entries, existing.as_deref()).map_err(|reason| {
        Error::bad_input(format!(
            "cannot keep what {dir}/kustomization.yaml lists: {reason}"
        ))
        .with_hint("fix that file in Git (it must be a valid kustomization) and rerun")
    })
}

/// Every file create-env writes in the env's directory on `tip` (plan compares them with the
/// tip), and what of the user's content that directory keeps.
pub fn files_at(
    tip: &Workspace,
    input: &RenderInput,
    components: &str,
) -> Result<(Vec<FileChange>, KeptContent)> {
    let kept = kept_content(tip, input)?;
    let input = RenderInput {
        kept: kept.clone(),
        ..input.clone()
    };
    Ok((cluster_files(tip, &input, components)?, kept))
}

/// Every file of the env's cluster directory: the rendered templates and the manifest
/// flux-install applies (gotk-components.yaml, or the operator's), with the other install
/// method's files removed (an env changing methods changes them in one commit).
fn cluster_files(tip: &Workspace, input: &RenderInput, manifest: &str) -> Result<Vec<FileChange>> {
    let dir = cluster_dir(&input.path_prefix, &input.env);
    let mut files: Vec<FileChange> = render::render_cluster_dir(input)?
        .into_iter()
        .map(|file| FileChange::write(file.path, file.contents))
        .collect();
    let manifest_file = match input.install {
        FluxInstall::Components => render::COMPONENTS_FILE,
        FluxInstall::Operator => render::OPERATOR_FILE,
    };
    files.push(FileChange::write(
        format!("{dir}/{manifest_file}"),
        manifest.to_owned(),
    ));
    let mut removed: Vec<&str> = render::other_method_files(input.install).to_vec();
    let instance = tip.read_file(&format!("{dir}/{}", render::INSTANCE_FILE))?;
    if input.install == FluxInstall::Components
        && instance.is_some_and(|text| text.starts_with(render::INSTANCE_HEADER.as_bytes()))
    {
        removed.push(render::INSTANCE_FILE);
    }
    files.extend(removed.into_iter().map(|file| FileChange::Remove {
        path: format!("{dir}/{file}"),
    }));
    Ok(files)
}

/// The rendered gotk-sync.yaml (it does not depend on what else the env's directory holds).
fn sync_manifest(input: &RenderInput) -> Result<String> {
    let file = match input.install {
        FluxInstall::Components => render::SYNC_FILE,
        FluxInstall::Operator => render::INSTANCE_FILE,
    };
    let wanted = format!("{}/{file}", cluster_dir(&input.path_prefix, &input.env));
    render::render_cluster_dir(input)?
        .into_iter()
        .find(|file| file.path == wanted)
        .map(|file| file.contents)
        .ok_or_else(|| Error::failure(format!("internal error: {wanted} was not rendered")))
}
