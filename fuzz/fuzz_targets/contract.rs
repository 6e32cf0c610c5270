//! Any text as `terraform output -json`, read through the default output mapping: a contract
//! or an error, never a panic.
#![no_main]

use gitops_bootstrap::config::OutputMapping;
use gitops_bootstrap::contract::Contract;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|text: &str| {
    let _ = Contract::parse(&SecretString::from(text), &OutputMapping::default());
});
