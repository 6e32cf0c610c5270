//! Cluster access forms end to end (issue 8 item 12): a module whose outputs give the endpoint,
//! its CA and a `cluster_exec` credential plugin (tests/it/fixtures/exec-access) brings an env up
//! through real Terraform, the plugin is run again whenever its token expired (and not before:
//! a token living under a minute is kept for most of its life), and the summary's access hint
//! names the plugin.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use kube::config::Kubeconfig;
use secrecy::ExposeSecret as _;
use testkit::env_config::EnvConfig;

use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

/// A sandbox whose env's module (tests/it/fixtures/exec-access) gives the endpoint, its CA and
/// the credential plugin; the plugin's tokens live `lifetime` seconds (`None`: born expired).
/// Returns the plugin's directory (its `runs` log).
fn exec_access(sandbox: &Sandbox, lifetime: Option<u32>) -> PathBuf {
    let kubeconfig = Kubeconfig::from_yaml(sandbox.cluster.kubeconfig_yaml()).unwrap();
    let cluster = kubeconfig.clusters[0].cluster.clone().unwrap();
    let token = kubeconfig.auth_infos[0]
        .auth_info
        .as_ref()
        .and_then(|auth| auth.token.clone())
        .expect("the test cluster's kubeconfig has a token");
    let plugin_dir = sandbox.path("plugin");
    std::fs::create_dir(&plugin_dir).unwrap();
    let token_file = plugin_dir.join("token");
    std::fs::write(&token_file, token.expose_secret()).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/exec-access");
    // The module reaches the cluster through the plugin, not a kubeconfig file.
    let mut env = EnvConfig {
        module: Some(module.clone()),
        ..sandbox.dev_config()
    }
    .with_variable("endpoint", cluster.server.unwrap())
    .with_variable(
        "ca_certificate",
        cluster.certificate_authority_data.unwrap(),
    )
    .with_variable("plugin_dir", plugin_dir.display().to_string());
    env.variables.remove("kubeconfig_path");
    sandbox.write_dev_config(env);

    if let Some(seconds) = lifetime {
        std::fs::write(plugin_dir.join("lifetime"), seconds.to_string()).unwrap();
    }
    plugin_dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credential_plugin_is_run_again_as_its_tokens_expire_and_the_hint_names_it() {
    let sandbox = Sandbox::start().await;
    let plugin_dir = exec_access(&sandbox, None);
    let run = sandbox
        .run(&["create-env", ENV, "--profile", "standard", "--yes"])
        .await;
    assert_eq!(run.code, 0, "{}", run.output());
    let calls = std::fs::read_to_string(plugin_dir.join("runs")).unwrap();
    assert!(
        calls.lines().count() > 1,
        "the plugin ran again once its token expired: {calls:?}"
    );
    assert!(
        calls.lines().all(|line| line == "--cluster-name sandbox"),
        "{calls}"
    );

    let hint = run
        .stdout
        .lines()
        .find(|line| line.contains("kubectl access"))
        .expect("the summary's access hint");
    // The module is a fixture of this checkout, wherever it is.
    let checkout = [(env!("CARGO_MANIFEST_DIR"), "[checkout]")];
    snapshot!(
        "a_credential_plugin_is_run_again_as_its_tokens_expire_and_the_hint_names_it",
        hint,
        extra = checkout
    );
}

/// Issue 20 (smaller): a token that lives under a minute is kept for three quarters of its
/// life, not fetched again for every API request (kube's own exec auth renewed it whenever it
/// was within 60 s of its expiry: 90 runs in 1.2 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_short_lived_token_is_kept_until_shortly_before_it_expires() {
    const LIFETIME: u32 = 40;
    let sandbox = Sandbox::start().await;
    let plugin_dir = exec_access(&sandbox, Some(LIFETIME));
    let started = std::time::Instant::now();
    let run = sandbox
        .run(&["create-env", ENV, "--profile", "standard", "--yes"])
        .await;
    assert_eq!(run.code, 0, "{}", run.output());
    let took = started.elapsed().as_secs();
    let runs = std::fs::read_to_string(plugin_dir.join("runs")).unwrap();
    // One token per 30 s at most; each process of the run (connect, then the waits) starts
    // with none.
    let bound = 2 + took / u64::from(LIFETIME * 3 / 4);
    assert!(
        (runs.lines().count() as u64) <= bound,
        "{} plugin runs in {took}s, at most {bound} expected",
        runs.lines().count()
    );
}
