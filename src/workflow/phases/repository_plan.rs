//! repository-plan (plan): the files create-env would write under `clusters/<env>/`,
//! rendered in a throwaway clone of the branch tip and compared with it (unified diffs). A
//! repository that cannot be read is a skipped section (a warning), not a failed plan.

use serde::Serialize;

use crate::cluster::Installation;
use crate::config::EnvConfig;
use crate::error::{Error, Result};
use crate::gitops::{FileChange, Workspace};
use crate::render::{self, CommittedEnv, cluster_dir};
use crate::report::Reporter;
use crate::workflow::Outcome;
use crate::workflow::git::{blocking, push_spec};
use crate::workflow::phases::commit::{ClusterDirInputs, files_at, render_input};
use crate::workflow::phases::preflight::resolve_install;
use crate::workflow::plan::Section;

/// Compares, and says so in a warning when the repository could not be read; the rendered
/// Flux objects go on to the cluster section.
pub async fn run(
    env: &EnvConfig,
    reporter: &dyn Reporter,
) -> Result<(Outcome, (Section<RepositoryPlan>, Option<Rendered>))> {
    let mut rendered = None;
    let section = Section::from_result(repository(env).await.map(|(plan, files)| {
        rendered = Some(files);
        plan
    }));
    let outcome = match &section {
        Section::Planned(repository) if repository.is_unchanged() => {
            Outcome::UpToDate(repository.describe())
        }
        Section::Planned(repository) => Outcome::Done(repository.describe()),
        Section::Skipped { reason, .. } => {
            reporter.warning(format!("the repository is not compared: {reason}"));
            Outcome::Done("not compared".to_owned())
        }
    };
    Ok((outcome, (section, rendered)))
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
async fn repository(env: &EnvConfig) -> Result<(RepositoryPlan, Rendered)> {
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
}
