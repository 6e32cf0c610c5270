//! Shared helpers of the integration tests.

pub mod git;
pub mod sandbox;
