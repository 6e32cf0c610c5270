//! Workflows as explicit lists of named steps over shared phases. Each step observes first,
//! acts only when needed, and says "up to date" when it had nothing to do, so any run can be
//! repeated after a failure or a kill and converges. Commands reach the adapters only through
//! the functions here.

mod cluster_up;
pub mod create_env;
pub mod doctor;
pub mod drift;
mod env_run;
pub mod envs;
mod flux_up;
pub mod git;
pub mod init;
pub mod lint;
mod paths;
pub mod phases;
pub mod plan;
pub mod proposal;
pub mod rebuild;
mod runner;
pub mod status;
pub mod teardown;
pub mod terraform;

pub use env_run::EnvRun;
pub use paths::EnvPaths;
pub use runner::{Outcome, Steps, run_step};
