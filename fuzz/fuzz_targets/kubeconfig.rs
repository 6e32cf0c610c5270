//! Any text as the `kubeconfig` output: a client configuration or an error, never a panic.
//! Only the configuration is built; nothing connects.
#![no_main]

use gitops_bootstrap::cluster::client::client_config;
use gitops_bootstrap::contract::ClusterAccess;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|text: &str| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let access = ClusterAccess::Kubeconfig(SecretString::from(text));
    let _ = runtime.block_on(client_config(&access));
});
