//! The run record: `<state_dir>/<env>/run.json`, what the last run of an env did and left
//! behind (steps, the pushed commit, keys to register). Later runs, `teardown` and `rebuild`
//! read it; it never holds a secret.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Diagnose;
use crate::report::StepOutcome;
use crate::version::BuildInfo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running, or killed before it could say otherwise (the record is written at start).
    Running,
    Succeeded,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    pub outcome: StepOutcome,
    pub duration_ms: u64,
    pub summary: String,
}

impl StepRecord {
    /// The step as a line of a command's summary: its name padded to `name_width`, its
    /// duration and what it did.
    pub fn summary_line(&self, name_width: usize) -> String {
        format!(
            "{:<name_width$} {:>6} ms  {}",
            self.name, self.duration_ms, self.summary
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub env: String,
    pub command: String,
    /// The build that ran (absent in records written before builds were recorded).
    #[serde(default)]
    pub build: Option<BuildInfo>,
    pub status: RunStatus,
    pub started_at: jiff::Timestamp,
    pub finished_at: Option<jiff::Timestamp>,
    pub profile: Option<String>,
    pub steps: Vec<StepRecord>,
    /// The commit create-env pushed (or found up to date) on the GitOps branch.
    pub commit: Option<String>,
    /// The public half of the env's ssh deploy key, to register read-only on the repository.
    pub deploy_key: Option<String>,
    pub age_recipient: Option<String>,
    /// The uid of the cluster's `kube-system` namespace: rebuild tells a recreated cluster by it.
    #[serde(default)]
    pub cluster_uid: Option<String>,
    /// rebuild: from its start until every app was Ready again (the time to recovery).
    #[serde(default)]
    pub rto_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to write the run record {path}: {source}")]
pub struct RecordError {
    path: PathBuf,
    source: std::io::Error,
}

impl Diagnose for RecordError {}

impl RunRecord {
    pub fn start(env: &str, command: &str) -> Self {
        RunRecord {
            env: env.to_owned(),
            command: command.to_owned(),
            build: Some(BuildInfo::current()),
            status: RunStatus::Running,
            started_at: jiff::Timestamp::now(),
            finished_at: None,
            profile: None,
            steps: Vec::new(),
            commit: None,
            deploy_key: None,
            age_recipient: None,
            cluster_uid: None,
            rto_ms: None,
        }
    }

    /// The last record, if any. An unreadable record is treated as absent: it is advisory.
    pub fn load(path: &Path) -> Option<RunRecord> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn finish(&mut self, status: RunStatus) {
        self.status = status;
        self.finished_at = Some(jiff::Timestamp::now());
    }

    /// Written atomically (temp file + rename) so a kill never leaves half a record.
    pub fn save(&self, path: &Path) -> Result<(), RecordError> {
        let err = |source| RecordError {
            path: path.to_owned(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        serde_json::to_writer_pretty(&mut file, self).map_err(|e| err(e.into()))?;
        file.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev/run.json");
        let mut record = RunRecord::start("dev", "create-env");
        record.steps.push(StepRecord {
            name: "terraform".into(),
            outcome: StepOutcome::UpToDate,
            duration_ms: 5,
            summary: "no changes".into(),
        });
        record.commit = Some("abc123".into());
        record.finish(RunStatus::Succeeded);
        record.save(&path).unwrap();
        assert_eq!(RunRecord::load(&path), Some(record));
    }

    #[test]
    fn records_name_the_build_that_ran() {
        let record = serde_json::to_value(RunRecord::start("dev", "create-env")).unwrap();
        let build = &record["build"];
        assert_eq!(build["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(build["commit"].as_str().map(str::len), Some(40), "{build}");
        assert!(build["dirty"].is_boolean(), "{build}");
        // Records written before builds were recorded still load.
        let mut old = record.clone();
        old.as_object_mut().unwrap().remove("build");
        let old: RunRecord = serde_json::from_value(old).unwrap();
        assert_eq!(old.build, None);
    }

    #[test]
    fn a_missing_or_garbled_record_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        assert_eq!(RunRecord::load(&path), None);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(RunRecord::load(&path), None);
    }
}
