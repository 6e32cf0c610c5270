//! testkit_git
