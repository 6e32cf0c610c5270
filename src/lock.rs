//! One run per environment at a time: an exclusive OS file lock on `<state_dir>/<env>/lock`.
//! The kernel releases it when the process dies, so a killed run never leaves a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Diagnose, ExitStatus};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("environment {env} is in use by another gitops-bootstrap run ({holder})")]
    Held {
        env: String,
        holder: String,
        path: PathBuf,
    },
    #[error("failed to open the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Diagnose for LockError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Failure
    }

    fn hint(&self) -> Option<String> {
        match self {
            LockError::Held { path, .. } => Some(format!(
                "wait for the other run to finish; the lock ({}) goes away with its process",
                path.display()
            )),
            LockError::Io { .. } => None,
        }
    }
}

/// Held for the whole run; dropping it (or the process dying) releases the lock.
#[derive(Debug)]
pub struct EnvLock {
    _file: File,
}

impl EnvLock {
    pub fn acquire(env: &str, path: &Path) -> Result<EnvLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(path)
                    .ok()
                    .map(|pid| format!("pid {}", pid.trim()))
                    .filter(|text| text != "pid ")
                    .unwrap_or_else(|| "unknown process".to_owned());
                return Err(LockError::Held {
                    env: env.to_owned(),
                    holder,
                    path: path.to_owned(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        // The pid is only a courtesy for the "in use" message; the lock itself is the kernel's.
        file.set_len(0).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(EnvLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev/lock");
        let first = EnvLock::acquire("dev", &path).unwrap();
        let err = EnvLock::acquire("dev", &path).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("lock"));
        drop(first);
        EnvLock::acquire("dev", &path).unwrap();
    }
}
