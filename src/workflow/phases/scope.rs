//! scope (teardown): what the teardown will delete, read before anything is — the Flux apps,
//! the env's namespaces (those its Kustomizations applied) and the LoadBalancer Services and
//! PVCs in them, the objects of the Flux install manifest the env applied, the tool's files in
//! `clusters/<env>/` — and what it leaves alone (such objects elsewhere, the user's files).
//! It reads the cluster only when observe proved it the env's own; it reads Git only when the
//! run removes the env from it. Then the typed confirmation, naming all of it, unless `--yes`.

use super::reach::{Cleared, OwnCluster, TeardownTarget};
use super::remove_from_git::{GitScope, survey};
use crate::cluster::flux::resolve_components;
use crate::cluster::teardown::{ClusterScope, read_scope};
use crate::cluster::uninstall::Installed;
use crate::cluster::{FLUX_NAMESPACE, ObjectName};
use crate::config::{EnvConfig, FluxInstall};
use crate::error::{Error, Result};
use crate::gitops::Workspace;
use crate::render::{COMPONENTS_FILE, INSTANCE_FILE, OPERATOR_FILE, cluster_dir};
use crate::report::Reporter;
use crate::workflow::Outcome;
use crate::workflow::phases::preflight::components_source;

/// What the teardown will act on.
pub struct Scope {
    pub cluster: ClusterPlan,
    /// `None` with `--keep-repo`.
    pub git: Option<GitScope>,
    pub has_state: bool,
}

/// What the teardown does with the cluster.
pub enum ClusterPlan {
    /// The env's own cluster, emptied of what was read on it.
    Empty {
        own: Box<OwnCluster>,
        read: ClusterRead,
    },
    /// Left as it is: nothing of the env is there, or on purpose.
    Skip { reason: String, cleared: Cleared },
}

/// What was read on the env's own cluster.
pub struct ClusterRead {
    pub objects: ClusterScope,
    /// What the env installed of Flux.
    pub flux: Installed,
}

/// What observe found.
pub struct Seen<'a> {
    pub cluster: TeardownTarget,
    /// `None` with `--keep-repo`: the Git server is not needed.
    pub workspace: Option<&'a Workspace>,
    /// Terraform manages resources of the env.
    pub has_state: bool,
}

pub async fn run(
    seen: Seen<'_>,
    env: &EnvConfig,
    assume_yes: bool,
    reporter: &dyn Reporter,
) -> Result<(Outcome, Scope)> {
    let Seen {
        cluster,
        workspace,
        has_state,
    } = seen;
    let git = workspace
        .map(|workspace| survey(workspace, env))
        .transpose()?;
    let cluster = match cluster {
        TeardownTarget::Empty(own) => {
            let objects = read_scope(own.client()).await?;
            let flux = installed_flux(workspace, env, reporter).await?;
            let read = ClusterRead { objects, flux };
            ClusterPlan::Empty { own, read }
        }
        TeardownTarget::Skip { reason, cleared } => ClusterPlan::Skip { reason, cleared },
    };
    let on_cluster = match &cluster {
        ClusterPlan::Empty { read, .. } => Ok(read),
        ClusterPlan::Skip { reason, .. } => Err(reason.as_str()),
    };
    let dir = cluster_dir(&env.repository.path, &env.name);
    let described = describe(on_cluster, git.as_ref(), has_state, &dir);
    if !assume_yes {
        // Typing the name, not y/N: a teardown cannot be undone, and a reflexive "y" on the
        // wrong env is the mistake this guards against.
        let question = format!(
            "Tear down env {}:\n{}\nType the env name to confirm:",
            env.name,
            described.join("\n")
        );
        let typed = reporter.ask(&question).unwrap_or_default();
        if typed != env.name {
            return Err(Error::bad_input(format!(
                "teardown not confirmed: \"{typed}\" is not the env name {}; nothing was changed",
                env.name
            ))
            .with_hint("type the env name exactly, or pass --yes"));
        }
    }
    let summary: Vec<String> = described
        .iter()
        .map(|line| line.trim_start_matches("  ").to_owned())
        .collect();
    let scope = Scope {
        cluster,
        git,
        has_state,
    };
    Ok((Outcome::Done(summary.join(" · ")), scope))
}

/// The manifest the env applied: the copies create-env committed (it commits before it
/// installs Flux) — Flux's components, or the operator's manifest and the FluxInstance — else
/// the components the config names (with `--keep-repo`, which reads no Git, only those).
/// Without either, only the `flux-system` Namespace is known to be the env's.
async fn installed_flux(
    workspace: Option<&Workspace>,
    env: &EnvConfig,
    reporter: &dyn Reporter,
) -> Result<Installed> {
    let dir = cluster_dir(&env.repository.path, &env.name);
    let files: &[&str] = match env.flux.install {
        FluxInstall::Components => &[COMPONENTS_FILE],
        FluxInstall::Operator => &[INSTANCE_FILE, OPERATOR_FILE],
    };
    let mut committed = Vec::new();
    for file in files {
        let path = format!("{dir}/{file}");
        let Some(workspace) = workspace else { break };
        if let Some(yaml) = workspace.read_file(&path)? {
            committed.push((path, String::from_utf8_lossy(&yaml).into_owned()));
        }
    }
    if !committed.is_empty() {
        let origin: Vec<&str> = committed.iter().map(|(path, _)| path.as_str()).collect();
        let yaml: Vec<&str> = committed.iter().map(|(_, yaml)| yaml.as_str()).collect();
        return Ok(Installed::from_manifest(
            &yaml.join("\n---\n"),
            origin.join(" and "),
        )?);
    }
    let resolved = match env.flux.install {
        FluxInstall::Components => {
            let source = components_source(None, env, None)?;
            resolve_components(&source, &env.flux_version)
                .await
                .map(|components| (components.yaml, components.origin.to_string()))
                .map_err(|err| err.to_string())
        }
        FluxInstall::Operator => Err("create-env commits them before it installs".to_owned()),
    };
    match resolved {
        Ok((yaml, origin)) => Ok(Installed::from_manifest(&yaml, origin)?),
        Err(err) => {
            reporter.warning(format!(
                "no Flux install manifest in {dir}/ and none readable from the config ({err}): only Namespace {FLUX_NAMESPACE} is removed of Flux"
            ));
            Ok(Installed::from_manifest("", "no Flux install manifest")?)
        }
    }
}

