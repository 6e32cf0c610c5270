//! `plan <env>`'s repository and cluster sections: the files create-env would write under
//! `clusters/<env>/`, as unified diffs against the branch tip, rendered in a throwaway clone;
//! and, when the cluster exists, the objects it would apply, as a server-side dry-run diff.
//! Plan writes nothing to the repository, the env's state or the cluster.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cluster::apply::{ApplyOptions, CONFIG_MANAGER, FLUX_MANAGER, parse_documents};
use crate::cluster::bootstrap::{GIT_CREDENTIALS, SOPS_AGE, substitution_objects};
pub use crate::cluster::dry_run::PlannedChange;
use crate::cluster::dry_run::{PlannedObject, dry_run_objects};
use crate::cluster::{FLUX_NAMESPACE, Installation};
use crate::config::EnvConfig;
use crate::error::{Error, Result};
use crate::gitops::{FileChange, Workspace};
use crate::render::{self, CommittedEnv, cluster_dir};
use crate::terraform::{EnvRoot, StateInfo, Terraform};
use crate::workflow::git::{blocking, push_spec};
use crate::workflow::phases::commit::{ClusterDirInputs, files_at, render_input};
use crate::workflow::phases::preflight::resolve_install;
use crate::workflow::status::connect_env;

/// A section of the plan that depends on something outside (the repository, the cluster):
/// either planned, or why not. Terraform's section is the plan itself and has no such case.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Section<T> {
    Planned(T),
    /// Not compared, and why (with what to do): the rest of the plan stands.
    Skipped {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
}

