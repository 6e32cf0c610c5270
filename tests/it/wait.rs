//! wait-for-apps and `status` against what users meet after a push: a failure of the commit
//! before a fix, a `dependsOn` that names nothing, a source that cannot be fetched. The product
//! binary, real Terraform and Git, the test cluster with its Flux stand-ins.

use std::time::{Duration, Instant};

use crate::support::sandbox::{ENV, Sandbox};
use crate::support::snapshot;

// The stand-ins look at the Git source again only on its interval (a minute) unless asked, as
// Flux does: a fix pushed is not seen before create-env asks for a reconcile.

/// A HelmRelease failed for good; the user pushes the fix and reruns at once. The rerun must
/// wait for Flux to apply the fix instead of reporting the old failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_fixing_a_failed_release_waits_for_the_fix() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let release = "profiles/apps/cert-manager/release.yaml";
    sandbox.replace_in_repo(release, "version: v1.17.2", "version: v0.0.0-missing");
    let failed = sandbox.run(&["create-env", ENV, "--yes"]).await;
    assert_eq!(failed.code, 1, "{}", failed.output());
    snapshot!("failed_release_error", failed.error_report());
    // The failure is current for the commit Flux fetched: `status --wait` fails at once too.
    let started = Instant::now();
    let waited = sandbox
        .run(&["status", ENV, "--wait", "--timeout", "2m"])
        .await;
    assert_eq!(waited.code, 1, "{}", waited.output());
    snapshot!("failed_release_status_wait_error", waited.error_report());
    assert!(started.elapsed() < Duration::from_secs(60), "failed fast");

    sandbox.replace_in_repo(release, "version: v0.0.0-missing", "version: v1.17.2");
    let fixed = sandbox
        .run(&["create-env", ENV, "--yes", "--timeout", "3m"])
        .await;
    assert_eq!(fixed.code, 0, "the fix is waited for: {}", fixed.output());
    assert!(
        !fixed.stderr.contains("will not become Ready"),
        "{}",
        fixed.stderr
    );
}

/// The same for a Kustomization whose build failed: its `BuildFailed` belongs to the commit
/// before the fix until Flux attempts the new one.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_fixing_a_broken_build_waits_for_the_fix() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    let kustomization = "profiles/apps/cert-manager/kustomization.yaml";
    sandbox.replace_in_repo(
        kustomization,
        "  - release.yaml",
        "  - release.yaml\n  - missing.yaml",
    );
    // Lint would stop this build in preflight; the point here is what the wait makes of it.
    let failed = sandbox
        .run(&["create-env", ENV, "--yes", "--skip-lint"])
        .await;
    assert_eq!(failed.code, 1, "{}", failed.output());
    // The stand-in runs `kubectl kustomize`, whose error starts with klog's header: a time
    // and a process id.
    snapshot!(
        "broken_build_error",
        failed.error_report(),
        extra = [(
            r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [\w.]+:\d+\]",
            "[klog header]"
        )]
    );

    sandbox.replace_in_repo(kustomization, "\n  - missing.yaml", "");
    let fixed = sandbox
        .run(&["create-env", ENV, "--yes", "--timeout", "3m"])
        .await;
    assert_eq!(fixed.code, 0, "the fix is waited for: {}", fixed.output());
}

/// A HelmRelease `dependsOn` an object that no Kustomization creates: fail fast, naming both.
#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_that_names_nothing_fails_fast_naming_who_wants_it() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    sandbox.replace_in_repo(
        "profiles/apps/external-dns/release.yaml",
        "  install:\n",
        "  dependsOn:\n    - name: cert-manger\n      namespace: cert-manager\n  install:\n",
    );
    let started = Instant::now();
    // Lint would name the dangling dependsOn in preflight; the point is what the wait does.
    let run = sandbox
        .run(&[
            "create-env",
            ENV,
            "--yes",
            "--skip-lint",
            "--timeout",
            "90s",
        ])
        .await;
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "failed fast, not at the timeout"
    );
    snapshot!("missing_dependency_error", run.error_report());
}

/// A HelmRepository whose index cannot be fetched is shown with the controller's reason and
/// message: in the timeout report, in the blocking chain and in `status`.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_cannot_be_fetched_is_shown_with_its_cause() {
    let sandbox = Sandbox::start().await;
    sandbox.write_config();
    sandbox.replace_in_repo(
        "profiles/apps/external-dns/repository.yaml",
        "url: https://kubernetes-sigs.github.io/external-dns/",
        "url: https://charts.example.invalid/external-dns",
    );
    let run = sandbox
        .run(&["create-env", ENV, "--yes", "--timeout", "20s"])
        .await;
    assert_eq!(run.code, 3, "{}", run.output());
    // The source with its cause in the table and at the end of the HelmRelease's chain; the
    // timeout told as given.
    snapshot!(
        "unfetchable_source_timeout",
        without_profile(&run.error_report())
    );

    let status = sandbox.run(&["status", ENV]).await;
    assert_eq!(status.code, 1, "{}", status.output());
    let waited = sandbox
        .run(&["status", ENV, "--wait", "--timeout", "2s"])
        .await;
    assert_eq!(waited.code, 3, "{}", waited.output());
    // The timeout table names the source and its cause.
    snapshot!(
        "unfetchable_source_status_wait",
        without_profile(&waited.error_report())
    );
    let json = sandbox.run(&["--output", "json", "status", ENV]).await;
    assert_eq!(json.code, 1, "{}", json.output());
    let result: serde_json::Value =
        serde_json::from_str(json.stdout.lines().last().expect("a result line")).unwrap();
    let mut tree = result["result"].clone();
    tree["rows"]
        .as_array_mut()
        .expect("rows")
        .retain(|row| row["object"]["name"] != "profile");
    snapshot!(
        "status_unfetchable_source_text",
        without_profile(&status.stdout)
    );
    snapshot!(
        "status_unfetchable_source_json",
        serde_json::to_string_pretty(&tree).unwrap()
    );
}

/// `text` without the lines of Kustomization `profile`: its health checks time out with
/// create-env's --timeout (it is in profile.yaml), and whether they did by the time a report
/// is made is a race.
fn without_profile(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.contains("Kustomization flux-system/profile "))
        .collect();
    lines.join("\n")
}