/// One line per part, each starting with two spaces. `cluster`: what was read on the env's
/// own cluster, or why it is left as it is.
fn describe(
    cluster: std::result::Result<&ClusterRead, &str>,
    git: Option<&GitScope>,
    has_state: bool,
    dir: &str,
) -> Vec<String> {
    let mut lines = Vec::new();
    match cluster {
        Err(reason) => lines.push(format!("  cluster: {reason}")),
        Ok(ClusterRead { objects, flux }) => {
            let mut counted = count(&objects.apps);
            counted.extend(count(&objects.cloud_owners));
            let namespaces: Vec<&str> = objects.namespaces.iter().map(String::as_str).collect();
            lines.push(format!(
                "  cluster: deletes {} in namespaces {}",
                if counted.is_empty() {
                    "no Flux apps, LoadBalancer Services or PVCs".to_owned()
                } else {
                    counted.join(", ")
                },
                if namespaces.is_empty() {
                    "(none)".to_owned()
                } else {
                    namespaces.join(", ")
                }
            ));
            lines.push(format!(
                "  flux: uninstalls the {} objects of {}",
                flux.object_count(),
                flux.origin
            ));
            if !objects.left_alone.is_empty() {
                let alone: Vec<String> =
                    objects.left_alone.iter().map(ToString::to_string).collect();
                lines.push(format!(
                    "  left alone (not the env's): {}",
                    alone.join(", ")
                ));
            }
        }
    }
    if has_state {
        lines.push("  terraform: destroys the env's resources".to_owned());
    }
    let Some(git) = git else {
        lines.push(format!("  git: {dir}/ kept (--keep-repo)"));
        return lines;
    };
    lines.push(match git.tool_files.len() {
        0 => format!("  git: no file of the tool's in {dir}/"),
        n => format!("  git: removes the tool's {n} files of {dir}/"),
    });
    if !git.kept.is_empty() {
        lines.push(format!(
            "  kept in Git (the user's): {}",
            git.kept.join(", ")
        ));
    }
    lines
}

/// `6 Kustomizations, 3 HelmReleases`: per kind, in first-seen order.
fn count(objects: &[ObjectName]) -> Vec<String> {
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for object in objects {
        let kind = match object.kind.as_str() {
            "Service" => "LoadBalancer Service",
            other => other,
        };
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    kinds
        .into_iter()
        .map(|(kind, n)| format!("{n} {kind}{}", if n == 1 { "" } else { "s" }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_per_kind_and_load_balancers_say_so() {
        let objects = [
            ObjectName::namespaced("Kustomization", "flux-system", "a"),
            ObjectName::namespaced("HelmRelease", "x", "b"),
            ObjectName::namespaced("Kustomization", "flux-system", "c"),
            ObjectName::namespaced("Service", "x", "lb"),
        ];
        assert_eq!(
            count(&objects),
            [
                "2 Kustomizations",
                "1 HelmRelease",
                "1 LoadBalancer Service"
            ]
        );
    }

    #[test]
    fn the_description_names_what_goes_and_what_stays() {
        let read = ClusterRead {
            objects: ClusterScope {
                apps: vec![ObjectName::namespaced("HelmRelease", "web", "web")],
                namespaces: ["flux-system".to_owned(), "web".to_owned()].into(),
                cloud_owners: vec![ObjectName::namespaced("PersistentVolumeClaim", "web", "d")],
                left_alone: vec![ObjectName::namespaced("Service", "other", "edge")],
            },
            flux: Installed::from_manifest(
                "kind: Namespace\napiVersion: v1\nmetadata: {name: flux-system}\n",
                "gotk.yaml",
            )
            .unwrap(),
        };
        let git = GitScope {
            tool_files: vec!["clusters/dev/profile.yaml".to_owned()],
            kept: vec!["clusters/dev/notes/".to_owned()],
        };
        assert_eq!(
            describe(Ok(&read), Some(&git), true, "clusters/dev"),
            [
                "  cluster: deletes 1 HelmRelease, 1 PersistentVolumeClaim in namespaces flux-system, web",
                "  flux: uninstalls the 1 objects of gotk.yaml",
                "  left alone (not the env's): Service other/edge",
                "  terraform: destroys the env's resources",
                "  git: removes the tool's 1 files of clusters/dev/",
                "  kept in Git (the user's): clusters/dev/notes/",
            ]
        );
    }

    #[test]
    fn a_cluster_left_as_it_is_and_a_kept_repository_say_why() {
        assert_eq!(
            describe(
                Err("the cluster is left as it is (--leave-cluster)"),
                None,
                true,
                "clusters/dev"
            ),
            [
                "  cluster: the cluster is left as it is (--leave-cluster)",
                "  terraform: destroys the env's resources",
                "  git: clusters/dev/ kept (--keep-repo)",
            ]
        );
    }
}
