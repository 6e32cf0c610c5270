//! Any text as `gitops-bootstrap.toml`: a config or an error, never a panic.
#![no_main]

use std::path::Path;

use gitops_bootstrap::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = Config::parse(text, Path::new("/fuzz/gitops-bootstrap.toml"));
});
