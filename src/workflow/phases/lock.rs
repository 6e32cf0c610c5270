//! lock: one run per env at a time. Every workflow takes it first and holds it to the end.

use crate::config::EnvConfig;
use crate::error::Result;
use crate::lock::EnvLock;
use crate::workflow::EnvPaths;

pub fn acquire(env: &EnvConfig, paths: &EnvPaths) -> Result<EnvLock> {
    Ok(EnvLock::acquire(&env.name, &paths.lock())?)
}
