//! gitops-bootstrap: from nothing to a running, GitOps-managed Kubernetes environment.
//!
//! The tree follows the workflow: `commands` are thin drivers over the named steps of
//! `workflow`; the steps meet the three outside systems through their adapters
//! (`terraform`, `gitops`, `cluster`), which know nothing of each other.

pub mod backoff;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod contract;
pub mod error;
pub mod gitops;
pub mod keys;
pub mod lint;
pub mod lock;
pub mod record;
pub mod render;
pub mod report;
pub mod scaffold;
pub mod terraform;
pub mod version;
pub mod workflow;

pub use error::{Error, ExitStatus, Result};
