//! One run per environment at a time: an exclusive OS file lock on `<state_dir>/<env>/lock`.
//! The kernel releases it when the process dies, so a killed run never leaves a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    file: File,
    /// The pid a killed run left in the lock file: it died holding the lock.
    taken_over_from: Option<String>,
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
        // A run that ends clears its pid (see Drop): one still here belongs to a killed run.
        let mut previous = String::new();
        file.read_to_string(&mut previous).map_err(io)?;
        let taken_over_from = Some(previous.trim().to_owned()).filter(|pid| !pid.is_empty());
        // The pid is only a courtesy for the "in use" message; the lock itself is the kernel's.
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(EnvLock {
            file,
            taken_over_from,
        })
    }

    /// Like [`EnvLock::acquire`], but waits up to `wait` for another run to finish: for
    /// commands that only read and may simply come a moment later.
    pub async fn acquire_within(
        env: &str,
        path: &Path,
        wait: Duration,
    ) -> Result<EnvLock, LockError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match EnvLock::acquire(env, path) {
                Err(LockError::Held { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    /// The pid of a killed run whose lock this one took over, if any.
    pub fn taken_over_from(&self) -> Option<&str> {
        self.taken_over_from.as_deref()
    }
}

impl Drop for EnvLock {
    fn drop(&mut self) {
        // Best effort: a pid left behind only makes the next run say it took over.
        let _ = self.file.set_len(0);
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
        let second = EnvLock::acquire("dev", &path).unwrap();
        assert_eq!(
            second.taken_over_from(),
            None,
            "the first run ended cleanly"
        );
    }

    #[test]
    fn a_pid_left_by_a_killed_run_is_reported_as_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        std::fs::write(&path, "424242").unwrap();
        let lock = EnvLock::acquire("dev", &path).unwrap();
        assert_eq!(lock.taken_over_from(), Some("424242"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
    }

    #[tokio::test]
    async fn waiting_gives_up_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let _held = EnvLock::acquire("dev", &path).unwrap();
        let started = std::time::Instant::now();
        let err = EnvLock::acquire_within("dev", &path, Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(500));
        assert!(matches!(err, LockError::Held { .. }), "{err}");
    }
}
