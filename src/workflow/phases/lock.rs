//! lock: one run per env at a time. Every workflow takes it first and holds it to the end.

use crate::config::EnvConfig;
use crate::error::Result;
use crate::lock::EnvLock;
use crate::report::Reporter;
use crate::workflow::EnvPaths;

/// Takes the env's lock; a lock a killed run left behind is taken over, and said so.
pub fn acquire(env: &EnvConfig, paths: &EnvPaths, reporter: &dyn Reporter) -> Result<EnvLock> {
    let lock = EnvLock::acquire(&env.name, &paths.lock())?;
    if let Some(pid) = lock.taken_over_from() {
        reporter.notice(format!(
            "took over env {}'s lock from an earlier run (pid {pid}) that ended without \
             releasing it (killed?); this run converges what it left",
            env.name
        ));
    }
    Ok(lock)
}
