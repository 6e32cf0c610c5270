//! lock: one run per env at a time. Every workflow takes it first and holds it to the end.

use crate::config::EnvConfig;
use crate::error::Result;
use crate::lock::EnvLock;
use crate::report::Reporter;
use crate::workflow::EnvPaths;

pub fn acquire(env: &EnvConfig, paths: &EnvPaths) -> Result<EnvLock> {
    Ok(EnvLock::acquire(&env.name, &paths.lock())?)
}

/// Says when the lock was taken over from a run that was killed while holding it.
pub fn announce_takeover(lock: &EnvLock, env: &EnvConfig, reporter: &dyn Reporter) {
    if let Some(pid) = lock.taken_over_from() {
        reporter.notice(format!(
            "took over env {}'s lock from an earlier run (pid {pid}) that ended without \
             releasing it (killed?); this run converges what it left",
            env.name
        ));
    }
}
