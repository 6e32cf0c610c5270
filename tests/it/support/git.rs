//! git support
