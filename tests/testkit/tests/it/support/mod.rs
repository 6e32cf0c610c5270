//! Shared helpers of the testkit's integration tests.

pub mod cluster;
pub mod git;
