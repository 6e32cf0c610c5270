//! Shared helpers of the integration tests.

pub mod cluster;
pub mod git;
pub mod sandbox;
