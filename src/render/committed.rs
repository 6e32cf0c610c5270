//! What an earlier run committed under `clusters/<env>/`, read back: the files a rerun
//! (create-env), a preview (plan) and a restore (rebuild) take from Git. Read through a closure
//! so this module knows files, not Git.

use super::{
    COMPONENTS_FILE, INSTANCE_FILE, OPERATOR_FILE, PROFILE_FILE, SOPS_FILE, SYNC_FILE,
    committed_profile, sops_recipient,
};

/// The committed files of one env, as text (absent: `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedEnv {
    /// `<prefix>/clusters/<env>`, repository-relative.
    pub dir: String,
    pub sops: Option<String>,
    pub flux: CommittedFlux,
    /// `flux-system/gotk-sync.yaml` (components mode).
    pub sync_manifest: Option<String>,
    pub profile_yaml: Option<String>,
}

/// The env's committed Flux files, of either install method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedFlux {
    /// `flux-system/gotk-components.yaml`.
    pub components: Option<String>,
    /// `flux-system/flux-operator.yaml`.
    pub operator: Option<String>,
    /// `flux-system/flux-instance.yaml`.
    pub instance: Option<String>,
}

impl CommittedEnv {
    /// Reads the env's files below `dir` with `read` (repository-relative path → bytes, `None`
    /// when the file is not there).
    pub fn read<E>(
        dir: String,
        read: impl Fn(&str) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<CommittedEnv, E> {
        let text = |rel: &str| -> Result<Option<String>, E> {
            let bytes = read(&format!("{dir}/{rel}"))?;
            Ok(bytes.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(CommittedEnv {
            sops: text(SOPS_FILE)?,
            flux: CommittedFlux {
                components: text(COMPONENTS_FILE)?,
                operator: text(OPERATOR_FILE)?,
                instance: text(INSTANCE_FILE)?,
            },
            sync_manifest: text(SYNC_FILE)?,
            profile_yaml: text(PROFILE_FILE)?,
            dir,
        })
    }

    /// The age recipient `.sops.yaml` names, if it is there and names one.
    pub fn recipient(&self) -> Option<String> {
        self.sops.as_deref().and_then(sops_recipient)
    }

    /// The profile `profile.yaml` records, if it is there and records one.
    pub fn profile(&self) -> Option<String> {
        self.profile_yaml.as_deref().and_then(committed_profile)
    }

    /// The repository-relative path of one of the env's files.
    pub fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.dir)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn committed_files_are_read_below_the_env_dir() {
        let files: BTreeMap<&str, &str> = [
            (
                "infra/clusters/dev/.sops.yaml",
                "creation_rules:\n  - age: age1abc, age1def\n",
            ),
            (
                "infra/clusters/dev/profile.yaml",
                "metadata:\n  annotations:\n    gitops-bootstrap.io/profile: minimal\n",
            ),
            ("infra/clusters/dev/flux-system/gotk-sync.yaml", "sync"),
        ]
        .into();
        let read = |path: &str| -> Result<Option<Vec<u8>>, ()> {
            Ok(files.get(path).map(|text| text.as_bytes().to_vec()))
        };
        let committed = CommittedEnv::read("infra/clusters/dev".to_owned(), read).unwrap();
        assert_eq!(committed.recipient().as_deref(), Some("age1abc"));
        assert_eq!(committed.profile().as_deref(), Some("minimal"));
        assert_eq!(committed.sync_manifest.as_deref(), Some("sync"));
        assert_eq!(committed.flux, CommittedFlux::default());
        assert_eq!(
            committed.path(COMPONENTS_FILE),
            "infra/clusters/dev/flux-system/gotk-components.yaml"
        );
        assert_eq!(CommittedEnv::default().recipient(), None);
    }
}