impl<T> Section<T> {
    /// A failure to look becomes the section's reason (plan shows the other sections).
    pub fn from_result(result: Result<T>) -> Self {
        match result {
            Ok(planned) => Section::Planned(planned),
            Err(err) => Section::Skipped {
                reason: err.message().to_owned(),
                hint: err.hint().map(str::to_owned),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Create,
    Modify,
    Unchanged,
}

/// One file of the env's cluster directory.
#[derive(Debug, Clone, Serialize)]
pub struct FilePlan {
    pub path: String,
    pub change: Change,
    /// Lines of the file create-env would write.
    pub lines: usize,
    /// Unified diff against the branch tip (`""` when unchanged).
    pub diff: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepositoryPlan {
    pub branch: String,
    /// The branch tip compared against; `None` when the branch does not exist yet.
    pub tip: Option<String>,
    pub files: Vec<FilePlan>,
    /// The env has no age key yet: `.sops.yaml` shows a throwaway recipient where create-env
    /// will put the one it generates.
    pub age_key_pending: bool,
}

impl RepositoryPlan {
    pub fn count(&self, change: Change) -> usize {
        self.files
            .iter()
            .filter(|file| file.change == change)
            .count()
    }

    pub fn is_unchanged(&self) -> bool {
        self.count(Change::Unchanged) == self.files.len()
    }

    pub fn describe(&self) -> String {
        format!(
            "{} to create, {} to change, {} unchanged",
            self.count(Change::Create),
            self.count(Change::Modify),
            self.count(Change::Unchanged)
        )
    }
}

/// What the repository section rendered that the cluster section applies.
pub struct Rendered {
    /// What flux-install force-applies: the Flux components or the Flux Operator.
    pub manifest: String,
    /// gotk-sync.yaml, or the FluxInstance.
    pub sync_manifest: String,
}

/// Renders the env's cluster directory as create-env would (the profile it runs, the Flux
/// components it would commit) on the branch tip and compares each file with the tip.
pub async fn repository(env: &EnvConfig) -> Result<(RepositoryPlan, Rendered)> {
    let spec = push_spec(env)?;
    let scratch = tempfile::tempdir()
        .map_err(|err| Error::failure(format!("cannot create a scratch directory: {err}")))?;
    let dir = scratch.path().join("repo");
    let workspace = blocking(move || Ok(Workspace::open_or_clone(&dir, spec)?))
        .await
        .map_err(|err| err.context(format!("cannot read {}", env.repository.url)))?;
    let cluster = cluster_dir(&env.repository.path, &env.name);
    let read = |path: &str| -> Result<Option<String>> {
        let bytes = workspace.read_file(path)?;
        Ok(bytes.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    };
    let committed = CommittedEnv::read(cluster, |path| workspace.read_file(path))?;
    let committed_recipient = committed.recipient();
    let age_key_pending = committed_recipient.is_none();
    // create-env generates the env's key; plan must not, so it renders with a throwaway
    // recipient that is never stored anywhere.
    let recipient = committed_recipient
        .unwrap_or_else(|| age::x25519::Identity::generate().to_public().to_string());
    let (install, _) = resolve_install(None, env, committed.flux.clone()).await?;
    let input = render_input(&ClusterDirInputs {
        env,
        profile: &env.profile,
        install: &install,
        age_recipient: &recipient,
    });
    let manifest = install.manifest().0.to_owned();
    let (wanted, _) = files_at(&workspace, &input, &manifest)?;
    let sync_path = match &install {
        Installation::Components(_) => committed.path(render::SYNC_FILE),
        Installation::Operator { .. } => committed.path(render::INSTANCE_FILE),
    };
    let mut sync_manifest = String::new();
    let mut files = Vec::new();
    for change in wanted {
        let FileChange::Write { path, content } = change else {
            continue;
        };
        let new = String::from_utf8_lossy(&content).into_owned();
        if path == sync_path {
            sync_manifest.clone_from(&new);
        }
        let old = read(&path)?;
        files.push(file_plan(path, old.as_deref(), &new));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let plan = RepositoryPlan {
        branch: env.repository.branch.clone(),
        tip: workspace.head(),
        files,
        age_key_pending,
    };
    if let Installation::Operator {
        own_instance: Some(own),
        ..
    } = &install
    {
        sync_manifest.clone_from(own);
    }
    let rendered = Rendered {
        manifest,
        sync_manifest,
    };
    Ok((plan, rendered))
}

/// The cluster section: what create-env would apply, dry-run against the live cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    pub objects: Vec<PlannedObject>,
    /// Objects create-env applies that plan does not compare, and why.
    pub not_compared: Vec<String>,
}

impl ClusterPlan {
    pub fn count(&self, change: PlannedChange) -> usize {
        self.objects.iter().filter(|o| o.change == change).count()
    }

    pub fn describe(&self) -> String {
        let conflicts = self.count(PlannedChange::Conflict);
        format!(
            "{} to create, {} to change, {} unchanged{}",
            self.count(PlannedChange::Create),
            self.count(PlannedChange::Change),
            self.count(PlannedChange::Unchanged),
            if conflicts > 0 {
                format!(", {conflicts} in conflict")
            } else {
                String::new()
            }
        )
    }
}

/// Dry-runs create-env's applies — the contract's ConfigMap and Secret, the Flux components
/// (forced, as flux-install does), the sync objects — when the env's cluster exists.
pub async fn cluster(
    tf: &Terraform,
    root: &EnvRoot,
    env: &EnvConfig,
    rendered: Option<&Rendered>,
    cancel: &CancellationToken,
) -> Result<ClusterPlan> {
    if let Some(state) = root.local_state_file()
        && !StateInfo::read(&state)?.exists
    {
        return Err(Error::bad_input(
            "the env has no cluster yet (no Terraform state): create-env creates every object",
        ));
    }
    let rendered = rendered.ok_or_else(|| {
        Error::failure("the repository could not be read, so the Flux objects are not known")
    })?;
    let (client, contract) = connect_env(tf, root, env, cancel).await?;
    let names = &env.repository.substitution;
    let config = ApplyOptions::new(CONFIG_MANAGER);
    let mut objects = dry_run_objects(
        &client,
        substitution_objects(&contract, names, env.flux.install),
        &config,
    )
    .await?;
    let components = parse_documents(&rendered.manifest)?;
    let flux = ApplyOptions::new(FLUX_MANAGER).forced();
    objects.extend(dry_run_objects(&client, components, &flux).await?);
    let sync = parse_documents(&rendered.sync_manifest)?;
    objects.extend(dry_run_objects(&client, sync, &config).await?);
    Ok(ClusterPlan {
        objects,
        not_compared: vec![
            format!("Secret {FLUX_NAMESPACE}/{GIT_CREDENTIALS} (Flux's Git credentials)"),
            format!("Secret {FLUX_NAMESPACE}/{SOPS_AGE} (the env's age key)"),
        ],
    })
}

fn file_plan(path: String, old: Option<&str>, new: &str) -> FilePlan {
    let change = match old {
        None => Change::Create,
        Some(old) if old == new => Change::Unchanged,
        Some(_) => Change::Modify,
    };
    let diff = if change == Change::Unchanged {
        String::new()
    } else {
        let before = match old {
            Some(_) => format!("a/{path}"),
            None => "/dev/null".to_owned(),
        };
        similar::TextDiff::from_lines(old.unwrap_or_default(), new)
            .unified_diff()
            .header(&before, &format!("b/{path}"))
            .to_string()
    };
    FilePlan {
        lines: new.lines().count(),
        path,
        change,
        diff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_new_changed_or_unchanged_with_a_unified_diff() {
        let new = file_plan("a.yaml".into(), None, "x: 1\n");
        assert_eq!(new.change, Change::Create);
        assert_eq!(
            new.diff,
            "--- /dev/null\n+++ b/a.yaml\n@@ -0,0 +1 @@\n+x: 1\n"
        );
        let same = file_plan("a.yaml".into(), Some("x: 1\n"), "x: 1\n");
        assert_eq!((same.change, same.diff.as_str()), (Change::Unchanged, ""));
        let changed = file_plan("a.yaml".into(), Some("x: 1\n"), "x: 2\n");
        assert_eq!(changed.change, Change::Modify);
        assert!(changed.diff.contains("-x: 1\n+x: 2\n"), "{}", changed.diff);
    }

    #[test]
    fn a_section_that_could_not_be_planned_says_why_in_json() {
        let skipped: Section<u8> = Section::from_result(Err(Error::failure("no route")
            .context("cannot read https://git.example.test/fleet.git")
            .with_hint("check the network")));
        assert_eq!(
            serde_json::to_value(&skipped).unwrap(),
            serde_json::json!({
                "state": "skipped",
                "reason": "cannot read https://git.example.test/fleet.git: no route",
                "hint": "check the network",
            })
        );
    }
}
