//! Workflows as explicit lists of named steps over a shared context. Each step observes first,
//! acts only when needed, and says "up to date" when it had nothing to do, so any run can be
//! repeated after a failure or a kill and converges.

pub mod create_env;
pub mod envs;
pub mod git;
pub mod init;
pub mod lint;
mod paths;
mod runner;
pub mod terraform;

pub use paths::EnvPaths;
pub use runner::{Outcome, Step, run_step, run_steps};
